"""Training: fitting LightGBM binary classifiers with blink's defaults, early-stopped."""

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
    """Train a seeded, reproducible binary LightGBM model for a fixed number of rounds.

    Parameters
    ----------
    features, labels : the training matrix (NaN = missing) and 0/1 labels.
    feature_names : column names, stored in the model.
    num_boost_round, seed, params : rounds, seed, LightGBM parameters over DEFAULT_PARAMS.
    """
    import lightgbm

    merged = {**DEFAULT_PARAMS, "seed": seed, **(params or {})}
    dataset = lightgbm.Dataset(features, labels, feature_name=feature_names, free_raw_data=False)
    return lightgbm.train(merged, dataset, num_boost_round=num_boost_round)


def monotone_vector(feature_names: list[str], monotone: dict[str, int]) -> list[int]:
    """LightGBM's ``monotone_constraints`` in feature order; naming an unknown feature fails."""
    from trainer.errors import ConfigError

    unknown = sorted(set(monotone) - set(feature_names))
    if unknown:
        raise ConfigError(
            f"monotone constraint on unknown feature(s) {', '.join(unknown)}; "
            f"the model's features are {', '.join(feature_names)}")
    return [int(monotone.get(name, 0)) for name in feature_names]


def train_early_stopped(
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    feature_names: list[str],
    *,
    seed: int = 7,
    max_rounds: int = 1000,
    early_stopping_rounds: int = 50,
    monotone: dict[str, int] | None = None,
    params: dict[str, Any] | None = None,
    progress: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Train on ``train``, stop when log loss on ``valid`` stops improving.

    Returns the booster cut at its best iteration (rebuilt from its own model text, so the
    artifacts hold exactly the trees that were validated) and the parameters used.
    Same data and seed give identical model text.
    """
    import lightgbm
    from tqdm import tqdm

    merged = {**DEFAULT_PARAMS, "seed": seed, "metric": "binary_logloss", **(params or {})}
    constraints = monotone_vector(feature_names, monotone or {})
    if any(constraints):
        merged["monotone_constraints"] = constraints
    train_set = lightgbm.Dataset(train[0], train[1], feature_name=feature_names,
                                 free_raw_data=False)
    valid_set = lightgbm.Dataset(valid[0], valid[1], reference=train_set, free_raw_data=False)
    with tqdm(total=max_rounds, desc="boosting", unit=" rounds", disable=not progress) as bar:
        def tick(env: Any) -> None:
            bar.update(1)

        booster = lightgbm.train(
            merged, train_set, num_boost_round=max_rounds, valid_sets=[valid_set],
            valid_names=["valid"],
            callbacks=[lightgbm.early_stopping(early_stopping_rounds, verbose=False), tick],
        )
    best = booster.best_iteration or booster.current_iteration()
    trimmed = lightgbm.Booster(model_str=booster.model_to_string(num_iteration=best))
    used = {**merged, "num_boost_round": best, "max_rounds": max_rounds,
            "early_stopping_rounds": early_stopping_rounds}
    return trimmed, used
