/* Exact path-dependent TreeSHAP for LightGBM binary models: blink's reason codes.
 *
 * The values are those of LightGBM's pred_contrib (Lundberg et al., arXiv:1706.06060, the
 * path-dependent expectation weighted by the training counts). LightGBM's own recursion
 * costs O(L * D^2) per tree and row (L leaves, D path length) with a division in the inner
 * loop; this file computes the same numbers in O(L * d) per tree and row, d the number of
 * distinct features on a leaf's path (d <= min(D, F)).
 *
 * Algorithm: the leaf-table form of Fast TreeSHAP v2 (Yang 2021, arXiv:2109.09847). For a
 * leaf with value v and distinct path features D (|D| = d), each feature j has a zero
 * fraction z_j (the share of training rows that followed the path's splits on j) and, for a
 * row x, o_j = 1 if x follows all of them ("hot") and 0 if not ("cold"). Its contribution to
 * feature i is the Shapley value of a product game:
 *
 *     phi_i += v (o_i - z_i) sum_{S in D\{i}} w(|S|, d) prod_{j in S} o_j prod_{j in D\S\{i}} z_j
 *
 * with w(k, d) = k! (d-k-1)! / d!. Only sets of hot features survive, so with H the hot set,
 * P = prod_{j cold} z_j and Q(T) = v sum_{S in T} w(|S|, d) prod_{j in T\S} z_j:
 *
 *     cold i:  phi_i -= P Q(H)                (the same for every cold feature)
 *     hot i:   phi_i += (1 - z_i) P Q(H\{i})
 *
 * Q depends only on the model: a table of 2^d doubles per leaf, filled once (on the first
 * call) in O(2^d d) through the elementary symmetric polynomials of the z_j. No division is
 * needed anywhere, so zero fractions of 0 are harmless. Per row and tree we evaluate each
 * internal node once, push a bitmask of cold features down the tree, and visit every leaf
 * with d table reads: no recursion, no allocation, no division. Rows are processed in small
 * blocks tree by tree so one tree's tables stay in cache for the whole block.
 *
 * Why not the others: Fast TreeSHAP v1 keeps the O(L D^2) shape; Linear TreeSHAP (Yu et al.
 * 2022) is O(L D) too but evaluates polynomials at interpolation points, whose rounding we
 * would have to prove within 1e-9; a table keyed by hot sets has the same cost and plain
 * sums of positive terms. The price is memory, 2^d doubles per leaf: the code generator
 * caps d (BLINK_SHAP_MAX_FAST_UNIQUE) and the total table size, and trees beyond either cap
 * take the fallback below, a plain implementation of the original recursive algorithm.
 *
 * Decision rules replicate LightGBM's Tree::NumericalDecision / CategoricalDecision, and
 * rows are cleaned as LightGBM's dense-matrix reader does (|x| <= kZeroThreshold -> 0).
 * Thread safety: the only mutable global is the Q table, written once under an atomic
 * guard before any reader sees it; everything else is per call.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "treeshap.h"

/* LightGBM's kZeroThreshold is the float 1e-35f widened to double. */
#define ZERO_THRESHOLD ((double)1e-35f)
#define BLOCK_ROWS 32

/* 1 if x's value v sends internal node g (global index) to its left child. */
static int goes_left(double v, int32_t g) {
    const uint8_t kind = blink_shap_node_kind[g];
    if (kind & BLINK_SHAP_CATEGORICAL) {
        /* LightGBM: NaN goes right; otherwise static_cast<int>(v), and negatives go right.
         * The cast truncates toward zero, so -1 < v < 0 reads category 0; out-of-range
         * values become INT_MIN on x86 (negative: right), which the range test mirrors. */
        if (isnan(v) || !(v > -1.0) || v >= 2147483648.0) return 0;
        const int32_t c = (int32_t)v;
        const int32_t word = c >> 5;
        if (word >= blink_shap_node_cat_len[g]) return 0;
        return (int)((blink_shap_cat_bits[blink_shap_node_cat_off[g] + word] >> (c & 31)) & 1u);
    }
    const int missing = (kind >> 2) & 3;
    if (isnan(v)) {
        if (missing == 2) return (kind & BLINK_SHAP_DEFAULT_LEFT) != 0;
        v = 0.0; /* NaN is zero unless the split learnt a NaN direction */
    }
    if (missing == 1 && v >= -ZERO_THRESHOLD && v <= ZERO_THRESHOLD)
        return (kind & BLINK_SHAP_DEFAULT_LEFT) != 0;
    return v <= blink_shap_node_threshold[g];
}

