"""QuickScorer tables of a model: the data of blink's scorer (native/quickscorer.c).

A prediction in a statement finds TL2cgen's tree code (a branch per node, ~0.5 MB for 400
trees x 31 leaves) out of the core's caches, and fetching instructions stalls at every
branch. QuickScorer (Lucchese et al., SIGIR 2015) scores one row from tables read in order
instead: per feature, the splits on it sorted by threshold, each with its tree and the mask
of the leaves that become unreachable when a row goes right there. For each feature the
scorer finds how many thresholds lie below the value (a small search tree of the
feature's distinct thresholds, ``_search_trees``), ANDs the masks of
those splits (the ones the value goes right at) into their trees' bit vectors, and each
tree's exit leaf is the lowest bit left, the leftmost leaf still reachable. The masks and
trees are read in order, which the CPU prefetches, so a cold call costs a fraction of what
TL2cgen's code costs cold; hot, it runs 3-5x as fast as TL2cgen's code, so batches run it
too (docs/benchmarks.md, "QuickScorer for one row", "Session 15, later"). Past many splits
of a feature, a precomputed state of every tree per span of splits stands for their masks
(``_prefix_states``).

The tables come from the same Treelite model TL2cgen compiles, read field by field, and
each split decides as TL2cgen's code does (with pyfuncs.library's NaN tests): a numerical
split sends a row left when its value is NaN and the split's default is left, or when the
value is ``<=`` the threshold; a categorical split sends it left when the value is a
number from 0 to 2^24 whose integer part is one of the split's categories. Categorical
splits have no order to stop a scan, so the scorer tests each of them for every row. The
leaves are summed in tree order and the sigmoid applied as TL2cgen's ``predict`` does, so
both give the same double; vetting refuses a library where they differ on any probe row
(pyfuncs.vet_worker). A model QuickScorer cannot score exactly this way (another
comparison, more than 64 leaves in a tree, more than 16,384 trees, another postprocessor)
gets tables that say so, and its library scores single rows with TL2cgen's code.
"""

from __future__ import annotations

import math

from pyfuncs._typing import Any

HEADER = "blink_qs_tables.h"  # what native/quickscorer.c includes
MAX_LEAVES = 64  # leaves per tree: one bit each in a 64-bit mask
MAX_TREES = 16_384  # a mask per tree on the scorer's stack (at most 128 KB); a uint16_t index
_LEAF, _NUMERICAL, _CATEGORICAL = 0, 1, 2  # Treelite's TreeNodeType
_LESS_EQUAL = 3  # Treelite's Operator kLE
MAX_CATEGORY = 1 << 24  # TL2cgen tests categories up to 2^FLT_MANT_DIG
MIN_SPAN = 64  # splits a prefix state stands for, at least (pyfuncs/native/quickscorer.c)
STATE_BYTES = 1 << 20  # prefix states per library, at most (~0.3 MB for 400 trees x 31 leaves)
FANOUT = 8  # keys per node of a feature's search tree: 8 doubles, one 64-byte cache line


class _Splits:
    """A model's splits as QuickScorer reads them, filled tree by tree."""

    def __init__(self, num_features: int) -> None:
        self.num_features = num_features
        # per feature: (threshold, tree, mask of the leaves left of the split)
        self.numerical: list[list[tuple[float, int, int]]] = [[] for _ in range(num_features)]
        # per feature: (tree, mask) of the splits a missing value goes right at
        self.nan_right: list[list[tuple[int, int]]] = [[] for _ in range(num_features)]
        # (feature, tree, mask, the categories that go left)
        self.categorical: list[tuple[int, int, int, list[int]]] = []


class Unsupported(ValueError):
    """A model QuickScorer cannot score as TL2cgen does; the message says why."""


def tables_source(model: Any) -> dict[str, str]:
    """``{HEADER: C source}`` for the Treelite ``model``: its tables, or a header saying
    QuickScorer is not available for it (and why, in a comment)."""
    try:
        return {HEADER: _tables(model)}
    except Unsupported as exc:
        return {HEADER: f"/* QuickScorer not available: {exc} */\n#define BLINK_QS_AVAILABLE 0\n"}


