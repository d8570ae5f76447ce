"""Scoring many rows at once: feature matrices from SPI arrays, vectorised decisions and bands."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyfuncs.decision import DecisionPolicy
from pyfuncs.model import LoadedModel


@dataclass
class BatchScores:
    """Scores of one batch, aligned with its rows."""

    probabilities: Any  # float64 ndarray
    decisions: list[str]
    bands: list[str]


def matrix_from_flat(values: Sequence[float | None] | None, num_rows: int,
                     num_features: int) -> Any:
    """A (num_rows, num_features) float64 matrix from a flat row-major list; None is NaN.

    This is the shape the batch query returns: one float8[] for the whole batch, which
    PL/Python converts in one go (far cheaper than one array or document per row).
    """
    import numpy as np

    if num_rows == 0:
        return np.zeros((0, num_features))
    if values is None or len(values) != num_rows * num_features:
        got = 0 if values is None else len(values)
        raise ValueError(f"expected {num_rows} x {num_features} feature values, got {got}")
    # numpy turns None into NaN for a float array: missing stays missing.
    return np.array(values, dtype=np.float64).reshape(num_rows, num_features)


def decide_batch(policy: DecisionPolicy, probabilities: Any) -> tuple[list[str], list[str]]:
    """Decisions and risk bands for many probabilities; same rules as ``DecisionPolicy.decide``."""
    import numpy as np

    p = np.asarray(probabilities, dtype=np.float64)
    decisions = np.where(p >= policy.threshold, "declined", "approved")
    bounds = np.array([bound for bound, _ in policy.bands])
    names = np.array([band for _, band in policy.bands], dtype=object)
    # First band whose upper bound is >= p (p <= bound), the last band beyond every bound.
    index = np.minimum(np.searchsorted(bounds, p, side="left"), len(bounds) - 1)
    return decisions.tolist(), names[index].tolist()


def score_matrix(model: LoadedModel, matrix: Any) -> BatchScores:
    """Probabilities, decisions and bands for a feature matrix, through the batch predictor.

    Parameters
    ----------
    model : LoadedModel
        The model to score with (its compiled library when it loads, LightGBM otherwise).
    matrix : array_like, shape (n_rows, n_features)
        Feature values in ``model.feature_names`` order, NaN for missing.

    Returns
    -------
    BatchScores
        Aligned with the rows of ``matrix``.
    """
    probabilities = model.predict_batch(matrix)
    decisions, bands = decide_batch(model.policy, probabilities)
    return BatchScores(probabilities, decisions, bands)
