/* The tree tables blink's exact TreeSHAP (treeshap.c) reads.
 *
 * pyfuncs/shap_codegen.py emits one C file per model that defines every symbol declared
 * here from LightGBM's dump_model() JSON; treeshap.c is the fixed algorithm. Both are
 * compiled into the model's shared library, so every symbol except blink_shap is hidden.
 *
 * Layout. Trees are numbered 0..num_trees-1; tree t owns the internal nodes
 * [tree_node_off[t], tree_node_off[t+1]) and the leaves [tree_leaf_off[t], tree_leaf_off[t+1])
 * of the global arrays below. Inside a tree, internal nodes are numbered in depth-first
 * preorder (so a parent always comes before its children, and the root is node 0) and a
 * child reference is a "slot": i < nn for internal node i, nn + j for leaf j, where nn is
 * the tree's number of internal nodes. A tree with one leaf has nn = 0.
 *
 * Node kind bits follow LightGBM's decision_type: bit 0 categorical, bit 1 default_left,
 * bits 2-3 missing type (0 None, 1 Zero, 2 NaN).
 *
 * Fast trees (tree_fast[t] = 1) also carry, per leaf, the distinct features on its path
 * (leaf_nuniq, and leaf_ufeat / leaf_uzero from leaf_uoff): the feature index and its
 * "zero fraction" z (the product, over the path's splits on that feature, of
 * count(child) / count(node)). node_pos gives the position of a node's feature in that list
 * for every leaf below the node, and leaf_qoff the leaf's 2^leaf_nuniq slice of
 * blink_shap_qtab, the one table filled at run time (once, on the first call).
 */
#ifndef BLINK_TREESHAP_H
#define BLINK_TREESHAP_H

#include <stdint.h>

#if defined(__GNUC__)
#define BLINK_SHAP_HIDDEN __attribute__((visibility("hidden")))
#else
#define BLINK_SHAP_HIDDEN
#endif

/* Fast trees keep a per-leaf table of 2^d doubles, d = distinct features on the leaf's
 * path; the code generator sends leaves with more than this to the fallback. */
#define BLINK_SHAP_MAX_FAST_UNIQUE 12

#define BLINK_SHAP_CATEGORICAL 1
#define BLINK_SHAP_DEFAULT_LEFT 2

BLINK_SHAP_HIDDEN extern const int32_t blink_shap_num_features;
BLINK_SHAP_HIDDEN extern const int32_t blink_shap_num_trees;
BLINK_SHAP_HIDDEN extern const double blink_shap_base_value;
/* largest nn + nl of a tree, and deepest leaf of a fallback tree (scratch sizes) */
BLINK_SHAP_HIDDEN extern const int32_t blink_shap_max_slots;
BLINK_SHAP_HIDDEN extern const int32_t blink_shap_max_depth;
BLINK_SHAP_HIDDEN extern const int64_t blink_shap_qtab_size;

BLINK_SHAP_HIDDEN extern const int32_t blink_shap_tree_node_off[];
BLINK_SHAP_HIDDEN extern const int32_t blink_shap_tree_leaf_off[];
BLINK_SHAP_HIDDEN extern const uint8_t blink_shap_tree_fast[];

BLINK_SHAP_HIDDEN extern const int32_t blink_shap_node_feature[];
BLINK_SHAP_HIDDEN extern const uint8_t blink_shap_node_kind[];
BLINK_SHAP_HIDDEN extern const double blink_shap_node_threshold[];
BLINK_SHAP_HIDDEN extern const int32_t blink_shap_node_cat_off[];  /* into cat_bits */
BLINK_SHAP_HIDDEN extern const int32_t blink_shap_node_cat_len[];  /* 32-bit words */
BLINK_SHAP_HIDDEN extern const int32_t blink_shap_node_left[];     /* slots */
BLINK_SHAP_HIDDEN extern const int32_t blink_shap_node_right[];
BLINK_SHAP_HIDDEN extern const double blink_shap_node_count[];
BLINK_SHAP_HIDDEN extern const uint8_t blink_shap_node_pos[];
BLINK_SHAP_HIDDEN extern const uint32_t blink_shap_cat_bits[];

BLINK_SHAP_HIDDEN extern const double blink_shap_leaf_value[];
BLINK_SHAP_HIDDEN extern const double blink_shap_leaf_count[];
BLINK_SHAP_HIDDEN extern const uint8_t blink_shap_leaf_nuniq[];
BLINK_SHAP_HIDDEN extern const int32_t blink_shap_leaf_uoff[];
BLINK_SHAP_HIDDEN extern const int64_t blink_shap_leaf_qoff[];
BLINK_SHAP_HIDDEN extern const int32_t blink_shap_leaf_ufeat[];
BLINK_SHAP_HIDDEN extern const double blink_shap_leaf_uzero[];

BLINK_SHAP_HIDDEN extern double blink_shap_qtab[];

/* SHAP values of n rows (n x num_features doubles, row-major, NaN = missing) into out
 * (n x (num_features + 1), written, base value last): LightGBM's pred_contrib layout. */
int32_t blink_shap(const double* rows, int64_t n, double* out);

#endif
