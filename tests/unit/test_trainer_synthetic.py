"""The synthetic history: snapshots over time, outcomes that depend on features, drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from trainer import synthetic

START = datetime(2026, 1, 5, tzinfo=UTC)


def history(**kw):
    args = dict(start=START, weeks=12, seed=5)
    args.update(kw)
    return synthetic.generate_history(400, **args)


def test_history_is_reproducible_and_has_weekly_snapshots_per_user():
    a, b = history(), history()
    assert a.snapshots == b.snapshots and a.outcomes == b.outcomes
    per_user = [s for s in a.snapshots if s[0] == "user-3"]
    assert len(per_user) == 12
    times = [s[1] for s in per_user]
    assert times == sorted(times) and times[-1] - times[0] > timedelta(weeks=10)
    names = {k for s in a.snapshots for k in s[2]}
    assert names == set(synthetic.FEATURES) | set(synthetic.CATEGORICAL)
    assert any(len(s[2]) < len(names) for s in a.snapshots)  # some missing
    # the categorical attributes are text and booleans, stable per user
    assert {type(s[2]["housing"]) for s in a.snapshots if "housing" in s[2]} == {str}
    assert {type(s[2]["direct_deposit"]) for s in a.snapshots if "direct_deposit" in s[2]} == {bool}
    assert len({s[2].get("employment_type") for s in per_user} - {None}) == 1


def test_outcomes_are_well_formed_and_depend_on_features():
    h = history(weeks=16)
    assert len(h.outcomes) > 1500
    for o in h.outcomes[:200]:
        assert o["due_at"] - o["issued_at"] == timedelta(days=synthetic.ADVANCE_TERM_DAYS)
        assert o["observed_at"] >= o["issued_at"]
        assert o["outcome"] in ("repaid", "defaulted", "delinquent")
    bad = np.array([o["outcome"] != "repaid" for o in h.outcomes])
    p = np.array([o["probability"] for o in h.outcomes])
    # Outcomes follow the probabilities, and the probabilities vary a lot.
    assert bad[p > np.quantile(p, 0.8)].mean() > 2 * bad[p < np.quantile(p, 0.2)].mean()
    assert 0.05 < bad.mean() < 0.4


def test_drift_shifts_features_and_default_rate_after_the_date():
    drift_at = START + timedelta(weeks=6)
    plain, drifted = history(), history(drift_at=drift_at, drift=1.5)

    def paycheck(h, after):
        return np.median([s[2]["metric_median_paycheck"] for s in h.snapshots
                          if "metric_median_paycheck" in s[2] and (s[1] >= drift_at) == after])

    assert paycheck(drifted, False) == paycheck(plain, False)
    assert paycheck(drifted, True) < 0.8 * paycheck(plain, True)
    late = [o["probability"] for o in drifted.outcomes if o["issued_at"] > drift_at]
    late_plain = [o["probability"] for o in plain.outcomes if o["issued_at"] > drift_at]
    assert np.mean(late) > np.mean(late_plain) + 0.05
