"""blink_shap (native TreeSHAP) against LightGBM's pred_contrib: exact to 1e-9 on every row.

Each model is small and seeded; the rows are chosen to hit every decision rule: NaN, zeros,
values at and next to every threshold, tiny values LightGBM's reader rounds to zero,
infinities, unseen, negative and fractional category codes.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from bench.shap_library import build_library, load_shap
from pyfuncs.shap_codegen import MAX_FAST_UNIQUE, native_sources, shap_sources

TOLERANCE = 1e-9


def _train(x: Any, y: Any, rounds: int, **params: Any) -> lgb.Booster:
    params = {"objective": "binary", "verbose": -1, "seed": 7, "num_threads": 1, **params}
    cats = params.pop("categorical_feature", "auto")
    return lgb.train(params, lgb.Dataset(x, y, categorical_feature=cats), rounds)


def _data(n: int, f: int, seed: int, nan: float = 0.05, zeros: float = 0.0) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, f))
    x[rng.random((n, f)) < zeros] = 0.0
    y = (np.tanh(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2] + rng.normal(size=n) > 0).astype(int)
    x[rng.random((n, f)) < nan] = np.nan
    return x, y


def _probe_rows(booster: lgb.Booster, f: int, seed: int, n: int = 400, at_most: int = 300) -> Any:
    """Random rows, then rows whose values sit exactly at (and one ulp around) thresholds
    (``at_most`` thresholds drawn at random, to keep pred_contrib's time down)."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n, f))
    special = [np.nan, 0.0, -0.0, 1e-40, -1e-40, 1e-30, np.inf, -np.inf, 1e300]
    mask = rng.random((n, f))
    rows[mask < 0.15] = np.nan
    rows[(mask >= 0.15) & (mask < 0.25)] = 0.0
    picks = rng.integers(0, len(special), size=(n, f))
    odd = (mask >= 0.25) & (mask < 0.3)
    rows[odd] = np.array(special)[picks[odd]]
    thresholds: list[tuple[int, float]] = []
    for tree in booster.dump_model()["tree_info"]:
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "left_child" in node:
                if node["decision_type"] == "<=":
                    thresholds.append((node["split_feature"], float(node["threshold"])))
                stack += [node["left_child"], node["right_child"]]
    if len(thresholds) > at_most:
        thresholds = [thresholds[i] for i in rng.choice(len(thresholds), at_most, replace=False)]
    at = rng.normal(size=(len(thresholds) * 3, f))
    for i, (feat, thr) in enumerate(thresholds):
        for k, v in enumerate((thr, np.nextafter(thr, -np.inf), np.nextafter(thr, np.inf))):
            at[3 * i + k, feat] = v
    return np.vstack([rows, at])


def _library(booster: lgb.Booster, tmp_path: Any, **kw: Any) -> Any:
    f = booster.num_feature()
    return load_shap(build_library(shap_sources(booster.dump_model(), f, **kw), str(tmp_path)), f)


def _assert_exact(booster: lgb.Booster, rows: Any, tmp_path: Any, **kw: Any) -> None:
    ours = _library(booster, tmp_path, **kw)(rows)
    theirs = np.asarray(booster.predict(rows, pred_contrib=True, num_threads=1))
    assert ours.shape == theirs.shape
    diff = np.abs(ours - theirs)
    assert np.isfinite(ours).all()
    assert diff.max() <= TOLERANCE, f"max |diff| {diff.max()} at row {diff.max(axis=1).argmax()}"


@pytest.fixture(scope="module")
def numeric_model() -> lgb.Booster:
    x, y = _data(3000, 6, seed=1)
    return _train(x, y, 60, num_leaves=31, min_data_in_leaf=5)


@pytest.mark.parametrize("budget", [None, 0, 4000], ids=["tables", "fallback", "mixed"])
def test_numeric_with_nan(numeric_model: lgb.Booster, tmp_path: Any, budget: int | None) -> None:
    kw = {} if budget is None else {"table_budget": budget}
    _assert_exact(numeric_model, _probe_rows(numeric_model, 6, seed=2), tmp_path, **kw)


def test_zero_as_missing(tmp_path: Any) -> None:
    x, y = _data(3000, 5, seed=3, nan=0.03, zeros=0.2)
    booster = _train(x, y, 40, num_leaves=15, zero_as_missing=True)
    assert '"missing_type": "Zero"' in str(booster.dump_model()).replace("'", '"')
    _assert_exact(booster, _probe_rows(booster, 5, seed=4), tmp_path)


def test_use_missing_false(tmp_path: Any) -> None:
    x, y = _data(3000, 5, seed=5, nan=0.1, zeros=0.1)
    booster = _train(x, y, 40, num_leaves=15, use_missing=False)
    _assert_exact(booster, _probe_rows(booster, 5, seed=6), tmp_path)


def test_categorical(tmp_path: Any) -> None:
    rng = np.random.default_rng(8)
    n = 4000
    x, _ = _data(n, 5, seed=9)
    x[:, 3] = rng.integers(0, 40, size=n)  # many codes: bitsets over several words
    x[:, 4] = rng.integers(0, 4, size=n)
    x[rng.random(n) < 0.05, 3] = np.nan
    effect = np.sin(np.nan_to_num(x[:, 3], nan=7.0)) + (x[:, 4] == 2) + np.nan_to_num(x[:, 0])
    y = (effect + rng.normal(size=n) > 0.5).astype(int)
    booster = _train(x, y, 50, num_leaves=31, categorical_feature=[3, 4], min_data_per_group=5,
                     cat_smooth=1.0, max_cat_to_onehot=4, cat_l2=1.0)
    assert '"=="' in str(booster.dump_model()).replace("'", '"')
    rows = _probe_rows(booster, 5, seed=10)
    codes = np.array([0, 1, 2, 3, 31, 32, 33, 39, 40, 63, 64, 1000, -1, -0.5, -0.99, -1.0, 2.7,
                      1e10, -1e10, np.inf, -np.inf, np.nan, 2147483647.0, 2147483648.0])
    rows[: len(rows) // 2, 3] = rng.choice(codes, size=len(rows) // 2)
    rows[len(rows) // 2:, 4] = rng.choice(codes, size=len(rows) - len(rows) // 2)
    _assert_exact(booster, rows, tmp_path)
    (tmp_path / "fallback").mkdir()
    _assert_exact(booster, rows, tmp_path / "fallback", table_budget=0)


def test_single_leaf_tree(tmp_path: Any) -> None:
    x, y = _data(500, 4, seed=11)
    booster = _train(x, y, 5, min_gain_to_split=1e9)
    assert all(t["num_leaves"] == 1 for t in booster.dump_model()["tree_info"])
    _assert_exact(booster, _probe_rows(booster, 4, seed=12, n=50), tmp_path)


def test_constant_feature_and_small_leaves(tmp_path: Any) -> None:
    x, y = _data(400, 4, seed=13)
    x[:, 2] = 1.5
    booster = _train(x, y, 30, num_leaves=8, min_data_in_leaf=1, min_sum_hessian_in_leaf=0)
    _assert_exact(booster, _probe_rows(booster, 4, seed=14, n=200), tmp_path)


def test_deep_leaf_wise_trees(tmp_path: Any) -> None:
    """63 leaves, no depth limit, 24 features that all matter: some leaves have more
    distinct path features than the tables allow, so their trees take the recursive
    fallback inside the same library."""
    rng = np.random.default_rng(15)
    x = rng.normal(size=(3000, 24))
    y = (x.sum(axis=1) + rng.normal(size=3000) > 0).astype(int)
    x[rng.random(x.shape) < 0.05] = np.nan
    booster = _train(x, y, 20, num_leaves=63, max_depth=-1, min_data_in_leaf=3,
                     learning_rate=0.3)
    fast = shap_sources(booster.dump_model(), 24)["shap_trees.c"].split("tree_fast[] = {")[1]
    flags = fast.split("}")[0].replace(",", " ").split()
    assert "0" in flags and "1" in flags  # both paths are exercised
    _assert_exact(booster, _probe_rows(booster, 24, seed=16, n=300), tmp_path)


def test_concurrent_first_calls(numeric_model: lgb.Booster, tmp_path: Any) -> None:
    """The Q tables are filled once, on the first call, even when calls race."""
    shap = _library(numeric_model, tmp_path)
    rows = _probe_rows(numeric_model, 6, seed=17, n=100)
    expected = numeric_model.predict(rows, pred_contrib=True, num_threads=1)
    results: list[Any] = [None] * 4

    def run(i: int) -> None:
        results[i] = shap(rows)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert np.abs(r - expected).max() <= TOLERANCE


def test_empty_batch(numeric_model: lgb.Booster, tmp_path: Any) -> None:
    assert _library(numeric_model, tmp_path)(np.empty((0, 6))).shape == (0, 7)


# ---- the dump is untrusted: only numbers reach the C source ---------------------------------


def _first_split(dump: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = dump["tree_info"][0]["tree_structure"]
    return node


def _first_leaf(dump: dict[str, Any]) -> dict[str, Any]:
    node = dump["tree_info"][0]["tree_structure"]
    while "left_child" in node:
        node = node["left_child"]
    return node


JUNK = [
    (_first_split, "threshold", "0.5); system(\"rm -rf /\"); (0"),
    (_first_split, "threshold", float("nan")),
    (_first_split, "threshold", float("inf")),
    (_first_split, "threshold", True),
    (_first_split, "split_feature", "1"),
    (_first_split, "split_feature", 99),
    (_first_split, "split_feature", True),
    (_first_split, "decision_type", "<"),
    (_first_split, "missing_type", "Maybe"),
    (_first_split, "default_left", 1),
    (_first_split, "internal_count", 0),
    (_first_split, "internal_count", 10.5),
    (_first_split, "left_child", "leaf"),
    (_first_leaf, "leaf_value", "0.1 */ evil(); /*"),
    (_first_leaf, "leaf_value", None),
    (_first_leaf, "leaf_count", -1),
    (_first_leaf, "leaf_index", 10_000),
]


@pytest.mark.parametrize(("where", "key", "value"), JUNK)
def test_codegen_refuses_junk(numeric_model: lgb.Booster, where: Any, key: str,
                              value: Any) -> None:
    dump = copy.deepcopy(numeric_model.dump_model())
    shap_sources(dump, 6)  # the clean dump is fine
    where(dump)[key] = value
    with pytest.raises(ValueError):
        shap_sources(dump, 6)


@pytest.mark.parametrize("value", ["1||2; evil()", "1|2", " 1", "-1", "1||99999999999", "1e3"])
def test_codegen_refuses_junk_categories(numeric_model: lgb.Booster, value: str) -> None:
    dump = copy.deepcopy(numeric_model.dump_model())
    node = _first_split(dump)
    node["decision_type"] = "=="
    node["threshold"] = value
    with pytest.raises(ValueError):
        shap_sources(dump, 6)


def test_codegen_refuses_other_models(numeric_model: lgb.Booster) -> None:
    dump = numeric_model.dump_model()
    with pytest.raises(ValueError):
        shap_sources(dump, 7)  # wrong feature count
    with pytest.raises(ValueError):
        shap_sources({**dump, "num_tree_per_iteration": 3, "num_class": 3}, 6)
    with pytest.raises(ValueError):
        shap_sources({**dump, "tree_info": "junk"}, 6)


def test_generated_source_is_numbers_only(numeric_model: lgb.Booster) -> None:
    text = shap_sources(numeric_model.dump_model(), 6)["shap_trees.c"]
    body = text.split("\n", 2)[2]  # past the comment and the include
    allowed = set("0123456789.-+e,;=[]{}() \n_abcdefghijklmnopqrstuvwxyz")
    assert set(body) <= allowed


def test_python_and_c_agree_on_the_table_cap() -> None:
    header = native_sources()["treeshap.h"]
    assert f"#define BLINK_SHAP_MAX_FAST_UNIQUE {MAX_FAST_UNIQUE}\n" in header
