"""Synthetic borrowers for the demo and the tests.

The story: each user has a median paycheck (log-normal). Spending volatility and debt load
vary independently; the clean buffer (days of spending covered by the balance) falls with
both; overdrafts over 90 days follow a Poisson rate that grows as the buffer shrinks. The
log-odds of default rise with overdrafts, debt load and volatility and fall with income and
buffer, so a tree model has a real, learnable signal. About 3% of values are missing.
"""

from __future__ import annotations

from dataclasses import dataclass

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
            {name: (None if np.isnan(v) else float(v)) for name, v in zip(FEATURES, row)}
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
