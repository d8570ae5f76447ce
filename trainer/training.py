"""Training: fitting LightGBM binary classifiers with blink's defaults, early-stopped."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from pyfuncs.features import FeatureSpec

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
    feature_names: list[str] | FeatureSpec,
    *,
    num_boost_round: int = 100,
    seed: int = 7,
    params: dict[str, Any] | None = None,
) -> Any:
    """Train a seeded, reproducible binary LightGBM model for a fixed number of rounds.

    Parameters
    ----------
    features, labels : the training matrix (NaN = missing, categories as codes) and 0/1 labels.
    feature_names : column names, stored in the model, or a FeatureSpec with categories.
    num_boost_round, seed, params : rounds, seed, LightGBM parameters over DEFAULT_PARAMS.
    """
    import lightgbm

    spec = feature_names if isinstance(feature_names, FeatureSpec) else FeatureSpec(feature_names)
    merged = {**DEFAULT_PARAMS, "seed": seed, **(params or {})}
    booster = lightgbm.train(merged, lightgbm_dataset(features, labels, spec),
                             num_boost_round=num_boost_round)
    return record_categories(booster, spec)


def lightgbm_dataset(features: np.ndarray, labels: np.ndarray, spec: FeatureSpec,
                     reference: Any = None) -> Any:
    """A LightGBM Dataset whose categorical features (codes) are declared categorical."""
    import lightgbm

    if reference is not None:
        return lightgbm.Dataset(features, labels, reference=reference, free_raw_data=False)
    categorical = [j for j in range(len(spec)) if spec.is_categorical(j)]
    return lightgbm.Dataset(features, labels, feature_name=spec.names,
                            categorical_feature=categorical or "auto", free_raw_data=False)


def record_categories(booster: Any, spec: FeatureSpec) -> Any:
    """Write the categories into the booster's model text, in LightGBM's own record of them
    (``pandas_categorical``, what LightGBM maps a DataFrame's categories with)."""
    if spec.categories:
        booster.pandas_categorical = [spec.categories[n] for n in spec.names
                                      if n in spec.categories]
    return booster


def monotone_vector(feature_names: list[str], monotone: dict[str, int],
                    categorical: Iterable[str] = ()) -> list[int]:
    """LightGBM's ``monotone_constraints`` in feature order; naming an unknown feature fails.

    A categorical feature has no order, so a constraint on one is refused too.
    """
    from trainer.errors import ConfigError

    unknown = sorted(set(monotone) - set(feature_names))
    if unknown:
        raise ConfigError(
            f"monotone constraint on unknown feature(s) {', '.join(unknown)}; "
            f"the model's features are {', '.join(feature_names)}")
    unordered = sorted(n for n in set(categorical) & set(monotone) if monotone[n])
    if unordered:
        raise ConfigError(f"monotone constraint on categorical feature(s) "
                          f"{', '.join(unordered)}: categories have no order")
    return [int(monotone.get(name, 0)) for name in feature_names]


def train_early_stopped(
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    spec: FeatureSpec,
    *,
    seed: int = 7,
    max_rounds: int = 1000,
    early_stopping_rounds: int = 50,
    monotone: dict[str, int] | None = None,
    params: dict[str, Any] | None = None,
    progress: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Train on ``train``, stop when log loss on ``valid`` stops improving.

    Categorical features (``spec.categories``) are given to LightGBM as categorical, their
    values being codes; the model text records the categories in LightGBM's own
    ``pandas_categorical`` line, so LightGBM (and anyone with the text) maps strings to
    codes the same way from a pandas DataFrame.

    Returns the booster cut at its best iteration (rebuilt from its own model text, so the
    artifacts hold exactly the trees that were validated) and the parameters used.
    Same data and seed give identical model text.
    """
    import lightgbm
    from tqdm import tqdm

    merged = {**DEFAULT_PARAMS, "seed": seed, "metric": "binary_logloss", **(params or {})}
    feature_names = spec.names
    constraints = monotone_vector(feature_names, monotone or {}, spec.categories)
    if any(constraints):
        merged["monotone_constraints"] = constraints
    train_set = lightgbm_dataset(train[0], train[1], spec)
    valid_set = lightgbm_dataset(valid[0], valid[1], spec, reference=train_set)
    with tqdm(total=max_rounds, desc="boosting", unit=" rounds", disable=not progress) as bar:
        def tick(env: Any) -> None:
            bar.update(1)

        booster = lightgbm.train(
            merged, train_set, num_boost_round=max_rounds, valid_sets=[valid_set],
            valid_names=["valid"],
            callbacks=[lightgbm.early_stopping(early_stopping_rounds, verbose=False), tick],
        )
    best = booster.best_iteration or booster.current_iteration()
    record_categories(booster, spec)  # model_to_string writes them into the text
    trimmed = lightgbm.Booster(model_str=booster.model_to_string(num_iteration=best))
    used = {**merged, "num_boost_round": best, "max_rounds": max_rounds,
            "early_stopping_rounds": early_stopping_rounds}
    return trimmed, used
