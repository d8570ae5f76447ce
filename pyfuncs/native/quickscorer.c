/* blink's one-row scorer: QuickScorer over the model's tables (pyfuncs/quickscorer.py).
 *
 * For each feature, the splits on it come sorted by threshold; a value goes right at every
 * split whose threshold is below it, so the scan ANDs those splits' masks into their trees'
 * bit vectors and stops at the first threshold at or above the value. A missing value (NaN)
 * goes right at the splits whose default is right, listed apart; each categorical split is
 * tested on its own. Each tree's exit leaf is then the lowest bit left: the leftmost leaf
 * no split made unreachable. The tables are read in order, which the CPU prefetches, so a
 * call that finds them out of cache costs far less than TL2cgen's branch per node does
 * (docs/benchmarks.md, "QuickScorer for one row").
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
        const blink_qs_node* node = blink_qs_nodes + blink_qs_feature_off[k];
        const blink_qs_node* end = blink_qs_nodes + blink_qs_feature_off[k + 1];
        for (; node < end && !(value <= node->threshold); ++node)
            reachable[node->tree] &= node->mask;
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