/* ---- the Q tables --------------------------------------------------------------------- */

/* Q over every subset T of the leaf's features j, .., d-1 added to the base set `set`
 * (|set| = t), where e[0..t] are the elementary symmetric polynomials of set's z. */
static void fill_subsets(double* q, const double* z, const double* w, double v, int d, int j,
                         uint32_t set, int t, const double* e) {
    if (j == d) {
        /* Q(T) = v sum_m w(t - m) e_m: S is T minus the m features whose z is taken. */
        double s = 0.0;
        for (int m = 0; m <= t; ++m) s += w[t - m] * e[m];
        q[set] = v * s;
        return;
    }
    fill_subsets(q, z, w, v, d, j + 1, set, t, e);
    double e2[BLINK_SHAP_MAX_FAST_UNIQUE + 2];
    e2[0] = e[0];
    for (int m = 1; m <= t; ++m) e2[m] = e[m] + z[j] * e[m - 1];
    e2[t + 1] = z[j] * e[t];
    fill_subsets(q, z, w, v, d, j + 1, set | (1u << j), t + 1, e2);
}

static void fill_tables(void) {
    double fact[BLINK_SHAP_MAX_FAST_UNIQUE + 1];
    fact[0] = 1.0;
    for (int k = 1; k <= BLINK_SHAP_MAX_FAST_UNIQUE; ++k) fact[k] = fact[k - 1] * k;
    for (int32_t t = 0; t < blink_shap_num_trees; ++t) {
        if (!blink_shap_tree_fast[t]) continue;
        for (int32_t l = blink_shap_tree_leaf_off[t]; l < blink_shap_tree_leaf_off[t + 1]; ++l) {
            const int d = blink_shap_leaf_nuniq[l];
            if (d == 0) continue;
            /* Shapley weights w(k, d) = k! (d-k-1)! / d!; w[d] pads the full set, whose Q
             * no row reads (a full hot set has no cold feature). */
            double w[BLINK_SHAP_MAX_FAST_UNIQUE + 1];
            for (int k = 0; k < d; ++k) w[k] = fact[k] * fact[d - 1 - k] / fact[d];
            w[d] = 0.0;
            const double one = 1.0;
            fill_subsets(blink_shap_qtab + blink_shap_leaf_qoff[l],
                         blink_shap_leaf_uzero + blink_shap_leaf_uoff[l], w,
                         blink_shap_leaf_value[l], d, 0, 0u, 0, &one);
        }
    }
}

static int tables_state; /* 0 empty, 1 being filled, 2 ready */

