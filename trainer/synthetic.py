"""Synthetic borrowers for the demo and the tests.

The story: each user has a median paycheck (log-normal). Spending volatility and debt load
vary independently; the clean buffer (days of spending covered by the balance) falls with
both; overdrafts over 90 days follow a Poisson rate that grows as the buffer shrinks. The
log-odds of default rise with overdrafts, debt load and volatility and fall with income and
buffer, so a tree model has a real, learnable signal. About 3% of values are missing.

Histories (:func:`generate_history`) also carry what a lender's table has as text: the
user's housing and employment type (strings) and whether income arrives by direct deposit
(a boolean). They shift the log-odds too, so the trainer learns them as categories.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

FEATURES = [
    "metric_median_paycheck",
    "metric_overdraft_count90",
    "metric_total_balance",
    "metric_transaction_count90",
    "metric_debt_load30",
    "metric_clean_buffer7",
    "metric_volatility90",
]


@dataclass
class Population:
    user_ids: list[str]
    features: np.ndarray  # (n_users, len(FEATURES)), NaN = missing
    default_probability: np.ndarray
    defaulted: np.ndarray  # 0/1 outcome drawn from default_probability

    def documents(self) -> list[dict[str, float | None]]:
        """One feature document per user, as stored in feature_store_snapshots."""
        return [
            {name: (None if np.isnan(v) else float(v))
             for name, v in zip(FEATURES, row, strict=True)}
            for row in self.features
        ]


def generate_features(n_users: int, rng: np.random.Generator, drift: float = 0.0) -> np.ndarray:
    """Feature matrix for ``n_users``; ``drift`` > 0 shifts income down and volatility up."""
    paycheck = rng.lognormal(mean=np.log(2600) - 0.3 * drift, sigma=0.45, size=n_users)
    volatility = np.clip(rng.beta(2, 5, size=n_users) + 0.15 * drift, 0, 1)
    debt_load = rng.gamma(shape=2.0, scale=0.18, size=n_users)
    buffer = np.clip(7 * rng.beta(3, 2, size=n_users) * (1.2 - volatility) / (1 + debt_load), 0, 7)
    balance = paycheck * (buffer / 7) * rng.lognormal(0, 0.5, size=n_users) - 300 * debt_load
    overdrafts = rng.poisson(0.3 + 2.5 * np.exp(-buffer))
    transactions = rng.poisson(60 + 40 * volatility + paycheck / 100)
    matrix = np.column_stack(
        [paycheck, overdrafts, balance, transactions, debt_load, buffer, volatility]
    ).round(4)
    matrix[rng.random(matrix.shape) < 0.03] = np.nan
    return matrix


def default_probability(matrix: np.ndarray) -> np.ndarray:
    """The true default probability behind the outcomes (missing values count as typical)."""
    filled = np.where(np.isnan(matrix), np.nanmedian(matrix, axis=0), matrix)
    paycheck, overdrafts, balance, _, debt_load, buffer, volatility = filled.T
    logit = (
        -2.4
        + 0.45 * overdrafts
        - 0.8 * np.log(paycheck / 2600)
        + 1.3 * debt_load
        + 2.0 * volatility
        - 0.18 * buffer
        - 0.25 * np.sign(balance) * np.log1p(np.abs(balance) / 1000)
    )
    return 1 / (1 + np.exp(-logit))


def generate(n_users: int, seed: int = 7, drift: float = 0.0, prefix: str = "user-") -> Population:
    """A reproducible population of ``n_users`` with features, probabilities and outcomes."""
    rng = np.random.default_rng(seed)
    matrix = generate_features(n_users, rng, drift)
    probability = default_probability(matrix)
    outcome = (rng.random(n_users) < probability).astype(int)
    user_ids = [f"{prefix}{i}" for i in range(n_users)]
    return Population(user_ids, matrix, probability, outcome)


# --- Histories: snapshots over time and advances with outcomes (for training) ---------------

# Categorical attributes of a user (stable over time) and what each adds to the log-odds.
CATEGORICAL: dict[str, dict[Any, float]] = {
    "housing": {"own": -0.35, "mortgage": -0.15, "rent": 0.25, "family": 0.1},
    "employment_type": {"salaried": -0.2, "self_employed": 0.1, "gig": 0.45,
                        "benefits": 0.3, "retired": -0.1},
    "direct_deposit": {True: -0.3, False: 0.2},
}
CATEGORICAL_WEIGHTS = {
    "housing": [0.25, 0.25, 0.4, 0.1],
    "employment_type": [0.5, 0.12, 0.18, 0.1, 0.1],
    "direct_deposit": [0.7, 0.3],
}


def categorical_attributes(n_users: int, seed: int) -> dict[str, list[Any]]:
    """Each user's housing, employment type and direct deposit (own random stream, so the
    numeric features stay what they were without these)."""
    rng = np.random.default_rng([seed, 1])
    out: dict[str, list[Any]] = {}
    for name, effects in CATEGORICAL.items():
        values = list(effects)
        picks = rng.choice(len(values), size=n_users, p=CATEGORICAL_WEIGHTS[name])
        out[name] = [values[k] for k in picks]
    return out


def categorical_logit(attributes: dict[str, list[Any]], users: list[int]) -> np.ndarray:
    """What the users' categorical attributes add to the log-odds of default."""
    return np.array([sum(CATEGORICAL[name][attributes[name][u]] for name in CATEGORICAL)
                     for u in users], dtype=float)