def _tables(model: Any) -> str:
    header = model.get_header_accessor()
    if str(header.get_field("postprocessor")) != "sigmoid":
        raise Unsupported("the model's postprocessor is not a sigmoid")
    if int(header.get_field("num_target")[0]) != 1 or int(header.get_field("num_class")[0]) != 1:
        raise Unsupported("the model has more than one output")
    if int(header.get_field("average_tree_output")[0]) != 0:
        raise Unsupported("the model averages its trees")
    if model.num_tree > MAX_TREES:
        raise Unsupported(f"the model has {model.num_tree} trees, more than {MAX_TREES}")
    alpha = float(header.get_field("sigmoid_alpha")[0])
    base = float(header.get_field("base_scores")[0])
    splits = _Splits(int(header.get_field("num_feature")[0]))
    leaves = [_tree(model.get_tree_accessor(t), t, splits) for t in range(model.num_tree)]
    bits = 32 if max(len(order) for order in leaves) <= 32 else 64

    def mask_literal(mask: int) -> str:
        return f"{mask & ((1 << bits) - 1)}u" + ("ll" if bits == 64 else "")

    # The splits as two arrays (masks, trees), each feature's in one run sorted by
    # threshold: the scorer finds how many lie below the value in the feature's search
    # tree (_search_trees) and then reads their masks and trees, 6 bytes a split, in order.
    # Ties keep the model's order; any order of equal thresholds gives the same masks.
    ordered = [sorted(numerical, key=lambda s: s[0]) for numerical in splits.numerical]
    masks: list[str] = []
    trees: list[str] = []
    offsets = [0]
    for feature_splits in ordered:
        for _, tree_index, mask in feature_splits:
            masks.append(mask_literal(mask))
            trees.append(str(tree_index))
        offsets.append(len(masks))
    keys, levels, level_offsets, counts, count_offsets = _search_trees(ordered)
    span, states, state_offsets = _prefix_states(ordered, len(leaves), bits)
    nan_trees: list[str] = []
    nan_masks: list[str] = []
    nan_offsets = [0]
    for k in range(splits.num_features):
        for tree_index, mask in splits.nan_right[k]:
            nan_trees.append(str(tree_index))
            nan_masks.append(mask_literal(mask))
        nan_offsets.append(len(nan_trees))
    categorical: list[str] = []
    words: list[str] = []
    for k, tree_index, mask, left in splits.categorical:
        bitset = [0] * ((max(left) // 32 + 1) if left else 0)
        for code in left:
            bitset[code // 32] |= 1 << (code % 32)
        categorical.append(f"{{{mask_literal(mask)}, {tree_index}, {k}, {len(words)}, "
                           f"{len(bitset)}}}")
        words += [f"{word}u" for word in bitset]
    leaf_values = [repr(v) for order in leaves for v in order]
    leaf_offsets = [0]
    for order in leaves:
        leaf_offsets.append(leaf_offsets[-1] + len(order))
    return "\n".join([
        "/* Generated by pyfuncs/quickscorer.py from the model TL2cgen compiles. */",
        "#define BLINK_QS_AVAILABLE 1",
        f"#define BLINK_QS_FEATURES {splits.num_features}",
        f"#define BLINK_QS_TREES {len(leaves)}",
        f"#define BLINK_QS_CATEGORICAL {len(categorical)}",
        f"#define BLINK_QS_BASE_SCORE ({base!r})",
        f"#define BLINK_QS_SIGMOID_ALPHA ({alpha!r})",
        f"typedef uint{bits}_t blink_qs_mask;",
        f"#define BLINK_QS_CTZ(m) __builtin_ctz{'ll' if bits == 64 else ''}(m)",
        "typedef struct { blink_qs_mask mask; int32_t tree, feature, word, words; } "
        "blink_qs_category_split;",
        f"#define BLINK_QS_FANOUT {FANOUT}",
        _array("double", "blink_qs_key", map(_double_literal, keys), aligned=True),
        _array("int32_t", "blink_qs_level", map(str, levels)),
        _array("int32_t", "blink_qs_level_off", map(str, level_offsets)),
        _array("int32_t", "blink_qs_count", map(str, counts)),
        _array("int32_t", "blink_qs_count_off", map(str, count_offsets)),
        _array("blink_qs_mask", "blink_qs_split_mask", masks or ["0u"]),
        _array("uint16_t", "blink_qs_split_tree", trees or ["0"]),
        _array("int32_t", "blink_qs_feature_off", map(str, offsets)),
        f"#define BLINK_QS_SPAN {span}",
        _array("blink_qs_mask", "blink_qs_state", map(mask_literal, states or [0])),
        _array("int32_t", "blink_qs_state_off", map(str, state_offsets)),
        _array("uint16_t", "blink_qs_nan_tree", nan_trees or ["0"]),
        _array("blink_qs_mask", "blink_qs_nan_mask", nan_masks or ["0u"]),
        _array("int32_t", "blink_qs_nan_off", map(str, nan_offsets)),
        _array("blink_qs_category_split", "blink_qs_category_splits",
               categorical or ["{0u, 0, 0, 0, 0}"]),
        _array("uint32_t", "blink_qs_category_words", words or ["0u"]),
        _array("double", "blink_qs_leaf", leaf_values),
        _array("int32_t", "blink_qs_leaf_off", map(str, leaf_offsets)),
        "",
    ])


def _search_trees(ordered: list[list[tuple[float, int, int]]]
                  ) -> tuple[list[float], list[int], list[int], list[int], list[int]]:
    """Each feature's thresholds as a static search tree the scorer descends in a few
    cache lines (``ordered``: each feature's (threshold, tree, mask) sorted by threshold).

    The bottom level is the feature's distinct thresholds, then +inf, padded with +inf to
    whole nodes of FANOUT keys (one 64-byte line); each level above holds the largest key
    of each node below, padded the same way, up to a level of one node. Counting a node's
    keys below the value, level by level from the top, gives the position of the node to
    read next, and at the bottom how many distinct thresholds lie below the value: +inf
    keys never do, so every level's last node exists. ``counts`` turns that into how many
    splits lie below (thresholds repeat across trees: LightGBM splits at bin boundaries,
    at most max_bin of them per feature). A binary search over all the splits read one
    line per halving, about 11 dependent lines for 1,700 splits; this reads 3-4.

    Returns (every level's keys, top level first, feature after feature; each level's
    first key; each feature's first level; the split counts; each feature's first count).
    """
    keys: list[float] = []
    levels: list[int] = []
    level_offsets = [0]
    counts: list[int] = []
    count_offsets = [0]
    for feature_splits in ordered:
        distinct: list[float] = []
        starts: list[int] = []  # where each distinct threshold's splits start
        for i, (value, _, _) in enumerate(feature_splits):
            if not distinct or value != distinct[-1]:  # 0.0 and -0.0 decide alike
                distinct.append(value)
                starts.append(i)
        level = _padded(distinct + [math.inf])
        tree = [level]
        while len(level) > FANOUT:
            level = _padded(level[FANOUT - 1::FANOUT])
            tree.append(level)
        for level in reversed(tree):
            levels.append(len(keys))
            keys.extend(level)
        level_offsets.append(len(levels))
        counts.extend(starts + [len(feature_splits)])  # c distinct below: counts[c] splits
        count_offsets.append(len(counts))
    return keys, levels, level_offsets, counts, count_offsets


def _padded(level: list[float]) -> list[float]:
    """``level`` with +inf keys added up to a whole number of nodes."""
    return level + [math.inf] * (-len(level) % FANOUT)


def _double_literal(value: float) -> str:
    # +inf: every value but NaN goes left at such a split, as TL2cgen's "&& (1)" says.
    return "INFINITY" if value == math.inf else repr(value)


def _prefix_states(ordered: list[list[tuple[float, int, int]]], trees: int,
                   bits: int) -> tuple[int, list[int], list[int]]:
    """Every tree's mask after the first c * span splits of each feature, for c = 1, 2, ...
    (``ordered``: each feature's (threshold, tree, mask) in the tables' threshold order). A
    value past many splits ANDs one state per tree instead of each split's mask, then the
    few splits after the last whole span. The span is the smallest of MIN_SPAN splits or
    more that keeps the states within STATE_BYTES.

    Returns (span, the states one after another, each feature's first state's index)."""
    import numpy as np

    dtype = np.uint32 if bits == 32 else np.uint64
    total = sum(len(feature_splits) for feature_splits in ordered)
    span = max(MIN_SPAN, -(-total * trees * (bits // 8) // STATE_BYTES))
    states: list[int] = []
    offsets = [0]
    for feature_splits in ordered:
        tree = np.array([t for _, t, _ in feature_splits], dtype=np.int64)
        mask = np.array([m & ((1 << bits) - 1) for _, _, m in feature_splits], dtype=dtype)
        state = np.full(trees, np.iinfo(dtype).max, dtype=dtype)
        for start in range(0, len(feature_splits) - span + 1, span):
            np.bitwise_and.at(state, tree[start:start + span], mask[start:start + span])
            states.extend(int(v) for v in state)
        offsets.append(len(states) // trees)
    return span, states, offsets


def _tree(tree: Any, index: int, splits: _Splits) -> list[float]:
    """Tree ``index``'s leaves, left to right; its splits added to ``splits``."""
    kinds = tree.get_field("node_type")
    left, right = tree.get_field("cleft"), tree.get_field("cright")
    feature, threshold = tree.get_field("split_index"), tree.get_field("threshold")
    default_left, cmp = tree.get_field("default_left"), tree.get_field("cmp")
    values = tree.get_field("leaf_value")
    if int((kinds == _LEAF).sum()) > MAX_LEAVES:  # before walking a tree that deep
        raise Unsupported(f"tree {index} has more than {MAX_LEAVES} leaves")
    categories = tree.get_field("category_list")
    begin, end = tree.get_field("category_list_begin"), tree.get_field("category_list_end")
    right_child = tree.get_field("category_list_right_child")
    order: list[float] = []

    def visit(node: int) -> list[int]:
        if kinds[node] == _LEAF:
            if not math.isfinite(values[node]):
                raise Unsupported(f"tree {index} has a leaf of {values[node]}")
            order.append(float(values[node]))
            return [len(order) - 1]
        k = int(feature[node])
        if not 0 <= k < splits.num_features:
            raise Unsupported(f"tree {index} splits on feature {k} of {splits.num_features}")
        below = visit(int(left[node]))
        above = visit(int(right[node]))
        mask = (1 << MAX_LEAVES) - 1
        for leaf in below:  # going right makes the left subtree's leaves unreachable
            mask &= ~(1 << leaf)
        if kinds[node] == _CATEGORICAL:
            # TL2cgen: left when !isnan(x) && x >= 0 && |x| <= 2^24 and (unsigned)x is
            # listed; a list that names the right child instead is not that test.
            listed = [int(c) for c in categories[int(begin[node]):int(end[node])]]
            if right_child[node] or any(not 0 <= c <= MAX_CATEGORY for c in listed):
                raise Unsupported(f"tree {index} has a categorical split QuickScorer does "
                                  "not read as TL2cgen does")
            splits.categorical.append((k, index, mask, listed))
            return below + above
        if kinds[node] != _NUMERICAL:
            raise Unsupported(f"tree {index} has a node of type {int(kinds[node])}")
        if cmp[node] != _LESS_EQUAL:
            raise Unsupported(f"tree {index} has a split other than <=")
        value = float(threshold[node])
        if math.isnan(value) or value == -math.inf:  # TL2cgen may fold these tests
            raise Unsupported(f"tree {index} has a split at threshold {value}")
        splits.numerical[k].append((value, index, mask))
        if not default_left[node]:
            splits.nan_right[k].append((index, mask))
        return below + above

    visit(0)
    return order


def _array(ctype: str, name: str, items: Any, aligned: bool = False) -> str:
    # aligned: each node of FANOUT doubles in one cache line
    attribute = " __attribute__((aligned(64)))" if aligned else ""
    return f"static const {ctype} {name}[]{attribute} = {{" + ",\n  ".join(items) + "};"