static void ensure_tables(void) {
    if (__atomic_load_n(&tables_state, __ATOMIC_ACQUIRE) == 2) return;
    int expected = 0;
    if (__atomic_compare_exchange_n(&tables_state, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        fill_tables();
        __atomic_store_n(&tables_state, 2, __ATOMIC_RELEASE);
        return;
    }
    while (__atomic_load_n(&tables_state, __ATOMIC_ACQUIRE) != 2) sched_yield();
}

/* bit ? a : b without a branch (compilers turn the ternary into one here, and the bits
 * are a coin toss per leaf: mispredictions cost more than the arithmetic). Exact. */
static inline double pick(uint32_t bit, double a, double b) {
    uint64_t ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    const uint64_t m = (uint64_t)0 - (uint64_t)bit;
    ua = (ua & m) | (ub & ~m);
    memcpy(&a, &ua, sizeof a);
    return a;
}

/* ---- fast trees ----------------------------------------------------------------------- */

static void fast_tree(int32_t t, const double* x, double* phi, uint32_t* mask) {
    const int32_t nb = blink_shap_tree_node_off[t];
    const int32_t nn = blink_shap_tree_node_off[t + 1] - nb;
    const int32_t lb = blink_shap_tree_leaf_off[t];
    const int32_t nl = blink_shap_tree_leaf_off[t + 1] - lb;
    if (nn == 0) return; /* one leaf: only the base value */
    /* mask[slot] = features (bit = node_pos) some split above slot sends x away from */
    mask[0] = 0u;
    for (int32_t i = 0; i < nn; ++i) {
        const int32_t g = nb + i;
        const uint32_t m = mask[i];
        const uint32_t bit = 1u << blink_shap_node_pos[g];
        const int left = goes_left(x[blink_shap_node_feature[g]], g);
        mask[blink_shap_node_left[g]] = left ? m : (m | bit);
        mask[blink_shap_node_right[g]] = left ? (m | bit) : m;
    }
    const uint32_t* leaf_mask = mask + nn;
    for (int32_t j = 0; j < nl; ++j) {
        const int32_t l = lb + j;
        const int d = blink_shap_leaf_nuniq[l];
        const uint32_t cold = leaf_mask[j];
        const uint32_t hot = ((1u << d) - 1u) & ~cold;
        const double* z = blink_shap_leaf_uzero + blink_shap_leaf_uoff[l];
        const int32_t* f = blink_shap_leaf_ufeat + blink_shap_leaf_uoff[l];
        const double* q = blink_shap_qtab + blink_shap_leaf_qoff[l];
        /* Branch-free: hot and cold bits are data, and unpredictable. For a cold k,
         * hot & ~bit = hot, so one read q[hot & ~bit] serves both cases. */
        double p = 1.0;
        for (int k = 0; k < d; ++k) p *= pick((cold >> k) & 1u, z[k], 1.0);
        for (int k = 0; k < d; ++k)
            phi[f[k]] += pick((hot >> k) & 1u, 1.0 - z[k], -1.0) * p * q[hot & ~(1u << k)];
    }
}

/* ---- fallback: the recursive algorithm (arXiv:1706.06060, Algorithm 2) ----------------- */

typedef struct {
    int32_t feature;
    double zero, one, pweight;
} path_elem;

typedef struct {
    int32_t nb, nn, lb;
    const double* x;
    double* phi;
} rec_tree;

static double slot_count(const rec_tree* r, int32_t slot) {
    return slot < r->nn ? blink_shap_node_count[r->nb + slot]
                        : blink_shap_leaf_count[r->lb + slot - r->nn];
}

static void extend_path(path_elem* p, int depth, double zero, double one, int32_t feature) {
    p[depth].feature = feature;
    p[depth].zero = zero;
    p[depth].one = one;
    p[depth].pweight = depth == 0 ? 1.0 : 0.0;
    for (int i = depth - 1; i >= 0; --i) {
        p[i + 1].pweight += one * p[i].pweight * (i + 1) / (double)(depth + 1);
        p[i].pweight = zero * p[i].pweight * (depth - i) / (double)(depth + 1);
    }
}

static void unwind_path(path_elem* p, int depth, int index) {
    const double one = p[index].one, zero = p[index].zero;
    double next = p[depth].pweight;
    for (int i = depth - 1; i >= 0; --i) {
        if (one != 0.0) {
            const double tmp = p[i].pweight;
            p[i].pweight = next * (depth + 1) / ((i + 1) * one);
            next = tmp - p[i].pweight * zero * (depth - i) / (double)(depth + 1);
        } else {
            p[i].pweight = p[i].pweight * (depth + 1) / (zero * (depth - i));
        }
    }
    for (int i = index; i < depth; ++i) {
        p[i].feature = p[i + 1].feature;
        p[i].zero = p[i + 1].zero;
        p[i].one = p[i + 1].one;
    }
}

static double unwound_sum(const path_elem* p, int depth, int index) {
    const double one = p[index].one, zero = p[index].zero;
    double next = p[depth].pweight, total = 0.0;
    for (int i = depth - 1; i >= 0; --i) {
        if (one != 0.0) {
            const double tmp = next * (depth + 1) / ((i + 1) * one);
            total += tmp;
            next = p[i].pweight - tmp * zero * ((depth - i) / (double)(depth + 1));
        } else {
            total += (p[i].pweight / zero) / ((depth - i) / (double)(depth + 1));
        }
    }
    return total;
}

static void recurse(const rec_tree* r, int32_t slot, int depth, path_elem* parent, double zero,
                    double one, int32_t feature) {
    path_elem* p = parent + depth;
    if (depth > 0) memcpy(p, parent, (size_t)depth * sizeof(path_elem));
    extend_path(p, depth, zero, one, feature);
    if (slot >= r->nn) {
        const double v = blink_shap_leaf_value[r->lb + slot - r->nn];
        for (int i = 1; i <= depth; ++i)
            r->phi[p[i].feature] += unwound_sum(p, depth, i) * (p[i].one - p[i].zero) * v;
        return;
    }
    const int32_t g = r->nb + slot;
    const int32_t f = blink_shap_node_feature[g];
    const int left = goes_left(r->x[f], g);
    const int32_t hot = left ? blink_shap_node_left[g] : blink_shap_node_right[g];
    const int32_t cold = left ? blink_shap_node_right[g] : blink_shap_node_left[g];
    const double w = blink_shap_node_count[g];
    const double hot_zero = slot_count(r, hot) / w, cold_zero = slot_count(r, cold) / w;
    double in_zero = 1.0, in_one = 1.0;
    int k = 0;
    while (k <= depth && p[k].feature != f) ++k;
    if (k <= depth) { /* the feature is already on the path: undo it, redo it here */
        in_zero = p[k].zero;
        in_one = p[k].one;
        unwind_path(p, depth, k);
        depth -= 1;
    }
    recurse(r, hot, depth + 1, p, hot_zero * in_zero, in_one, f);
    recurse(r, cold, depth + 1, p, cold_zero * in_zero, 0.0, f);
}

static void fallback_tree(int32_t t, const double* x, double* phi, path_elem* path) {
    rec_tree r;
    r.nb = blink_shap_tree_node_off[t];
    r.nn = blink_shap_tree_node_off[t + 1] - r.nb;
    r.lb = blink_shap_tree_leaf_off[t];
    r.x = x;
    r.phi = phi;
    if (r.nn == 0) return;
    recurse(&r, 0, 0, path, 1.0, 1.0, -1);
}

/* ---- entry point ---------------------------------------------------------------------- */

int32_t blink_shap(const double* rows, int64_t n, double* out) {
    if (n < 0 || (n > 0 && (rows == NULL || out == NULL))) return 1;
    if (n == 0) return 0;
    ensure_tables();
    const int64_t nf = blink_shap_num_features;
    const int64_t stride = nf + 1;
    const int64_t depth = blink_shap_max_depth; /* -1: no fallback tree */
    const size_t path_len = depth < 0 ? 0 : (size_t)((depth + 2) * (depth + 3) / 2);
    double* x = malloc(sizeof(double) * (size_t)(BLOCK_ROWS * (nf > 0 ? nf : 1)));
    uint32_t* mask = malloc(sizeof(uint32_t) * (size_t)(blink_shap_max_slots + 1));
    path_elem* path = path_len ? malloc(sizeof(path_elem) * path_len) : NULL;
    if (x == NULL || mask == NULL || (path_len && path == NULL)) {
        free(x);
        free(mask);
        free(path);
        return 2;
    }
    for (int64_t r0 = 0; r0 < n; r0 += BLOCK_ROWS) {
        const int64_t nb = n - r0 < BLOCK_ROWS ? n - r0 : BLOCK_ROWS;
        /* LightGBM's dense reader drops |x| <= kZeroThreshold: the model sees 0 there. */
        for (int64_t i = 0; i < nb * nf; ++i) {
            const double v = rows[r0 * nf + i];
            x[i] = fabs(v) <= ZERO_THRESHOLD ? 0.0 : v;
        }
        double* o = out + r0 * stride;
        memset(o, 0, sizeof(double) * (size_t)(nb * stride));
        for (int32_t t = 0; t < blink_shap_num_trees; ++t) {
            if (blink_shap_tree_fast[t]) {
                for (int64_t r = 0; r < nb; ++r) fast_tree(t, x + r * nf, o + r * stride, mask);
            } else {
                for (int64_t r = 0; r < nb; ++r) fallback_tree(t, x + r * nf, o + r * stride, path);
            }
        }
        for (int64_t r = 0; r < nb; ++r) o[r * stride + nf] = blink_shap_base_value;
    }
    free(x);
    free(mask);
    free(path);
    return 0;
}
