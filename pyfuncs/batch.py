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


def matrix_from_rows(values: Sequence[Any] | None, num_rows: int, num_features: int) -> Any:
    """A (num_rows, num_features) float64 matrix from SPI's float8[] (flat or 2-D); None is NaN.

    The batch queries return one array for the whole batch, which PL/Python converts in one
    go (far cheaper than one document or one array per row).
    """
    import numpy as np

    if num_rows == 0:
        return np.zeros((0, num_features))
    # numpy turns None into NaN for a float array: missing stays missing.
    matrix = np.array(values if values is not None else [], dtype=np.float64)
    if matrix.size != num_rows * num_features:
        raise ValueError(f"expected {num_rows} x {num_features} feature values, got {matrix.size}")
    return matrix.reshape(num_rows, num_features)


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


def sql_literal(text: str) -> str:
    """``text`` as an escape-string literal: correct whatever standard_conforming_strings is."""
    return "E'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def values_sql(feature_names: Sequence[str], document: str, *, safe: bool) -> tuple[str, str]:
    """SQL for one row's feature vector (float8[] in model order) and its "needs Python" flag.

    ``safe=False`` casts numbers straight to float8 (fast; a number beyond float8's range
    makes the query fail, and the caller retries with ``safe=True``, which never fails).
    The flag is true when a value is neither a number nor null (or, when safe, when SQL
    could not convert it): such rows are converted by pyfuncs.features, like blink_score.
    """
    values, checks = [], []
    for name in feature_names:
        v = f"({document} -> {sql_literal(name)})"
        if safe:
            values.append(f"blink.feature_number({v})")
            checks.append(f"(blink.feature_number({v}) IS NOT NULL OR {v} IS NULL"
                          f" OR jsonb_typeof({v}) = 'null')")
        else:
            values.append(f"CASE WHEN jsonb_typeof({v}) = 'number' THEN {v}::float8 END")
            checks.append(f"coalesce(jsonb_typeof({v}) IN ('number', 'null'), true)")
    return "ARRAY[" + ", ".join(values) + "]::float8[]", "NOT (" + " AND ".join(checks) + ")"


def snapshots_by_id_sql(feature_names: Sequence[str], *, safe: bool) -> str:
    """Snapshots $1 (bigint[]) as ids (ascending), a 2-D float8[] of values, and flagged ids."""
    vector, flagged = values_sql(feature_names, "s.features", safe=safe)
    return f"""
        SELECT array_agg(s.id ORDER BY s.id) AS ids,
               array_agg({vector} ORDER BY s.id) AS vals,
               array_agg(s.id) FILTER (WHERE {flagged}) AS bad
        FROM blink.feature_store_snapshots s WHERE s.id = ANY($1)
    """


def latest_snapshots_sql(feature_names: Sequence[str], *, safe: bool) -> str:
    """Latest snapshot of each user of $1 (text[]), in input order, with its values."""
    vector, flagged = values_sql(feature_names, "s.features", safe=safe)
    return f"""
        SELECT array_agg(s.id ORDER BY u.ord) AS snapshot_ids,
               array_agg(s.snapshot_at::text ORDER BY u.ord) AS snapshot_ats,
               array_agg({vector} ORDER BY u.ord) FILTER (WHERE s.id IS NOT NULL) AS vals,
               array_agg(s.id) FILTER (WHERE {flagged}) AS bad
        FROM unnest($1::text[]) WITH ORDINALITY AS u(user_id, ord)
        LEFT JOIN LATERAL (
            SELECT id, snapshot_at, features FROM blink.feature_store_snapshots
            WHERE user_id = u.user_id ORDER BY snapshot_at DESC, id DESC LIMIT 1
        ) s ON true
    """
