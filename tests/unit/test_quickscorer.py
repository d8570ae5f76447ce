"""QuickScorer over the model's tables (every row blink scores, one or many) gives TL2cgen's
double, bit for bit, on every kind of value a split can meet; a model it cannot score keeps
TL2cgen's code."""

from __future__ import annotations

import numpy as np
import pytest
import treelite

from pyfuncs import quickscorer
from pyfuncs.predictor import CompiledPredictor
from pyfuncs.quickscorer import HEADER, MIN_SPAN, tables_source


def entry_points(artifact) -> tuple:
    """TL2cgen's code alone and the library's rows (QuickScorer when it has its tables)."""
    compiled = CompiledPredictor(artifact.compiled_lib, artifact.compiled_lib_sha256,
                                 len(artifact.feature_names))
    return compiled.predict_matrix_tl2cgen, lambda matrix: compiled.predict_matrix(matrix)[0]


def edge_rows(booster, n_features: int, rows: int, seed: int) -> np.ndarray:
    """Rows whose every value is one a split decides on an edge: each threshold, the next
    double on either side, NaN, infinities, both zeros, the smallest subnormal."""
    candidates: list[set[float]] = [
        {np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324} for _ in range(n_features)]

    def walk(node: dict) -> None:
        if "split_feature" in node:
            values = candidates[node["split_feature"]]
            if node["decision_type"] == "==":  # categories: each, a fraction off, out of range
                values.update(v for c in str(node["threshold"]).split("||")
                              for v in (int(c), int(c) + 0.5, int(c) + 1 - 2**-40))
                values.update({-0.5, -1.0, 2.0**24, 2.0**24 + 2, 2.0**31, 2.0**40})
            else:
                t = float(node["threshold"])
                values.update({t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf)})
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    rng = np.random.default_rng(seed)
    columns = [rng.choice(sorted(c, key=lambda v: (np.isnan(v), v)), size=rows)
               for c in candidates]
    return np.column_stack(columns)


def test_a_numerical_model_gets_tables(model_a):
    source = tables_source(treelite.frontend.from_lightgbm(model_a.booster))[HEADER]
    assert "#define BLINK_QS_AVAILABLE 1" in source
    assert f"#define BLINK_QS_TREES {model_a.booster.num_trees()}" in source


def test_quickscorer_gives_tl2cgens_double_bit_for_bit(model_a, model_b):
    for model in (model_a, model_b):
        tree_code, rows = entry_points(model.artifact)
        n = len(model.artifact.feature_names)
        features = model.population.features
        assert np.array_equal(rows(features), tree_code(features))
        assert np.abs(rows(features) - model.predict(features)).max() <= 1e-12
        # Edge values: TL2cgen is the reference (LightGBM reads |x| <= 1e-35 as zero).
        matrix = edge_rows(model.booster, n, 20_000, seed=n)
        expected = tree_code(matrix)
        assert np.array_equal(rows(matrix), expected)
        # one score, through the library's Python module, is the same code on one row
        scorer = CompiledPredictor(model.artifact.compiled_lib, model.artifact.compiled_lib_sha256,
                                   n).stored_scorer
        assert [scorer(r.astype(">f8").tobytes()) for r in matrix[:500]] == list(expected[:500])
    # The edge rows reach both sides of splits and the NaN defaults: not one leaf only.
    assert len(np.unique(expected)) > 1000


def below_by_descent(tables: tuple, k: int, value: float) -> int:
    """The splits of feature k below value, read from the search tree as quickscorer.c's
    blink_qs_below reads it."""
    keys, levels, level_offsets, counts, count_offsets = tables
    below = 0
    for start in levels[level_offsets[k]:level_offsets[k + 1]]:
        node = keys[start + quickscorer.FANOUT * below:][:quickscorer.FANOUT]
        below = quickscorer.FANOUT * below + sum(key < value for key in node)
    return counts[count_offsets[k] + below]


@pytest.mark.parametrize("distinct", [0, 1, 7, 8, 9, 63, 64, 65, 511, 512, 513, 1200])
def test_the_search_tree_counts_the_splits_below_any_value(distinct):
    # Features of every size around the node and level boundaries (one level up to 7
    # distinct thresholds, four past 511), thresholds repeating as LightGBM's bins make
    # them, both zeros and +inf among them: the count is the sorted scan's at every
    # threshold, on either side of it and beyond both ends.
    rng = np.random.default_rng(distinct)
    values = sorted(set(np.round(rng.normal(size=distinct) * 100, 3))) if distinct else []
    if distinct > 2:
        values[1], values[-1] = -0.0, np.inf
    values = sorted(values[:distinct])
    repeats = rng.integers(1, 4, size=len(values))
    ordered = [[(v, 0, 0) for v, r in zip(values, repeats, strict=True)
                for _ in range(r)], [(0.0, 0, 0)]]
    tables = quickscorer._search_trees(ordered)
    thresholds = [v for v, _, _ in ordered[0]]
    depth = tables[2][1] - tables[2][0]
    assert depth == next(d for d in range(1, 9) if 8 ** d >= len(values) + 1)  # + the sentinel
    probes = [-np.inf, np.inf, 0.0, -0.0, 5e-324] + [
        p for v in values for p in (v, np.nextafter(v, np.inf), np.nextafter(v, -np.inf))]
    for value in probes:
        assert below_by_descent(tables, 0, value) == sum(t < value for t in thresholds)
    assert [below_by_descent(tables, 1, v) for v in (-1.0, 0.0, 1.0)] == [0, 0, 1]