ADVANCE_TERM_DAYS = 14  # a cash advance is due two weeks after it is issued


@dataclass
class History:
    """Weekly snapshots per user and the advances they took, oldest first.

    ``snapshots``: (user_id, snapshot_at, features document; a missing value is an absent key).
    ``outcomes``: dicts with user_id, issued_at, due_at, outcome, observed_at and the true
    ``probability`` the outcome was drawn from (not stored in the database).
    """

    snapshots: list[tuple[str, datetime, dict[str, Any]]]
    outcomes: list[dict[str, Any]]
    drift_at: datetime | None

    @property
    def default_rate(self) -> float:
        bad = sum(o["outcome"] != "repaid" for o in self.outcomes)
        return bad / max(1, len(self.outcomes))


def _evolve(base: np.ndarray, rng: np.random.Generator, shift: np.ndarray) -> np.ndarray:
    """One week's features from each user's base profile; ``shift`` (0/1 per row) is drift."""
    n = len(base)
    paycheck = base[:, 0] * rng.lognormal(0, 0.05, n) * np.exp(-0.3 * shift)
    volatility = np.clip(base[:, 6] + rng.normal(0, 0.03, n) + 0.15 * shift, 0, 1)
    debt_load = base[:, 4] * rng.lognormal(0, 0.1, n) * (1 + 0.3 * shift)
    buffer = np.clip(base[:, 5] * rng.lognormal(0, 0.15, n) * (1 - 0.3 * shift), 0, 7)
    balance = base[:, 2] * rng.lognormal(0, 0.2, n) - 200 * shift
    overdrafts = rng.poisson(0.3 + 2.5 * np.exp(-buffer))
    transactions = rng.poisson(60 + 40 * volatility + paycheck / 100)
    return np.column_stack(
        [paycheck, overdrafts, balance, transactions, debt_load, buffer, volatility]
    ).round(4)


