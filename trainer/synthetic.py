"""Synthetic borrowers for the demo and the tests.

The story: each user has a median paycheck (log-normal). Spending volatility and debt load
vary independently; the clean buffer (days of spending covered by the balance) falls with
both; overdrafts over 90 days follow a Poisson rate that grows as the buffer shrinks. The
log-odds of default rise with overdrafts, debt load and volatility and fall with income and
buffer, so a tree model has a real, learnable signal. About 3% of values are missing.

Histories (:func:`generate_history`) also carry what a lender's table has as text: the
user's housing and employment type (strings) and whether income arrives by direct deposit
(a boolean). They shift the log-odds too, so the trainer learns them as categories.

Histories can carry drift for monitoring to find (all off by default; with every drift knob at
its default a history is exactly what it always was for the same arguments):

- covariate drift from ``drift_at`` (or in the weeks ``drift_weeks``, for drift that comes
  and goes), of strength ``drift``, on all numeric features or only on ``drift_features``
  (which may also name the categorical attributes);
- a rise of the default log-odds while drifted (``drift_logit``; 0 keeps P(default | features));
- concept drift from ``concept_drift_at``: the features keep their distribution but their
  relation to default weakens (``concept_drift`` 0.5 removes it) or reverses (1.0);
- late labels: ``label_delay_days`` postpones every outcome's ``observed_at``.

Cohort size is ``n_users`` and ``advance_rate``: about ``n_users * advance_rate`` advances a
week.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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


DEFAULT_INTERCEPT = -2.4  # the log-odds of default when every feature term is 0


def default_logit_terms(matrix: np.ndarray) -> list[np.ndarray]:
    """The features' terms of the log-odds of default, one array per term (missing values
    count as typical): :func:`default_probability` is the logistic of
    :data:`DEFAULT_INTERCEPT` plus their sum."""
    filled = np.where(np.isnan(matrix), np.nanmedian(matrix, axis=0), matrix)
    paycheck, overdrafts, balance, _, debt_load, buffer, volatility = filled.T
    return [
        0.45 * overdrafts,
        -0.8 * np.log(paycheck / 2600),
        1.3 * debt_load,
        2.0 * volatility,
        -0.18 * buffer,
        -0.25 * np.sign(balance) * np.log1p(np.abs(balance) / 1000),
    ]


def default_probability(matrix: np.ndarray) -> np.ndarray:
    """The true default probability behind the outcomes (missing values count as typical)."""
    # Summed left to right from the intercept: bit for bit the arithmetic of the one-line
    # formula this was before (negated products are exact), so histories do not move.
    logit: Any = DEFAULT_INTERCEPT
    for term in default_logit_terms(matrix):
        logit = logit + term
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


def categorical_logit(attributes: dict[str, list[Any]], users: Sequence[int]) -> np.ndarray:
    """What the users' categorical attributes add to the log-odds of default."""
    return np.array([sum(CATEGORICAL[name][attributes[name][u]] for name in CATEGORICAL)
                     for u in users], dtype=float)


# Categorical drift: a drifted user's category may be redrawn from a distribution tilted to
# the riskier value (half the usual weights, half on this target).
CATEGORICAL_DRIFT_TARGET: dict[str, Any] = {
    "housing": "rent",
    "employment_type": "gig",
    "direct_deposit": False,
}

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
    drift_at: datetime | None  # when covariate drift starts (drift_weeks: the first one's start)
    concept_drift_at: datetime | None = None

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


