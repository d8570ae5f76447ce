"""SHAP reason codes without a database: additivity, ranking, texts."""

import json
import math

import numpy as np
import pytest

from pyfuncs import reasons as explain
from pyfuncs.errors import BlinkError
from pyfuncs.features import FeatureSpec
from pyfuncs.predictor import BoosterPredictor
from pyfuncs.reasons import ReasonTable

TABLE = ReasonTable.from_rows([
    {"feature_name": "metric_overdraft_count90", "code": "RC02", "reason_text": "Overdrafts",
     "missing_reason_text": "No overdraft history"},
    {"feature_name": "*", "code": "RC99", "reason_text": "Other", "missing_reason_text": None},
])


@pytest.fixture(scope="module")
def booster(model_a):
    return BoosterPredictor(model_a.artifact.model_text)


def test_base_value_plus_shap_values_is_the_raw_score(booster, model_a):
    matrix = model_a.population.features[:400]
    contributions = explain.shap_values(booster, matrix)
    assert contributions.shape == (400, len(model_a.artifact.feature_names) + 1)
    assert np.isnan(matrix).any()  # missing values are explained too
    raw = model_a.booster.predict(matrix, raw_score=True, num_threads=1)
    assert np.abs(contributions.sum(axis=1) - raw).max() <= 1e-9
    assert np.abs(booster.raw_margin(matrix) - raw).max() == 0
    # and the raw score is the probability the model reports, before the sigmoid
    assert np.abs(1 / (1 + np.exp(-raw)) - model_a.predict(matrix)).max() <= 1e-12


def test_top_reasons_are_the_largest_shap_values_in_order(booster, model_a):
    names = model_a.artifact.feature_names
    matrix = model_a.population.features[:200]
    contributions = explain.shap_values(booster, matrix)
    reasons = explain.top_reasons(contributions, matrix, FeatureSpec(names), TABLE)
    for row, phi, values in zip(reasons, contributions, matrix, strict=True):
        assert [r["rank"] for r in row] == [1, 2, 3, 4]
        expected = sorted(range(len(names)), key=lambda j: -phi[j])[:4]
        assert [r["feature"] for r in row] == [names[j] for j in expected]
        assert [r["shap"] for r in row] == [phi[j] for j in expected]
        shap = [r["shap"] for r in row]
        assert shap == sorted(shap, reverse=True)
        for r in row:
            j = names.index(r["feature"])
            assert r["value"] == (None if math.isnan(values[j]) else values[j])


def test_texts_come_from_the_table_with_a_default_and_a_missing_variant():
    names = ["metric_overdraft_count90", "unknown_feature"]
    matrix = np.array([[3.0, 1.0], [np.nan, 1.0]])
    contributions = np.array([[0.5, 0.2, -1.0], [0.5, 0.2, -1.0]])
    reasons = explain.top_reasons(contributions, matrix, FeatureSpec(names), TABLE)
    assert [(r["code"], r["reason"]) for r in reasons[0]] == [("RC02", "Overdrafts"),
                                                             ("RC99", "Other")]
    assert reasons[1][0]["reason"] == "No overdraft history"
    assert reasons[1][0]["value"] is None
    # The '*' row is required: the table keeps it, and pyfuncs holds no copy of its text.
    with pytest.raises(BlinkError, match="no default row"):
        ReasonTable({})


def test_ties_keep_the_model_feature_order_and_json_round_trips():
    names = ["a", "b", "c", "d", "e"]
    matrix = np.ones((1, 5))
    contributions = np.array([[0.1, 0.3, 0.3, 0.0, 0.3, -2.0]])
    reasons = explain.top_reasons(contributions, matrix, FeatureSpec(names), TABLE)
    assert [r["feature"] for r in reasons[0]] == ["b", "c", "e", "a"]
    assert json.loads(explain.to_json(reasons)[0]) == reasons[0]


def test_fewer_features_than_four_gives_fewer_reasons():
    reasons = explain.top_reasons(np.array([[0.2, 0.1, 0.0]]), np.ones((1, 2)),
                                  FeatureSpec(["a", "b"]), TABLE)
    assert [r["feature"] for r in reasons[0]] == ["a", "b"]
