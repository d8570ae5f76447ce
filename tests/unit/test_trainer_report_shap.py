"""The report's SHAP section and the waterfall `blink report --user` draws (real LightGBM and
shap; a small model with a categorical feature trained here on random data)."""

from __future__ import annotations

import base64
import html as htmlmod
import re
from datetime import UTC, datetime

import lightgbm
import numpy as np
import pytest

from pyfuncs.features import FeatureSpec
from trainer.metrics import band_table, evaluate
from trainer.report import (
    PLOTS,
    SHAP_PLOTS,
    render,
    shap_contributions,
    summary_png,
    waterfall_png,
)

PNG = b"\x89PNG\r\n\x1a\n"
SPEC = FeatureSpec(["metric_income", "employment", "metric_overdrafts"],
                   {"employment": ["salaried", "self-employed", "student"]})


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(5)
    n = 2500
    X = np.column_stack([rng.lognormal(7, 0.5, n), rng.integers(0, 3, n).astype(float),
                         rng.poisson(1.5, n).astype(float)])
    X[rng.random(n) < 0.05, 0] = np.nan
    logit = -2 + 0.6 * X[:, 2] + 0.8 * (X[:, 1] == 2) - 0.0003 * np.nan_to_num(X[:, 0], nan=1e3)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    booster = lightgbm.train(
        {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1, "seed": 1},
        lightgbm.Dataset(X[:2000], y[:2000], feature_name=SPEC.names, categorical_feature=[1]),
        num_boost_round=30)
    return booster, X[2000:], y[2000:]


def images(page: str) -> list[tuple[str, bytes]]:
    return [(name, base64.b64decode(data)) for name, data in
            re.findall(r'<img alt="(\w+)" src="data:image/png;base64,([^"]+)"', page)]


def page(model_, rows, y, **kw) -> str:
    p = model_.predict(rows)
    window = {"cutoff": datetime(2026, 6, 1, tzinfo=UTC).isoformat(), "grace_days": 30,
              "excluded": {}, **{k: {"from": "a", "to": "b"} for k in ("train", "valid", "test")}}
    metrics = {"test": {**evaluate(y, p), "expected_cost": 0.5}, "window": window,
               "decision_threshold": 0.2, "costs": {"missed_default": 10, "declined_good": 1},
               "splits": {k: {"rows": 1, "positives": 0} for k in ("train", "valid", "test")},
               "bands": band_table(y, p, [{"band": "A", "max_probability": 1.0}])}
    return render(version="v-shap", y=y, candidate=p, champion=None, champion_version=None,
                  metrics=metrics, champion_metrics=None, gate_reason="no champion",
                  importance={"metric_income": 1.0}, **kw)


def test_report_shows_shap_summary_and_the_riskiest_users_waterfall(model):
    booster, X, y = model
    users = [f"user-{i}" for i in range(len(X))]
    report = page(booster, X, y, booster=booster, X=X, spec=SPEC, users=users)
    found = images(report)
    assert [name for name, _ in found] == [*PLOTS, *SHAP_PLOTS]
    for name, png in found:
        assert png.startswith(PNG), name
    riskiest = int(np.argmax(booster.predict(X)))
    text = htmlmod.unescape(report)
    assert f"Why user user-{riskiest} scores highest" in text
    assert f"all {len(X)} out-of-time rows" in text
    assert 50_000 < len(report) < 600_000  # self-contained, and a few hundred KB at most


def test_without_booster_the_report_has_no_shap_section(model):
    booster, X, y = model
    report = page(booster, X, y)
    assert [name for name, _ in images(report)] == list(PLOTS)
    assert "SHAP" not in report
    with pytest.raises(ValueError, match="out-of-time rows"):
        page(booster, X, y, booster=booster, X=X[:, :2], spec=SPEC)


def test_shap_values_are_exact_they_add_up_to_the_raw_score(model):
    booster, X, _ = model
    contrib = shap_contributions(booster, X)
    assert contrib.shape == (len(X), len(SPEC.names) + 1)
    np.testing.assert_allclose(contrib.sum(axis=1), booster.predict(X, raw_score=True),
                               atol=1e-9)


def test_summary_samples_a_fixed_subset_of_rows(model):
    booster, X, _ = model
    first, drawn = summary_png(booster, X, SPEC, max_rows=100)
    again, _ = summary_png(booster, X, SPEC, max_rows=100)
    other, _ = summary_png(booster, X, SPEC, max_rows=100, seed=8)
    assert drawn == 100 and first.startswith(PNG)
    assert first == again  # the same seed draws the same rows, and the same picture
    assert other != first


def test_waterfall_of_one_user_with_a_category_and_a_missing_value(model):
    booster, X, _ = model
    doc = {"metric_income": None, "employment": "student", "metric_overdrafts": 4}
    row = SPEC.vector(doc, allow_unknown=True, where="in the test")
    shown = [SPEC.display_value(j, v) for j, v in enumerate(row)]
    assert shown == [None, "student", 4.0]
    png = waterfall_png(booster, row, shown, SPEC.names, title="user-42")
    assert png.startswith(PNG)
    # Another category is another picture (the value is drawn next to the feature name).
    other = [None, "salaried", 4.0]
    assert waterfall_png(booster, row, other, SPEC.names, title="user-42") != png
    with pytest.raises(ValueError, match="3 features"):
        waterfall_png(booster, row[:2], shown[:2], SPEC.names)
