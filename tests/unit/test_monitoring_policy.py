"""The champion/challenger test spans consecutive windows, and decide() acts on one win."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from pyfuncs.monitoring import evaluate
from pyfuncs.monitoring.evaluate import Cohort, PairedWindow
from pyfuncs.monitoring.policy import Live, Policy, decide

POLICY = Policy(mode="auto")
WEEK = timedelta(days=7)
START = datetime(2025, 3, 3, tzinfo=UTC)


def window(k: int, rows: int, challenger_noise: float, seed: int) -> PairedWindow:
    """A window of loans; each model sees the true risk through its own noise (the champion's
    has standard deviation 1) and predicts the calibrated probability given what it sees."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=rows)
    y = (rng.random(rows) < 1 / (1 + np.exp(-(2 * risk - 2)))).astype(float)

    def model(noise: float) -> np.ndarray:
        seen = (risk + noise * rng.normal(size=rows)) / (1 + noise**2)  # E[risk | seen]
        return 1 / (1 + np.exp(-(2 * seen - 2) / np.sqrt(1 + 0.6 * noise**2 / (1 + noise**2))))

    cohort = Cohort("outcomes", START + k * WEEK, START + (k + 1) * WEEK)
    return PairedWindow(cohort, y, model(1.0), model(challenger_noise))


def test_a_clear_gain_over_two_windows_wins_and_records_each_window():
    m = evaluate.paired(2, 1, [window(0, 600, 0.3, 1), window(1, 600, 0.3, 2)], POLICY, 300)
    assert m.breach and m.rows == 1200 and m.cohort.start == START + WEEK
    assert [w["rows"] for w in m.detail["windows"]] == [600, 600]
    assert all(w["gain"] > 0 for w in m.detail["windows"])
    assert m.lower_bound == pytest.approx(m.value - POLICY.confidence_z * m.sampling_error)


def test_no_win_when_the_challenger_trails_in_one_window():
    # Much better in a big latest window, worse in the one before: pooled, the gain is
    # significant and calibrated, but "ahead in consecutive windows" fails.
    worse, better = window(0, 400, 1.6, 3), window(1, 1500, 0.1, 4)
    m = evaluate.paired(2, 1, [worse, better], POLICY, 300)
    assert m.detail["windows"][0]["gain"] < 0 < m.detail["windows"][1]["gain"]
    assert m.lower_bound > POLICY.min_auc_gain and m.detail["calibrated"]
    assert not m.breach and m.detail["ahead_in_every_window"] is False


def test_no_win_when_an_earlier_window_is_too_small_to_judge():
    m = evaluate.paired(2, 1, [window(0, 40, 0.3, 5), window(1, 600, 0.3, 6)], POLICY, 300)
    assert m.detail["windows"][0]["gain"] is None and not m.breach


def test_the_latest_window_too_small_is_insufficient_data():
    m = evaluate.paired(2, 1, [window(0, 600, 0.3, 7), window(1, 100, 0.3, 8)], POLICY, 300)
    assert m.status == evaluate.INSUFFICIENT and m.rows == 100


def test_equal_models_rarely_win():
    wins = sum(evaluate.paired(2, 1, [window(0, 500, 1, 2 * s), window(1, 500, 1, 2 * s + 1)],
                               POLICY, 300).breach for s in range(200))
    assert wins <= 10  # one-sided 5% level, plus the lead in both windows and min_auc_gain


def test_decide_promotes_on_one_spanning_win_and_respects_the_cooldown():
    m = evaluate.paired(2, 1, [window(0, 600, 0.3, 1), window(1, 600, 0.3, 2)], POLICY, 300)
    as_of = START + 10 * WEEK

    def history(*_):
        return [("ok", 11)]

    live = Live(champion=1, champion_since=START - 30 * WEEK, shadows={2: None},
                champion_inputs_measured=True)
    [promote] = [a for a in decide(POLICY, live, [m], history, as_of) if a.kind == "promote"]
    assert promote.model_id == 2 and promote.withheld is None
    assert promote.cited_runs == [11, None] and "ahead in each of 2 window(s)" in promote.message
    recent = Live(champion=1, champion_since=as_of - WEEK, shadows={2: None},
                  champion_inputs_measured=True)
    [held] = [a for a in decide(POLICY, recent, [m], history, as_of) if a.kind == "promote"]
    assert held.withheld is not None and held.withheld.startswith("cooldown")
