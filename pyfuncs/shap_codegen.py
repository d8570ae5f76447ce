"""The tree tables of blink's exact TreeSHAP, as C source generated from a LightGBM dump.

``shap_sources(booster.dump_model(), num_features)`` returns ``{"shap_trees.c": text}``: one
translation unit defining every symbol ``native/treeshap.h`` declares. Compiled together
with ``native/treeshap.c`` (see :func:`native_sources`) it exports
``int32_t blink_shap(const double* rows, int64_t n, double* out)``, LightGBM's
``pred_contrib`` for a binary model, exact to rounding.

The dump is untrusted input: every value is type-checked and re-printed from a Python int
or float (``repr`` of a float round-trips exactly), so the generated C only ever holds
numbers and fixed code; anything unexpected raises ValueError. No heavy imports: this runs
in the database server's Python.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

NATIVE_DIR = os.path.join(os.path.dirname(__file__), "native")

# Mirrors BLINK_SHAP_MAX_FAST_UNIQUE in treeshap.h: a leaf with more distinct path features
# than this sends its tree to the recursive fallback.
MAX_FAST_UNIQUE = 12
# Q tables per model, in doubles (8 bytes): 2^22 = 32 MiB, filled on the first SHAP call.
# Trees past the budget take the fallback (exact too, LightGBM's speed).
DEFAULT_TABLE_BUDGET = 1 << 22
# A categorical split's bitset is one 32-bit word per 32 category codes; cap its size.
MAX_CATEGORY = (1 << 24) - 1
_CATEGORIES = re.compile(r"[0-9]{1,10}(\|\|[0-9]{1,10})*", re.ASCII)
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}
_CATEGORICAL, _DEFAULT_LEFT = 1, 2


@dataclass
class _Tree:
    feature: list[int] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    threshold: list[float] = field(default_factory=list)
    cat_off: list[int] = field(default_factory=list)
    cat_len: list[int] = field(default_factory=list)
    children: list[list[tuple[bool, int]]] = field(default_factory=list)  # (is_leaf, id)
    count: list[int] = field(default_factory=list)
    pos: list[int] = field(default_factory=list)
    leaf_value: list[float] = field(default_factory=list)
    leaf_count: list[int] = field(default_factory=list)
    leaf_index: list[int] = field(default_factory=list)
    leaf_ufeat: list[tuple[int, ...]] = field(default_factory=list)
    leaf_uzero: list[tuple[float, ...]] = field(default_factory=list)
    cat_bits: list[int] = field(default_factory=list)  # offsets in cat_off are into this
    max_depth: int = 0

    def slot(self, child: tuple[bool, int]) -> int:
        is_leaf, i = child
        return len(self.feature) + i if is_leaf else i


def native_sources() -> dict[str, str]:
    """The fixed half of the library: treeshap.c and its header."""
    out = {}
    for name in ("treeshap.c", "treeshap.h"):
        with open(os.path.join(NATIVE_DIR, name), encoding="utf-8") as f:
            out[name] = f.read()
    return out


def shap_sources(
    dump: dict[str, Any], num_features: int, *, table_budget: int = DEFAULT_TABLE_BUDGET
) -> dict[str, str]:
    """C source of the tree tables of ``dump`` (LightGBM ``Booster.dump_model()``).

    ``table_budget`` caps the run-time Q tables (doubles); 0 sends every tree to the
    recursive fallback (the tests use it to check both paths).
    """
    if not isinstance(dump, dict):
        raise ValueError("model dump is not a JSON object")
    _int(num_features, "num_features", 1, 1 << 20)
    if dump.get("num_tree_per_iteration") != 1 or dump.get("num_class") != 1:
        raise ValueError("TreeSHAP codegen handles binary/regression models (one tree per round)")
    if dump.get("average_output") not in (False, None):
        raise ValueError("random-forest models (average_output) are not supported")
    if dump.get("max_feature_idx") != num_features - 1:
        raise ValueError(f"model dump has max_feature_idx {dump.get('max_feature_idx')!r}, "
                         f"expected {num_features - 1}")
    infos = dump.get("tree_info")
    if not isinstance(infos, list):
        raise ValueError("model dump has no tree_info list")
    trees = [_parse_tree(info, num_features, i) for i, info in enumerate(infos)]
    return {"shap_trees.c": _emit(trees, num_features, _base_value(trees), table_budget)}


# ---- validation ----------------------------------------------------------------------------


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise ValueError(f"{what}: expected an integer in [{lo}, {hi}], got {value!r:.80}")
    return value


def _num(value: Any, what: str) -> float:
    if type(value) is int and abs(value) <= 1 << 53:
        return float(value)
    if type(value) is float and math.isfinite(value):
        return value
    raise ValueError(f"{what}: expected a finite number, got {value!r:.80}")


def _categories(value: Any, what: str) -> list[int]:
    """A categorical threshold: LightGBM dumps its bitset's members as "3||7||12"."""
    if type(value) is int:
        cats = [value]
    elif isinstance(value, str) and _CATEGORIES.fullmatch(value):
        cats = [int(c) for c in value.split("||")]
    else:
        raise ValueError(f"{what}: expected category codes like '1||4', got {value!r:.80}")
    for c in cats:
        _int(c, what, 0, MAX_CATEGORY)
    return cats


