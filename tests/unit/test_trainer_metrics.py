"""Metrics, the cost-optimal threshold and the promotion gate, without a database."""

from __future__ import annotations

import numpy as np
import pytest

from trainer import metrics as m
from trainer.promotion import gate


@pytest.fixture
def scores():
    rng = np.random.default_rng(1)
    p = rng.random(2000) * 0.6
    y = (rng.random(2000) < p).astype(int)
    return y, p


def test_threshold_minimises_expected_cost(scores):
    y, p = scores
    best = m.cost_optimal_threshold(y, p, 10, 1)
    brute = min(m.expected_cost(y, p, t, 10, 1) for t in np.unique(p))
    assert m.expected_cost(y, p, best, 10, 1) == pytest.approx(brute)
    # Cheaper missed defaults mean declining less: the threshold rises.
    assert m.cost_optimal_threshold(y, p, 2, 1) > best


def test_ks_is_the_largest_cdf_gap(scores):
    y, p = scores
    grid = np.unique(p)
    bad_cdf = np.array([(p[y == 1] <= t).mean() for t in grid])
    good_cdf = np.array([(p[y == 0] <= t).mean() for t in grid])
    assert m.ks_statistic(y, p) == pytest.approx(np.max(good_cdf - bad_cdf), abs=1e-9)


def test_calibration_table_and_ece(scores):
    y, p = scores
    table = m.calibration_table(y, p)
    assert len(table) == 10 and sum(b["rows"] for b in table) == len(y)
    means = [b["mean_predicted"] for b in table]
    assert means == sorted(means)
    # p is the true probability here, so calibration error is small; a shifted p is worse.
    assert m.expected_calibration_error(table) < 0.03
    worse = m.expected_calibration_error(m.calibration_table(y, np.clip(p + 0.1, 0, 1)))
    assert worse > 0.08


def test_evaluate_reports_every_metric(scores):
    y, p = scores
    result = m.evaluate(y, p)
    for key in ("roc_auc", "pr_auc", "ks", "brier", "log_loss", "ece", "calibration"):
        assert key in result
    assert 0.5 < result["roc_auc"] < 1
    assert result["rows"] == 2000 and result["positives"] == int(y.sum())


def test_band_table_counts_each_row_once(scores):
    y, p = scores
    bands = [{"band": "A", "max_probability": 0.1}, {"band": "B", "max_probability": 1.0}]
    table = m.band_table(y, p, bands)
    assert [b["rows"] for b in table] == [int((p <= 0.1).sum()), int((p > 0.1).sum())]


GOOD = {"roc_auc": 0.75, "ece": 0.02}


def test_gate_promotes_a_better_model_and_without_champion():
    assert gate(GOOD, {"roc_auc": 0.70, "ece": 0.02}, min_auc_gain=0.005,
                calibration_tolerance=0.01).passed
    assert gate(GOOD, None, min_auc_gain=0.005, calibration_tolerance=0.01).passed


def test_gate_refuses_small_gain_and_worse_calibration():
    small = gate(GOOD, {"roc_auc": 0.748, "ece": 0.02}, min_auc_gain=0.005,
                 calibration_tolerance=0.01)
    assert not small.passed and small.reason.startswith("not better")
    miscalibrated = gate({"roc_auc": 0.8, "ece": 0.05}, {"roc_auc": 0.7, "ece": 0.02},
                         min_auc_gain=0.005, calibration_tolerance=0.01)
    assert not miscalibrated.passed and "worse calibration" in miscalibrated.reason
