/* blink's scorer, one row at a time: QuickScorer over the model's tables
 * (pyfuncs/quickscorer.py).
 *
 * For each feature, the splits on it come sorted by threshold; a value goes right at every
 * split whose threshold is below it. A static search tree of the feature's distinct
 * thresholds, one cache line a level, counts those splits (blink_qs_below), and
 * the scorer ANDs their masks into their trees' bit vectors: for each whole span of
 * BLINK_QS_SPAN splits, a precomputed state of every tree (the AND of the masks so far, in
 * one vectorizable pass), then the masks of the splits after it, reading masks and trees in
 * order, 6 bytes a split. AND is associative: the bits, and so the leaves, are the same. A
 * missing value (NaN) goes right at the splits whose default is right, listed apart; each
 * categorical split is tested on its own. Each tree's exit leaf is then the lowest bit
 * left: the leftmost leaf no split made unreachable (docs/benchmarks.md, "QuickScorer for
 * one row", "Session 15, later", "Session 16").
 *
 * The leaves are summed in tree order, then the base score and the sigmoid, as TL2cgen's
 * predict() does: the same double (vetting checks it on every probe row). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "blink_qs_tables.h"

#if defined(__GNUC__)
#define BLINK_QS_HIDDEN __attribute__((visibility("hidden")))
#else
#define BLINK_QS_HIDDEN
#endif

/* 1 and the probability of the row x (native doubles, NaN missing) in *out; 0 when this
 * model has no QuickScorer tables (its one-row scores then run TL2cgen's code). */
BLINK_QS_HIDDEN int blink_qs_predict(const double* x, double* out);

#if BLINK_QS_AVAILABLE
/* How many of feature k's splits have a threshold below value (not NaN): the length of the
 * run of splits it goes right at. The search tree (pyfuncs/quickscorer.py) is descended
 * from its top node: the keys of a node below the value say which node of the next level
 * to read, one cache line per level, and at the bottom how many distinct thresholds lie
 * below, which blink_qs_count turns into splits. +inf keys are never below. */
static inline int32_t blink_qs_below(int k, double value) {
    const int32_t* level = blink_qs_level + blink_qs_level_off[k];
    const int32_t depth = blink_qs_level_off[k + 1] - blink_qs_level_off[k];
    int32_t below = 0;
    for (int32_t l = 0; l < depth; ++l) {
        const double* node = blink_qs_key + level[l] + BLINK_QS_FANOUT * below;
        int32_t n = 0;
        for (int32_t j = 0; j < BLINK_QS_FANOUT; ++j) n += node[j] < value;
        below = BLINK_QS_FANOUT * below + n;
    }
    return blink_qs_count[blink_qs_count_off[k] + below];
}

int blink_qs_predict(const double* x, double* out) {
    blink_qs_mask reachable[BLINK_QS_TREES];
    memset(reachable, 0xFF, sizeof reachable);
    for (int k = 0; k < BLINK_QS_FEATURES; ++k) {
        const double value = x[k];
        if (isnan(value)) {
            for (int32_t i = blink_qs_nan_off[k]; i < blink_qs_nan_off[k + 1]; ++i)
                reachable[blink_qs_nan_tree[i]] &= blink_qs_nan_mask[i];
            continue;
        }
        const int32_t begin = blink_qs_feature_off[k];
        const int32_t below = blink_qs_below(k, value);
        /* the whole spans below the value: one prefix state per tree, ANDed in one pass */
        const int32_t spans = below / BLINK_QS_SPAN;
        if (spans > 0) {
            const blink_qs_mask* state =
                blink_qs_state + ((size_t)blink_qs_state_off[k] + spans - 1) * BLINK_QS_TREES;
            for (int32_t t = 0; t < BLINK_QS_TREES; ++t) reachable[t] &= state[t];
        }
        for (int32_t i = begin + spans * BLINK_QS_SPAN; i < begin + below; ++i)
            reachable[blink_qs_split_tree[i]] &= blink_qs_split_mask[i];
    }
    /* TL2cgen's categorical test: left when x is a number in [0, 2^24] whose integer part
     * is listed (pyfuncs/quickscorer.py); NaN, negatives and larger values go right. */
    for (int32_t i = 0; i < BLINK_QS_CATEGORICAL; ++i) {
        const blink_qs_category_split* split = blink_qs_category_splits + i;
        const double value = x[split->feature];
        int left = 0;
        if (!isnan(value) && value >= 0 && fabs(value) <= (double)(1U << 24)) {
            const uint32_t code = (uint32_t)value;
            left = code / 32u < (uint32_t)split->words
                && ((blink_qs_category_words[split->word + code / 32u] >> (code % 32u)) & 1u);
        }
        if (!left) reachable[split->tree] &= split->mask;
    }
    double sum = 0.0;
    for (int32_t t = 0; t < BLINK_QS_TREES; ++t)
        sum += blink_qs_leaf[blink_qs_leaf_off[t] + BLINK_QS_CTZ(reachable[t])];
    sum += BLINK_QS_BASE_SCORE;
    *out = (double)(1) / ((double)(1) + exp(-BLINK_QS_SIGMOID_ALPHA * sum));
    return 1;
}
#else
int blink_qs_predict(const double* x, double* out) {
    (void)x;
    (void)out;
    return 0;
}
#endif