def test_prefix_states_stay_within_their_budget(model_a, monkeypatch):
    # A bigger model gets longer spans, not more memory: the states of every tree at every
    # span's end take at most STATE_BYTES (the bit-for-bit tests above run both kinds).
    model = treelite.frontend.from_lightgbm(model_a.booster)

    def span_and_bytes(source: str) -> tuple[int, int]:
        span = int(source.split("#define BLINK_QS_SPAN ")[1].split()[0])
        states = source.split("blink_qs_state[] = {")[1].split("};")[0].count(",") + 1
        mask_bytes = 4 if "typedef uint32_t blink_qs_mask;" in source else 8
        return span, states * mask_bytes

    span, size = span_and_bytes(tables_source(model)[HEADER])
    assert span == MIN_SPAN and size > 0
    monkeypatch.setattr(quickscorer, "STATE_BYTES", size // 4)
    smaller_span, smaller_size = span_and_bytes(tables_source(model)[HEADER])
    assert smaller_span > MIN_SPAN and smaller_size <= size // 4


@pytest.mark.parametrize("fields, reason", [
    ({"postprocessor": "softmax"}, "postprocessor is not a sigmoid"),
    ({"cmp": 2}, "a split other than <="),
    ({"node_type": 7}, "a node of type 7"),
    ({"threshold": -np.inf}, "threshold -inf"),
])
def test_a_model_it_cannot_score_says_why_and_keeps_tl2cgen(model_a, fields, reason):
    source = tables_source(Altered(treelite.frontend.from_lightgbm(model_a.booster), fields))
    assert source[HEADER].startswith("/* QuickScorer not available: ")
    assert reason in source[HEADER] and "#define BLINK_QS_AVAILABLE 0" in source[HEADER]


def test_a_model_with_too_many_trees_keeps_tl2cgen(model_a):
    model = Altered(treelite.frontend.from_lightgbm(model_a.booster), {})
    model.num_tree = 16_385
    source = tables_source(model)[HEADER]
    assert "16385 trees, more than 16384" in source and "BLINK_QS_AVAILABLE 0" in source


def test_a_categorical_model_is_scored_bit_for_bit_too(model_cat):
    source = tables_source(treelite.frontend.from_lightgbm(model_cat.booster))[HEADER]
    assert "BLINK_QS_AVAILABLE 1" in source
    assert int(source.split("#define BLINK_QS_CATEGORICAL ")[1].split()[0]) > 100
    tree_code, rows = entry_points(model_cat.artifact)
    matrix = edge_rows(model_cat.booster, len(model_cat.artifact.feature_names), 20_000,
                       seed=5)
    expected = tree_code(matrix)
    assert np.array_equal(rows(matrix), expected) and len(np.unique(expected)) > 1000


def test_a_categorical_split_listing_the_right_child_keeps_tl2cgen(model_cat):
    model = treelite.frontend.from_lightgbm(model_cat.booster)
    first = next(t for t in range(model.num_tree)
                 if model.get_tree_accessor(t).get_field("node_type")[0] == 2)
    source = tables_source(_RootField(model, first, "category_list_right_child", 1))[HEADER]
    assert "categorical split QuickScorer does not read" in source
    assert "BLINK_QS_AVAILABLE 0" in source


class Altered:
    """A Treelite model with one field changed on the root of every tree (or the header)."""

    def __init__(self, model, fields: dict) -> None:
        self.model, self.fields, self.num_tree = model, fields, model.num_tree

    def get_header_accessor(self):
        return _Accessor(self.model.get_header_accessor(), self.fields, header=True)

    def get_tree_accessor(self, i: int):
        return _Accessor(self.model.get_tree_accessor(i), self.fields, header=False)


class _Accessor:
    def __init__(self, accessor, fields: dict, header: bool) -> None:
        self.accessor, self.fields, self.header = accessor, fields, header

    def get_field(self, name: str):
        value = self.accessor.get_field(name)
        if name in self.fields and (name == "postprocessor") == self.header:
            if name == "postprocessor":
                return self.fields[name]
            value = value.copy()
            value[0] = self.fields[name]
        return value


class _RootField(Altered):
    """A Treelite model with one field changed on the root of one tree."""

    def __init__(self, model, tree: int, name: str, value) -> None:
        super().__init__(model, {})
        self.tree, self.name, self.value = tree, name, value

    def get_tree_accessor(self, i: int):
        return _Accessor(self.model.get_tree_accessor(i),
                         {self.name: self.value} if i == self.tree else {}, header=False)
