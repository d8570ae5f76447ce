"""Fitting a LightGBM binary classifier with blink's defaults."""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 1,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}


def fit_booster(
    features: np.ndarray,
    labels: np.ndarray,
    feature_names: list[str],
    *,
    num_boost_round: int = 100,
    seed: int = 7,
    params: dict[str, Any] | None = None,
) -> Any:
    """Train a seeded, reproducible binary LightGBM model."""
    import lightgbm

    merged = {**DEFAULT_PARAMS, "seed": seed, **(params or {})}
    dataset = lightgbm.Dataset(features, labels, feature_name=feature_names, free_raw_data=False)
    return lightgbm.train(merged, dataset, num_boost_round=num_boost_round)