def _evolve_paired(base: np.ndarray, rng: np.random.Generator, side: np.random.Generator,
                   shift: np.ndarray, features: set[str]) -> np.ndarray:
    """:func:`_evolve` with drift on ``features`` only, drawing from ``rng`` exactly what the
    undrifted week draws (so undrifted values, and everything drawn later, match a run
    without drift). A drifted feature is its undrifted draw shifted by :func:`_evolve`'s
    formula; the counts (overdrafts, transactions) follow the shown buffer, volatility and
    paycheck, or, when named themselves, the fully drifted ones. A count whose Poisson rate
    moved is redrawn from ``side``."""
    n = len(base)
    draws = (rng.lognormal(0, 0.05, n), rng.normal(0, 0.03, n), rng.lognormal(0, 0.1, n),
             rng.lognormal(0, 0.15, n), rng.lognormal(0, 0.2, n))
    plain = _continuous(base, draws, np.zeros(n))
    full = _continuous(base, draws, shift)
    shown = {name: full[name] if name in features else plain[name] for name in plain}

    def od_rate(buffer: np.ndarray) -> np.ndarray:
        return 0.3 + 2.5 * np.exp(-buffer)

    def tx_rate(volatility: np.ndarray, paycheck: np.ndarray) -> np.ndarray:
        return 60 + 40 * volatility + paycheck / 100

    pay, vol, buf = "metric_median_paycheck", "metric_volatility90", "metric_clean_buffer7"
    od_plain = od_rate(plain[buf])
    overdrafts = rng.poisson(od_plain)
    tx_plain = tx_rate(plain[vol], plain[pay])
    transactions = rng.poisson(tx_plain)
    src = full if "metric_overdraft_count90" in features else shown
    od_target = od_rate(src[buf])
    src = full if "metric_transaction_count90" in features else shown
    tx_target = tx_rate(src[vol], src[pay])
    moved = od_target != od_plain
    overdrafts[moved] = side.poisson(od_target[moved])
    moved = tx_target != tx_plain
    transactions[moved] = side.poisson(tx_target[moved])
    return np.column_stack(
        [shown[pay], overdrafts, shown["metric_total_balance"], transactions,
         shown["metric_debt_load30"], shown[buf], shown[vol]]
    ).round(4)


def _continuous(base: np.ndarray, draws: tuple[np.ndarray, ...],
                shift: np.ndarray) -> dict[str, np.ndarray]:
    """The amounts :func:`_evolve` computes from its draws, for a ``shift`` per row."""
    g_pay, noise_vol, g_debt, g_buf, g_bal = draws
    return {
        "metric_median_paycheck": base[:, 0] * g_pay * np.exp(-0.3 * shift),
        "metric_volatility90": np.clip(base[:, 6] + noise_vol + 0.15 * shift, 0, 1),
        "metric_debt_load30": base[:, 4] * g_debt * (1 + 0.3 * shift),
        "metric_clean_buffer7": np.clip(base[:, 5] * g_buf * (1 - 0.3 * shift), 0, 7),
        "metric_total_balance": base[:, 2] * g_bal - 200 * shift,
    }


