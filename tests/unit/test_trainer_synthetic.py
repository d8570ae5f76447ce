"""The synthetic history: snapshots over time, outcomes that depend on features, drift."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

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


# --- Drift knobs -----------------------------------------------------------------------------

DRIFT_AT = START + timedelta(weeks=4)


def canonical_hash(h) -> str:
    """SHA-256 of a canonical JSON dump of a history (every value and timestamp)."""
    def plain(v):
        return v.isoformat() if isinstance(v, datetime) else v

    data = {
        "snapshots": [[u, t.isoformat(), {k: plain(v) for k, v in sorted(doc.items())}]
                      for u, t, doc in h.snapshots],
        "outcomes": [{k: plain(v) for k, v in sorted(o.items())} for o in h.outcomes],
        "drift_at": plain(h.drift_at),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def test_default_knobs_reproduce_the_pre_extension_output_bit_for_bit():
    # These hashes pin the output of generate_history as it was before the drift knobs
    # (drift_features, drift_logit, drift_weeks, concept drift, label delay) were added,
    # computed with that original code. The demo and many tests depend on it: a change
    # here means every existing history moved.
    start = datetime(2026, 1, 5, tzinfo=UTC)
    plain = synthetic.generate_history(60, start=start, weeks=6, seed=3)
    drifted = synthetic.generate_history(60, start=start, weeks=6, seed=3,
                                         drift_at=start + timedelta(weeks=3))
    assert canonical_hash(plain) == (
        "8b64604550ad41db2c17add97dd090d30adc98072f234f52d32052c0bd7a268f")
    assert canonical_hash(drifted) == (
        "0c71bba59ec18b1165160ebff1c49ba894d7a25525912d86b56ff5962aea48fc")
    assert plain.concept_drift_at is None and drifted.drift_at == start + timedelta(weeks=3)


def test_default_probability_is_the_intercept_plus_the_feature_terms():
    matrix = synthetic.generate(500, seed=2).features
    logit = synthetic.DEFAULT_INTERCEPT + sum(synthetic.default_logit_terms(matrix))
    assert np.allclose(synthetic.default_probability(matrix), 1 / (1 + np.exp(-logit)))


def values(h, name, when=lambda t: True):
    return np.array([s[2][name] for s in h.snapshots if name in s[2] and when(s[1])])


def after(t):
    return t >= DRIFT_AT


def before(t):
    return t < DRIFT_AT


def test_drift_on_one_feature_moves_only_that_feature():
    plain = history()
    debt = history(drift_at=DRIFT_AT, drift_features=["metric_debt_load30"])
    assert np.mean(values(debt, "metric_debt_load30", after)) > 1.2 * np.mean(
        values(plain, "metric_debt_load30", after))
    assert np.array_equal(values(debt, "metric_debt_load30", before),
                          values(plain, "metric_debt_load30", before))
    for name in set(synthetic.FEATURES) - {"metric_debt_load30"}:
        assert np.array_equal(values(debt, name), values(plain, name)), name
    # The same advances are taken; only their risk moves (debt load and the log-odds rise).
    assert [o["issued_at"] for o in debt.outcomes] == [o["issued_at"] for o in plain.outcomes]
    late = [(o["probability"], p["probability"])
            for o, p in zip(debt.outcomes, plain.outcomes, strict=True)
            if o["issued_at"] > DRIFT_AT + timedelta(weeks=1)]
    assert np.mean([a for a, _ in late]) > np.mean([b for _, b in late]) + 0.03

    # Naming the buffer also moves overdrafts, which follow it; income does not move.
    buffer = history(drift_at=DRIFT_AT, drift_features=["metric_clean_buffer7"])
    assert np.mean(values(buffer, "metric_clean_buffer7", after)) < 0.8 * np.mean(
        values(plain, "metric_clean_buffer7", after))
    assert np.mean(values(buffer, "metric_overdraft_count90", after)) > 1.2 * np.mean(
        values(plain, "metric_overdraft_count90", after))
    assert np.array_equal(values(buffer, "metric_median_paycheck"),
                          values(plain, "metric_median_paycheck"))


def logit(p):
    p = np.asarray(p)
    return np.log(p / (1 - p))


def test_drift_weeks_flap_and_drift_logit_sets_the_rise():
    weeks = [1, 3, 5, 7, 9, 11]
    plain = history()
    flap = history(drift_weeks=weeks)
    assert flap.drift_at == START + timedelta(weeks=1)

    def week(t):
        return (t - START) // timedelta(weeks=1)

    for w in range(12):
        a = [s for s in flap.snapshots if week(s[1]) == w]
        b = [s for s in plain.snapshots if week(s[1]) == w]
        if w in weeks:
            assert np.mean([s[2]["metric_median_paycheck"] for s in a
                            if "metric_median_paycheck" in s[2]]) < 0.85 * np.mean(
                [s[2]["metric_median_paycheck"] for s in b if "metric_median_paycheck" in s[2]])
        else:
            assert a == b, w

    # No feature drifts, the log-odds rise by exactly drift_logit in the drifted weeks only.
    rise = history(drift_weeks=weeks, drift_features=[], drift_logit=1.0)
    assert rise.snapshots == plain.snapshots
    diff = logit([o["probability"] for o in rise.outcomes]) - logit(
        [o["probability"] for o in plain.outcomes])
    in_drift = np.array([week(o["issued_at"]) in weeks for o in plain.outcomes])
    assert np.allclose(diff[in_drift], 1.0) and np.allclose(diff[~in_drift], 0.0)
    assert in_drift.sum() > 500 and (~in_drift).sum() > 500


def test_drift_logit_zero_keeps_the_default_relation_and_none_is_point_four_drift():
    default = history(drift_at=DRIFT_AT, drift=1.5)
    pure = history(drift_at=DRIFT_AT, drift=1.5, drift_logit=0.0)
    assert pure.snapshots == default.snapshots
    diff = logit([o["probability"] for o in default.outcomes]) - logit(
        [o["probability"] for o in pure.outcomes])
    late = np.array([o["issued_at"] >= DRIFT_AT for o in pure.outcomes])
    assert np.allclose(diff[late], 0.4 * 1.5) and np.allclose(diff[~late], 0.0)


def prior_snapshot_feature(h, name, since):
    """(feature of the latest snapshot before each advance issued after since, defaulted)."""
    by_user: dict[str, list] = {}
    for user, t, doc in h.snapshots:
        by_user.setdefault(user, []).append((t, doc))
    xs, ys = [], []
    for o in h.outcomes:
        if o["issued_at"] < since:
            continue
        prior = [doc for t, doc in by_user[o["user_id"]] if t < o["issued_at"]]
        if prior and name in prior[-1]:
            xs.append(prior[-1][name])
            ys.append(o["outcome"] != "repaid")
    return np.array(xs), np.array(ys, dtype=float)


def test_concept_drift_changes_only_the_relation_to_default():
    plain = history()
    concept = history(concept_drift_at=DRIFT_AT, concept_drift=1.0)
    assert concept.snapshots == plain.snapshots
    assert concept.concept_drift_at == DRIFT_AT and concept.drift_at is None
    early = [o for o in concept.outcomes if o["issued_at"] < DRIFT_AT]
    assert early == [o for o in plain.outcomes if o["issued_at"] < DRIFT_AT]

    x, y = prior_snapshot_feature(plain, "metric_overdraft_count90", DRIFT_AT)
    assert np.corrcoef(x, y)[0, 1] > 0.1
    x, y = prior_snapshot_feature(concept, "metric_overdraft_count90", DRIFT_AT)
    assert len(x) > 1000 and np.corrcoef(x, y)[0, 1] < -0.1
    assert abs(concept.default_rate - plain.default_rate) < 0.03

    # 0.5 removes the signal: the probability no longer depends on the features.
    flat = history(concept_drift_at=DRIFT_AT, concept_drift=0.5)
    late = [o["probability"] for o in flat.outcomes if o["issued_at"] >= DRIFT_AT]
    assert np.ptp(late) < 1e-9 and abs(late[0] - plain.default_rate) < 0.03


def test_label_delay_postpones_observed_at_exactly():
    plain = history(weeks=6)
    late = history(weeks=6, label_delay_days=9.5)
    assert len(late.outcomes) == len(plain.outcomes) > 0
    for a, b in zip(late.outcomes, plain.outcomes, strict=True):
        assert a["observed_at"] - b["observed_at"] == timedelta(days=9.5)
        assert {k: v for k, v in a.items() if k != "observed_at"} == {
            k: v for k, v in b.items() if k != "observed_at"}
    assert late.snapshots == plain.snapshots


def test_categorical_drift_raises_the_share_of_renters_after_the_drift():
    plain = history()
    housing = history(drift_at=DRIFT_AT, drift_features=["housing"], drift_logit=0.0)

    def rent_share(h, when):
        return np.mean(values(h, "housing", when) == "rent")

    assert rent_share(housing, before) == rent_share(plain, before)
    assert rent_share(housing, after) > rent_share(plain, after) + 0.08
    for name in synthetic.FEATURES:
        assert np.array_equal(values(housing, name), values(plain, name)), name
    assert np.array_equal(values(housing, "employment_type"), values(plain, "employment_type"))
    # The log-odds follow the category shown (no other rise: drift_logit is 0).
    p_late = np.array([(o["probability"], q["probability"])
                       for o, q in zip(housing.outcomes, plain.outcomes, strict=True)
                       if o["issued_at"] > DRIFT_AT + timedelta(weeks=1)])
    assert p_late[:, 0].mean() > p_late[:, 1].mean() + 0.005
    assert (p_late[:, 0] != p_late[:, 1]).mean() < 0.5  # only redrawn users move


def test_bad_drift_arguments_raise():
    with pytest.raises(ValueError, match="metric_nope.*known.*metric_debt_load30"):
        history(drift_at=DRIFT_AT, drift_features=["metric_debt_load30", "metric_nope"])
    with pytest.raises(ValueError, match="not the string"):
        history(drift_at=DRIFT_AT, drift_features="housing")
    with pytest.raises(ValueError, match="drift_at or drift_weeks"):
        history(drift_at=DRIFT_AT, drift_weeks=[1, 2])
    with pytest.raises(ValueError, match="week indices"):
        history(drift_weeks=[-1])
    with pytest.raises(ValueError, match="label_delay_days"):
        history(label_delay_days=-1)