# ---- parsing -------------------------------------------------------------------------------


def _parse_tree(info: Any, num_features: int, t: int) -> _Tree:
    if not isinstance(info, dict) or not isinstance(info.get("tree_structure"), dict):
        raise ValueError(f"tree {t}: no tree_structure")
    num_leaves = _int(info.get("num_leaves"), f"tree {t} num_leaves", 1, 1 << 24)
    tree = _Tree()
    # Depth-first preorder (left first), iteratively: leaf-wise trees can be deep.
    # Each entry: node, (parent id, side), depth, path's distinct features and zero fractions.
    stack: list[tuple[Any, tuple[int, int], int, tuple[int, ...], tuple[float, ...]]]
    stack = [(info["tree_structure"], (-1, 0), 0, (), ())]
    while stack:
        node, (parent, side), depth, ufeat, uzero = stack.pop()
        where = f"tree {t} node at depth {depth}"
        if not isinstance(node, dict):
            raise ValueError(f"{where}: not an object")
        if depth > num_leaves:
            raise ValueError(f"{where}: deeper than its leaf count allows")
        if "left_child" not in node:  # a leaf
            child = (True, len(tree.leaf_value))
            tree.leaf_value.append(_num(node.get("leaf_value"), f"{where} leaf_value"))
            if num_leaves == 1:
                tree.leaf_count.append(0)  # not used: a one-leaf tree has no splits
                tree.leaf_index.append(0)
            else:
                tree.leaf_count.append(_int(node.get("leaf_count"), f"{where} leaf_count",
                                            0, (1 << 31) - 1))
                tree.leaf_index.append(_int(node.get("leaf_index"), f"{where} leaf_index",
                                            0, num_leaves - 1))
            tree.leaf_ufeat.append(ufeat)
            tree.leaf_uzero.append(uzero)
            tree.max_depth = max(tree.max_depth, depth)
        else:
            i = len(tree.feature)
            child = (False, i)
            feature = _int(node.get("split_feature"), f"{where} split_feature",
                           0, num_features - 1)
            count = _int(node.get("internal_count"), f"{where} internal_count", 1, (1 << 31) - 1)
            missing = node.get("missing_type")
            if not isinstance(missing, str) or missing not in _MISSING:
                raise ValueError(f"{where}: missing_type {missing!r:.80}")
            default_left = node.get("default_left")
            if type(default_left) is not bool:
                raise ValueError(f"{where}: default_left {default_left!r:.80}")
            kind = (_MISSING[missing] << 2) | (_DEFAULT_LEFT if default_left else 0)
            decision = node.get("decision_type")
            if decision == "==":
                cats = _categories(node.get("threshold"), f"{where} threshold")
                words = [0] * (max(cats) // 32 + 1)
                for c in cats:
                    words[c // 32] |= 1 << (c % 32)
                tree.cat_off.append(len(tree.cat_bits))
                tree.cat_len.append(len(words))
                tree.cat_bits.extend(words)
                tree.threshold.append(0.0)
                kind |= _CATEGORICAL
            elif decision == "<=":
                tree.threshold.append(_num(node.get("threshold"), f"{where} threshold"))
                tree.cat_off.append(0)
                tree.cat_len.append(0)
            else:
                raise ValueError(f"{where}: decision_type {decision!r:.80}")
            tree.feature.append(feature)
            tree.kind.append(kind)
            tree.count.append(count)
            tree.children.append([(True, -1), (True, -1)])
            if feature in ufeat:
                pos = ufeat.index(feature)
                incoming = uzero[pos]
                nfeat = ufeat
            else:
                pos, incoming, nfeat = len(ufeat), 1.0, ufeat + (feature,)
            tree.pos.append(min(pos, 31))  # > MAX_FAST_UNIQUE: the tree is not fast anyway
            for side_i, key in ((1, "right_child"), (0, "left_child")):  # left popped first
                sub = node.get(key)
                if not isinstance(sub, dict):
                    raise ValueError(f"{where}: {key} is not an object")
                sub_count = sub.get("internal_count") if "left_child" in sub else sub.get(
                    "leaf_count")
                sub_count = _int(sub_count, f"{where} {key} count", 0, (1 << 31) - 1)
                # LightGBM's TreeSHAP: zero fraction = data_count(child) / data_count(node),
                # times the fraction already on the path for this feature.
                z = (sub_count / float(count)) * incoming
                nzero = uzero[:pos] + (z,) + uzero[pos + 1:]
                stack.append((sub, (i, side_i), depth + 1, nfeat, nzero))
        if parent >= 0:
            tree.children[parent][side] = child
    if len(tree.leaf_value) != num_leaves or sorted(tree.leaf_index) != list(range(num_leaves)):
        raise ValueError(f"tree {t}: leaves do not match num_leaves {num_leaves}")
    _sort_leaves(tree)
    return tree


def _sort_leaves(tree: _Tree) -> None:
    """Number leaves by their count of distinct path features: the per-leaf loop in
    treeshap.c runs that many times, and runs of equal counts keep its exit predictable."""
    order = sorted(range(len(tree.leaf_value)), key=lambda j: len(tree.leaf_ufeat[j]))
    new_id = {old: new for new, old in enumerate(order)}
    tree.leaf_value = [tree.leaf_value[j] for j in order]
    tree.leaf_count = [tree.leaf_count[j] for j in order]
    tree.leaf_index = [tree.leaf_index[j] for j in order]
    tree.leaf_ufeat = [tree.leaf_ufeat[j] for j in order]
    tree.leaf_uzero = [tree.leaf_uzero[j] for j in order]
    tree.children = [[(leaf, new_id[i] if leaf else i) for leaf, i in pair]
                     for pair in tree.children]


def _base_value(trees: list[_Tree]) -> float:
    """pred_contrib's last column: the sum of each tree's ExpectedValue, in LightGBM's order
    (leaves by leaf index, count over the root's count), so it matches to the last bit."""
    base = 0.0
    for tree in trees:
        if not tree.feature:
            base += tree.leaf_value[0]
            continue
        total = float(tree.count[0])
        ev = 0.0
        for j in sorted(range(len(tree.leaf_index)), key=tree.leaf_index.__getitem__):
            ev += (tree.leaf_count[j] / total) * tree.leaf_value[j]
        base += ev
    return base


# ---- emission ------------------------------------------------------------------------------


def _c_array(ctype: str, name: str, values: Iterable[Any], fmt: str = "int") -> str:
    items = [repr(float(v)) if fmt == "float" else str(int(v)) for v in values]
    if not items:
        items = ["0"]  # C has no empty arrays; nothing reads past the offsets
    lines = [", ".join(items[i:i + 12]) for i in range(0, len(items), 12)]
    body = ",\n    ".join(lines)
    return f"const {ctype} blink_shap_{name}[] = {{\n    {body}\n}};\n"


def _emit(trees: list[_Tree], num_features: int, base: float, table_budget: int) -> str:
    node_off, leaf_off, fast = [0], [0], []
    feature: list[int] = []
    kind: list[int] = []
    threshold: list[float] = []
    cat_off: list[int] = []
    cat_len: list[int] = []
    left: list[int] = []
    right: list[int] = []
    count: list[int] = []
    pos: list[int] = []
    cat_bits: list[int] = []
    leaf_value: list[float] = []
    leaf_count: list[int] = []
    nuniq: list[int] = []
    uoff: list[int] = []
    qoff: list[int] = []
    ufeat: list[int] = []
    uzero: list[float] = []
    qsize = 0
    max_slots = 1
    max_depth = -1
    for tree in trees:
        d_max = max(len(u) for u in tree.leaf_ufeat)
        need = sum(1 << len(u) for u in tree.leaf_ufeat) if d_max <= MAX_FAST_UNIQUE else 0
        is_fast = d_max <= MAX_FAST_UNIQUE and qsize + need <= table_budget
        fast.append(1 if is_fast else 0)
        if not is_fast:
            max_depth = max(max_depth, tree.max_depth)
        nn = len(tree.feature)
        max_slots = max(max_slots, nn + len(tree.leaf_value))
        base_bits = len(cat_bits)
        cat_bits.extend(tree.cat_bits)
        for i in range(nn):
            feature.append(tree.feature[i])
            kind.append(tree.kind[i])
            threshold.append(tree.threshold[i])
            cat_off.append(base_bits + tree.cat_off[i] if tree.cat_len[i] else 0)
            cat_len.append(tree.cat_len[i])
            left.append(tree.slot(tree.children[i][0]))
            right.append(tree.slot(tree.children[i][1]))
            count.append(tree.count[i])
            pos.append(tree.pos[i] if is_fast else 0)
        for j, value in enumerate(tree.leaf_value):
            leaf_value.append(value)
            leaf_count.append(tree.leaf_count[j])
            u = tree.leaf_ufeat[j] if is_fast else ()
            nuniq.append(len(u))
            uoff.append(len(ufeat))
            qoff.append(qsize)
            ufeat.extend(u)
            uzero.extend(tree.leaf_uzero[j] if is_fast else ())
            qsize += (1 << len(u)) if is_fast else 0
        node_off.append(len(feature))
        leaf_off.append(len(leaf_value))
    if len(feature) >= 1 << 31 or len(cat_bits) >= 1 << 31 or len(ufeat) >= 1 << 31:
        raise ValueError("model too large for the TreeSHAP tables")
    parts = [
        "/* Generated by pyfuncs/shap_codegen.py from a LightGBM model dump: numbers only. */\n",
        '#include "treeshap.h"\n\n',
        f"const int32_t blink_shap_num_features = {num_features};\n",
        f"const int32_t blink_shap_num_trees = {len(trees)};\n",
        f"const double blink_shap_base_value = {_num(base, 'base value')!r};\n",
        f"const int32_t blink_shap_max_slots = {max_slots};\n",
        f"const int32_t blink_shap_max_depth = {max_depth};\n",
        f"const int64_t blink_shap_qtab_size = {qsize};\n",
        f"double blink_shap_qtab[{max(qsize, 1)}];\n\n",
        _c_array("int32_t", "tree_node_off", node_off),
        _c_array("int32_t", "tree_leaf_off", leaf_off),
        _c_array("uint8_t", "tree_fast", fast),
        _c_array("int32_t", "node_feature", feature),
        _c_array("uint8_t", "node_kind", kind),
        _c_array("double", "node_threshold", threshold, "float"),
        _c_array("int32_t", "node_cat_off", cat_off),
        _c_array("int32_t", "node_cat_len", cat_len),
        _c_array("int32_t", "node_left", left),
        _c_array("int32_t", "node_right", right),
        _c_array("double", "node_count", count, "float"),
        _c_array("uint8_t", "node_pos", pos),
        _c_array("uint32_t", "cat_bits", cat_bits),
        _c_array("double", "leaf_value", leaf_value, "float"),
        _c_array("double", "leaf_count", leaf_count, "float"),
        _c_array("uint8_t", "leaf_nuniq", nuniq),
        _c_array("int32_t", "leaf_uoff", uoff),
        _c_array("int64_t", "leaf_qoff", qoff),
        _c_array("int32_t", "leaf_ufeat", ufeat),
        _c_array("double", "leaf_uzero", uzero, "float"),
    ]
    return "".join(parts)