def generate_history(
    n_users: int,
    *,
    start: datetime,
    weeks: int = 20,
    seed: int = 7,
    advance_rate: float = 0.35,
    drift_at: datetime | None = None,
    drift: float = 1.0,
    drift_features: Sequence[str] | None = None,
    drift_logit: float | None = None,
    drift_weeks: Sequence[int] | None = None,
    concept_drift_at: datetime | None = None,
    concept_drift: float = 1.0,
    label_delay_days: float = 0.0,
    prefix: str = "user-",
) -> History:
    """A reproducible history: weekly snapshots for each user, advances and their outcomes.

    The story: every user has a base profile (as in :func:`generate`); each week a snapshot
    re-draws counts and jitters amounts around it. In any week a user takes an advance with
    probability ``advance_rate``, at a random time; its probability of default is
    :func:`default_probability` of the user's latest snapshot strictly before the advance
    (what a lender could have known). A bad advance is 'defaulted' (60%) or 'delinquent',
    observed 1-10 days after the due date; a good one is 'repaid' by its due date.

    Cohort size: about ``n_users * advance_rate`` advances a week, so 100 loans a week is
    ``n_users=286, advance_rate=0.35``.

    Drift (every knob's default gives exactly the history this function always gave):

    - ``drift_at``, ``drift``: from ``drift_at`` on, snapshots shift by ``drift`` (less
      income, more volatility and debt, a thinner buffer, a lower balance) and the default
      log-odds rise: a drift for monitoring to find, and a reason to retrain.
    - ``drift_weeks``: instead of "from ``drift_at`` on", exactly these week indices (0-based
      from ``start``; a time is in week floor((t - start) / 7 days)) are drifted, e.g. every
      other week for drift that flaps. Not together with ``drift_at``; ``History.drift_at``
      is then the start of the first drifted week.
    - ``drift_features``: drift only these features; the others evolve as if undrifted.
      Each named feature shifts by the formula used when all drift. Derived counts follow
      their inputs: naming ``metric_clean_buffer7`` also moves overdrafts, and naming
      paycheck or volatility moves transactions; naming a count drifts it as if its inputs
      had drifted. The categorical attributes (``housing``, ``employment_type``,
      ``direct_deposit``) may be named too: each user's category is redrawn with
      probability 0.5 * ``drift``, towards 'rent', 'gig' and no direct deposit, and shown
      while the user's snapshot is drifted (the log-odds use the category shown).
      With ``drift_features`` or ``drift_weeks`` given, the weekly draws are paired with the
      undrifted run of the same seed: undrifted weeks, unnamed features and the advances
      taken are value for value those of the run without drift.
    - ``drift_logit``: how much the default log-odds rise for an advance taken while
      drifted; None means 0.4 * ``drift``, 0.0 is pure covariate drift (P(default |
      features) unchanged, though the default rate moves with the features).
    - ``concept_drift_at``, ``concept_drift``: from that time, advances' log-odds use the
      feature and category effects times (1 - 2 * ``concept_drift``) (0.5 removes the signal,
      1.0 reverses it), with the intercept moved so the base profiles' mean default
      probability stays what it was. Snapshots are exactly those without concept drift.
    - ``label_delay_days``: every outcome is observed this many days later (``due_at`` stays),
      so monitoring has to wait for its labels.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if concept_drift_at is not None and concept_drift_at.tzinfo is None:
        raise ValueError("concept_drift_at must be timezone-aware")
    if label_delay_days < 0:
        raise ValueError("label_delay_days must not be negative")
    named = _check_drift_features(drift_features)
    week_set = _check_drift_weeks(drift_weeks, drift_at)
    paired = named is not None or week_set is not None
    numeric = set(FEATURES) if named is None else named & set(FEATURES)
    week = timedelta(days=7)
    if week_set is not None:
        drift_at = start + min(week_set) * week if week_set else None

    def is_drifted(seconds: float) -> bool:
        if week_set is not None:
            return math.floor(seconds / week.total_seconds()) in week_set
        return _is_drifted(start, seconds, drift_at)

    rng = np.random.default_rng(seed)
    side = np.random.default_rng([seed, 3])  # counts redrawn under paired drift
    base = generate_features(n_users, rng)
    base = np.where(np.isnan(base), np.nanmedian(base, axis=0), base)
    user_ids = [f"{prefix}{i}" for i in range(n_users)]
    snap_times: list[np.ndarray] = []  # per week: seconds from start, per user
    snap_values: list[np.ndarray] = []
    snap_drifted: list[np.ndarray] = []
    for w in range(weeks):
        offsets = w * week.total_seconds() + rng.uniform(0, week.total_seconds(), n_users)
        offsets = offsets.round()
        shifted = np.array([is_drifted(s) for s in offsets], dtype=float)
        if paired:
            values = _evolve_paired(base, rng, side, shifted * drift, numeric)
        else:
            values = _evolve(base, rng, shifted * drift)
        values[rng.random(values.shape) < 0.03] = np.nan
        snap_times.append(offsets)
        snap_values.append(values)
        snap_drifted.append(shifted > 0)
    times = np.column_stack(snap_times)  # (n_users, weeks), increasing along weeks

    issued: list[tuple[int, float]] = []
    for w in range(weeks):
        takes = rng.random(n_users) < advance_rate
        when = (w * week.total_seconds() + rng.uniform(0, week.total_seconds(), n_users)).round()
        issued.extend((int(u), float(when[u])) for u in np.flatnonzero(takes))
    issued.sort(key=lambda item: (item[1], item[0]))

    prior_rows = []
    prior_drifted = []  # whether what the lender saw (the prior snapshot) was drifted
    for u, seconds in issued:
        # Latest snapshot strictly before issue time (the same rule the trainer applies).
        k = int(np.searchsorted(times[u], seconds, side="left")) - 1
        prior_rows.append(snap_values[k][u] if k >= 0 else np.full(len(FEATURES), np.nan))
        prior_drifted.append(bool(snap_drifted[k][u]) if k >= 0 else is_drifted(seconds))
    matrix = np.array(prior_rows).reshape(-1, len(FEATURES))
    probability = default_probability(matrix) if len(matrix) else np.zeros(0)
    drifted = np.array([is_drifted(at) for _, at in issued], dtype=float)
    attributes = categorical_attributes(n_users, seed)
    redrawn = _categorical_drift(n_users, seed, named, drift)

    def category(name: str, u: int, drifted_now: bool) -> Any:
        if drifted_now and name in redrawn and redrawn[name][u] is not None:
            return redrawn[name][u]
        return attributes[name][u]

    category_logit = np.array(
        [sum(CATEGORICAL[name][category(name, u, d)] for name in CATEGORICAL)
         for (u, _), d in zip(issued, prior_drifted, strict=True)], dtype=float)
    rise = 0.4 * drift if drift_logit is None else drift_logit
    logit = np.log(probability / (1 - probability)) + rise * drifted + category_logit
    if concept_drift_at is not None and len(issued):
        scale = 1 - 2 * concept_drift
        intercept = DEFAULT_INTERCEPT + _concept_intercept_shift(base, attributes, scale)
        first, *rest = default_logit_terms(matrix)
        terms = sum(rest, first)
        concept = intercept + scale * (terms + category_logit) + rise * drifted
        late = np.array([start + timedelta(seconds=at) >= concept_drift_at
                         for _, at in issued])
        logit = np.where(late, concept, logit)
    probability = 1 / (1 + np.exp(-logit))
    bad = rng.random(len(issued)) < probability
    defaulted = rng.random(len(issued)) < 0.6
    late_days = rng.uniform(1, 10, len(issued))
    early_days = rng.uniform(0, 3, len(issued))

    outcomes = []
    delay = timedelta(days=label_delay_days)
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
            "outcome": outcome, "observed_at": observed_at + delay,
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
                    doc[name] = category(name, u, bool(snap_drifted[w][u]))
            snapshots.append((user_ids[u], start + timedelta(seconds=float(times[u, w])), doc))
    snapshots.sort(key=lambda s: (s[1], s[0]))
    return History(snapshots, outcomes, drift_at, concept_drift_at)


def _is_drifted(start: datetime, offset_seconds: float, drift_at: datetime | None) -> bool:
    return drift_at is not None and start + timedelta(seconds=float(offset_seconds)) >= drift_at


def _check_drift_features(names: Sequence[str] | None) -> set[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        raise ValueError(f"drift_features must be a list of names, not the string {names!r}")
    known = [*FEATURES, *CATEGORICAL]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown drift_features {unknown}; known: {known}")
    return set(names)


def _check_drift_weeks(weeks: Sequence[int] | None, drift_at: datetime | None) -> set[int] | None:
    if weeks is None:
        return None
    if drift_at is not None:
        raise ValueError("give drift_at or drift_weeks, not both")
    if any(isinstance(w, bool) or int(w) != w or w < 0 for w in weeks):
        raise ValueError(f"drift_weeks must be week indices >= 0, got {list(weeks)}")
    return {int(w) for w in weeks}


def _categorical_drift(n_users: int, seed: int, named: set[str] | None,
                       drift: float) -> dict[str, list[Any]]:
    """Per named categorical attribute, each user's category while drifted (None: unchanged).

    Its own random stream, drawn for every attribute whatever is named, so the redraws for
    one attribute do not depend on the others."""
    rng = np.random.default_rng([seed, 4])
    out: dict[str, list[Any]] = {}
    for name, effects in CATEGORICAL.items():
        values = list(effects)
        target = np.array([v == CATEGORICAL_DRIFT_TARGET[name] for v in values], dtype=float)
        weights = 0.5 * np.array(CATEGORICAL_WEIGHTS[name]) + 0.5 * target
        switch = rng.random(n_users) < 0.5 * drift
        picks = rng.choice(len(values), size=n_users, p=weights)
        if named is not None and name in named:
            out[name] = [values[k] if s else None for k, s in zip(picks, switch, strict=True)]
    return out


def _concept_intercept_shift(base: np.ndarray, attributes: dict[str, list[Any]],
                             scale: float) -> float:
    """The intercept shift that keeps the base profiles' mean default probability when the
    feature and category effects are multiplied by ``scale`` (bisection: deterministic)."""
    effects = sum(default_logit_terms(base)) + categorical_logit(attributes, range(len(base)))

    def mean_probability(logit: np.ndarray) -> float:
        return float(np.mean(1 / (1 + np.exp(-np.clip(logit, -500, 500)))))

    target = mean_probability(DEFAULT_INTERCEPT + effects)
    lo, hi = -50.0, 50.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if mean_probability(DEFAULT_INTERCEPT + mid + scale * effects) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