def generate_history(
    n_users: int,
    *,
    start: datetime,
    weeks: int = 20,
    seed: int = 7,
    advance_rate: float = 0.35,
    drift_at: datetime | None = None,
    drift: float = 1.0,
    prefix: str = "user-",
) -> History:
    """A reproducible history: weekly snapshots for each user, advances and their outcomes.

    The story: every user has a base profile (as in :func:`generate`); each week a snapshot
    re-draws counts and jitters amounts around it. In any week a user takes an advance with
    probability ``advance_rate``, at a random time; its probability of default is
    :func:`default_probability` of the user's latest snapshot strictly before the advance
    (what a lender could have known). A bad advance is 'defaulted' (60%) or 'delinquent',
    observed 1-10 days after the due date; a good one is 'repaid' by its due date. From
    ``drift_at`` on, snapshots shift by ``drift`` (less income, more volatility and debt, a
    thinner buffer) and the default log-odds rise by 0.4 * ``drift``: a drift for
    monitoring to find, and a reason to retrain.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    rng = np.random.default_rng(seed)
    base = generate_features(n_users, rng)
    base = np.where(np.isnan(base), np.nanmedian(base, axis=0), base)
    user_ids = [f"{prefix}{i}" for i in range(n_users)]
    week = timedelta(days=7)
    snap_times: list[np.ndarray] = []  # per week: seconds from start, per user
    snap_values: list[np.ndarray] = []
    for w in range(weeks):
        offsets = w * week.total_seconds() + rng.uniform(0, week.total_seconds(), n_users)
        offsets = offsets.round()
        shifted = np.array([_is_drifted(start, s, drift_at) for s in offsets], dtype=float)
        values = _evolve(base, rng, shifted * drift)
        values[rng.random(values.shape) < 0.03] = np.nan
        snap_times.append(offsets)
        snap_values.append(values)
    times = np.column_stack(snap_times)  # (n_users, weeks), increasing along weeks

    issued: list[tuple[int, float]] = []
    for w in range(weeks):
        takes = rng.random(n_users) < advance_rate
        when = (w * week.total_seconds() + rng.uniform(0, week.total_seconds(), n_users)).round()
        issued.extend((int(u), float(when[u])) for u in np.flatnonzero(takes))
    issued.sort(key=lambda item: (item[1], item[0]))

    prior_rows = []
    for u, seconds in issued:
        # Latest snapshot strictly before issue time (the same rule the trainer applies).
        k = int(np.searchsorted(times[u], seconds, side="left")) - 1
        prior_rows.append(snap_values[k][u] if k >= 0 else np.full(len(FEATURES), np.nan))
    matrix = np.array(prior_rows).reshape(-1, len(FEATURES))
    probability = default_probability(matrix) if len(matrix) else np.zeros(0)
    drifted = np.array([_is_drifted(start, at, drift_at) for _, at in issued], dtype=float)
    attributes = categorical_attributes(n_users, seed)
    logit = (np.log(probability / (1 - probability)) + 0.4 * drift * drifted
             + categorical_logit(attributes, [u for u, _ in issued]))
    probability = 1 / (1 + np.exp(-logit))
    bad = rng.random(len(issued)) < probability
    defaulted = rng.random(len(issued)) < 0.6
    late_days = rng.uniform(1, 10, len(issued))
    early_days = rng.uniform(0, 3, len(issued))

    outcomes = []
    for i, (u, seconds) in enumerate(issued):
        issued_at = start + timedelta(seconds=seconds)
        due_at = issued_at + timedelta(days=ADVANCE_TERM_DAYS)
        if bad[i]:
            outcome = "defaulted" if defaulted[i] else "delinquent"
            observed_at = due_at + timedelta(days=float(late_days[i]))
        else:
            outcome = "repaid"
            observed_at = due_at - timedelta(days=float(early_days[i]))
        outcomes.append({
            "user_id": user_ids[u], "issued_at": issued_at, "due_at": due_at,
            "outcome": outcome, "observed_at": observed_at,
            "probability": float(probability[i]),
        })

    snapshots = []
    missing = np.random.default_rng([seed, 2]).random((weeks, n_users, len(CATEGORICAL))) < 0.03
    for w in range(weeks):
        for u in range(n_users):
            doc: dict[str, Any] = {name: float(v) for name, v in
                                   zip(FEATURES, snap_values[w][u], strict=True)
                                   if not np.isnan(v)}
            for k, name in enumerate(CATEGORICAL):
                if not missing[w, u, k]:
                    doc[name] = attributes[name][u]
            snapshots.append((user_ids[u], start + timedelta(seconds=float(times[u, w])), doc))
    snapshots.sort(key=lambda s: (s[1], s[0]))
    return History(snapshots, outcomes, drift_at)


def _is_drifted(start: datetime, offset_seconds: float, drift_at: datetime | None) -> bool:
    return drift_at is not None and start + timedelta(seconds=float(offset_seconds)) >= drift_at
