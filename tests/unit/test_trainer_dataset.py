"""The training set without a database: maturity, labels, temporal split, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from trainer.dataset import (
    OutcomeRow,
    build_dataset,
    discover_features,
    labels,
    matured,
    temporal_split,
)
from trainer.errors import TrainingDataError

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CUTOFF = datetime(2026, 12, 1, tzinfo=UTC)
GRACE = timedelta(days=30)


def row(i: int, *, issued: datetime | None = None, outcome: str = "repaid",
        features: dict | None = None, snapshot: bool = True, due_days: float = 14,
        observed_days: float = 14) -> OutcomeRow:
    issued = issued or T0 + timedelta(hours=i)
    return OutcomeRow(
        id=i, user_id=f"u{i % 50}", issued_at=issued, due_at=issued + timedelta(days=due_days),
        outcome=outcome, observed_at=issued + timedelta(days=observed_days),
        snapshot_id=i if snapshot else None,
        snapshot_at=issued - timedelta(hours=1) if snapshot else None,
        features={"a": float(i % 7), "b": float(i % 3)} if features is None else features)


def population(n: int = 600, seed: int = 0) -> list[OutcomeRow]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        a = float(rng.normal())
        bad = rng.random() < 1 / (1 + np.exp(-(a * 1.5 - 1.5)))
        rows.append(row(i, outcome="defaulted" if bad else "repaid",
                        features={"a": a, "b": float(rng.normal())}))
    return rows


def build(rows: list[OutcomeRow], **kw):
    args = dict(grace=GRACE, features=None, valid_fraction=0.2, test_fraction=0.2,
                min_rows=100, min_positives=5)
    args.update(kw)
    return build_dataset(rows, CUTOFF, **args)


def test_matured_needs_due_date_plus_grace_and_observation_before_cutoff():
    issued = CUTOFF - timedelta(days=60)
    assert matured(row(1, issued=issued), CUTOFF, GRACE)  # due 46 days before, observed
    young = row(2, issued=CUTOFF - timedelta(days=40))  # due + grace is 4 days after cut-off
    assert not matured(young, CUTOFF, GRACE)
    # An early-known default of a running advance is still left out (selection bias).
    early_bad = row(3, issued=CUTOFF - timedelta(days=20), outcome="defaulted", observed_days=2)
    assert not matured(early_bad, CUTOFF, GRACE)
    late_news = row(4, issued=issued, observed_days=70)  # known only after the cut-off
    assert not matured(late_news, CUTOFF, GRACE)


def test_label_is_ever_defaulted_or_delinquent():
    rows = [row(0, outcome="repaid"), row(1, outcome="defaulted"), row(2, outcome="delinquent")]
    assert labels(rows).tolist() == [0, 1, 1]


def test_temporal_split_orders_periods_and_never_straddles_an_instant():
    rng = np.random.default_rng(3)
    times = [T0 + timedelta(days=int(d)) for d in rng.integers(0, 100, 1000)]  # many ties
    split = temporal_split(times, 0.2, 0.2)
    stamp = np.array([t.timestamp() for t in times])
    assert stamp[split.train].max() < stamp[split.valid].min()
    assert stamp[split.valid].max() < stamp[split.test].min()
    assert sorted(np.concatenate([split.train, split.valid, split.test]).tolist()) == list(
        range(1000))
    assert 500 <= len(split.train) <= 650 and 150 <= len(split.test) <= 250
    assert split.windows["test"]["to"] == max(times).isoformat()


def test_temporal_split_ignores_row_order():
    times = [T0 + timedelta(hours=h) for h in range(100)]
    shuffled = list(reversed(times))
    split = temporal_split(shuffled, 0.2, 0.2)
    assert min(shuffled[i] for i in split.test) == T0 + timedelta(hours=80)
    assert max(shuffled[i] for i in split.train) == T0 + timedelta(hours=59)


def test_build_dataset_uses_only_matured_rows_with_a_prior_snapshot():
    rows = population()
    rows.append(row(9000, issued=CUTOFF - timedelta(days=5)))  # not matured
    rows.append(row(9001, issued=T0, snapshot=False))  # no snapshot before issue
    ds = build(rows)
    assert ds.excluded == {"not_matured": 1, "no_prior_snapshot": 1}
    assert len(ds.rows) == 600 and ds.X.shape == (600, 2)
    assert ds.feature_names == ["a", "b"]
    assert sum(c["rows"] for c in ds.counts().values()) == 600


def test_missing_features_in_some_snapshots_are_nan():
    rows = population()
    rows[0].features = {"b": 1.0}  # a absent
    rows[1].features = {"a": None, "b": 2.0}  # a null
    ds = build(rows)
    first = [i for i, r in enumerate(ds.rows) if r.id in (0, 1)]
    assert np.isnan(ds.X[first, 0]).all()
    assert not np.isnan(ds.X[first, 1]).any()


def test_too_little_data_is_refused():
    with pytest.raises(TrainingDataError, match="too little data: 50 matured outcomes"):
        build(population()[:50])


def test_single_class_is_refused():
    rows = [row(i) for i in range(300)]
    with pytest.raises(TrainingDataError, match="single class: all 300 usable outcomes are repaid"):
        build(rows)


def test_a_period_without_enough_defaults_is_refused():
    rows = population()
    for r in rows[480:]:  # the newest 20%: all repaid
        r.outcome = "repaid"
    with pytest.raises(TrainingDataError, match="the test period .* has 0 bad"):
        build(rows)


def test_numbers_mixed_with_text_are_refused_naming_a_snapshot_of_each():
    rows = population()
    rows[7].features = {"a": "12", "b": 1.0}
    with pytest.raises(TrainingDataError, match=r'feature a mixes numbers and text: .* in '
                       r'snapshot 0 of user \'u0\' but "12" in snapshot 7 of user \'u7\''):
        build(rows)


def test_an_array_value_is_refused_naming_feature_snapshot_and_user():
    rows = population()
    rows[7].features = {"a": [1], "b": 1.0}
    with pytest.raises(TrainingDataError, match=r'feature "a" in snapshot 7 of user \'u7\''):
        build(rows)


def with_housing(rows: list[OutcomeRow]) -> list[OutcomeRow]:
    kinds = ["rent", "own", "free", True]
    for i, r in enumerate(rows):
        r.features = {**(r.features or {}), "housing": kinds[i % 4] if i % 9 else None}
    rows[-1].features["housing"] = "castle"  # first seen in the test period
    return rows


def test_text_and_booleans_make_a_feature_categorical_with_training_period_categories():
    ds = build(with_housing(population()))
    # booleans first, then strings, sorted; "castle" only appears out of time
    assert ds.spec.categories == {"housing": [True, "free", "own", "rent"]}
    j = ds.feature_names.index("housing")
    codes = ds.X[:, j]
    assert set(np.unique(codes[~np.isnan(codes)])) == {0.0, 1.0, 2.0, 3.0}
    assert np.isnan(codes[-1])  # "castle": unseen, so missing, as LightGBM reads it
    assert np.isnan(codes[0])  # null


def test_configured_categorical_feature_holding_numbers_is_refused():
    with pytest.raises(TrainingDataError, match="feature a is configured categorical but holds "
                       "numbers"):
        build(population(), categorical=["a"])
    with pytest.raises(TrainingDataError, match="categorical feature\\(s\\) zz are not"):
        build(population(), categorical=["zz"])


def test_feature_missing_everywhere_in_training_period_is_refused():
    rows = population()
    with pytest.raises(TrainingDataError, match="feature\\(s\\) c have no value"):
        build(rows, features=["a", "b", "c"])


def test_discover_features_is_sorted_union():
    assert discover_features([{"z": 1}, {"a": 2}, {}]) == ["a", "z"]
