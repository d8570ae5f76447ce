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


def unpack_rows(data: bytes | None, num_features: int, *,
                with_epoch: bool) -> tuple[Any, Any, Any]:
    """(ids, epochs or None, matrix) from the packed rows of the batch queries.

    Each row is ``int8send(id) || [float8send(epoch)] || float8send(value) ...`` (big
    endian), one bytea for the whole batch: PL/Python hands it over as one bytes object,
    where a float8[] would be converted element by element into Python floats, at a cost
    higher than the query's. Missing values and rows are NaN (a row without a snapshot has
    id -1).
    """
    import numpy as np

    fields = [("id", ">i8")] + ([("epoch", ">f8")] if with_epoch else [])
    dtype = np.dtype(fields + [("values", ">f8", (num_features,))])
    raw = data or b""
    if len(raw) % dtype.itemsize:
        raise ValueError(f"packed rows of {dtype.itemsize} bytes expected, got {len(raw)} bytes")
    rows = np.frombuffer(raw, dtype=dtype)
    matrix = rows["values"].astype(np.float64).reshape(len(rows), num_features)  # writable
    epochs = rows["epoch"].astype(np.float64) if with_epoch else None
    return rows["id"].astype(np.int64), epochs, matrix


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


def value_exprs(feature_names: Sequence[str], document: str, *,
                safe: bool) -> tuple[list[str], str]:
    """SQL for each feature's float8 value (NULL when missing) and the row's "needs Python" flag.

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
    return values, "NOT (" + " AND ".join(checks) + ")"


def packed_values_sql(feature_names: Sequence[str], document: str, *,
                      safe: bool) -> tuple[str, str]:
    """The row's feature vector as packed big-endian float8s (bytea), missing as NaN.

    ``string_agg`` of these is the batch matrix in one bytea: PL/Python converts a float8[]
    element by element into Python floats, which costs more than the query itself.
    """
    values, flagged = value_exprs(feature_names, document, safe=safe)
    return " || ".join(f"float8send(coalesce({v}, 'NaN'::float8))" for v in values), flagged


def snapshots_by_id_sql(feature_names: Sequence[str], *, safe: bool) -> str:
    """Snapshots $1 (bigint[]) as packed rows (ascending id; see ``unpack_rows``), flagged ids."""
    packed, flagged = packed_values_sql(feature_names, "s.features", safe=safe)
    return f"""
        SELECT string_agg(int8send(s.id) || {packed}, ''::bytea ORDER BY s.id) AS packed,
               array_agg(s.id) FILTER (WHERE {flagged}) AS bad
        FROM blink.feature_store_snapshots s WHERE s.id = ANY($1)
    """


def latest_snapshots_sql(feature_names: Sequence[str], *, safe: bool) -> str:
    """Latest snapshot of each user of $1 (text[]) as packed rows in input order, flagged ids.

    One aggregate, so one sort; a user without a snapshot is a row of id -1 and NaNs.
    """
    packed, flagged = packed_values_sql(feature_names, "s.features", safe=safe)
    missing = " || ".join(["float8send('NaN'::float8)"] * len(feature_names))
    return f"""
        SELECT string_agg(
                   CASE WHEN s.id IS NULL
                        THEN int8send(-1) || float8send('NaN'::float8) || {missing}
                        ELSE int8send(s.id) || float8send(date_part('epoch', s.snapshot_at))
                             || {packed}
                   END, ''::bytea ORDER BY u.ord) AS packed,
               array_agg(s.id) FILTER (WHERE {flagged}) AS bad
        FROM unnest($1::text[]) WITH ORDINALITY AS u(user_id, ord)
        LEFT JOIN LATERAL (
            SELECT id, snapshot_at, features FROM blink.feature_store_snapshots
            WHERE user_id = u.user_id ORDER BY snapshot_at DESC, id DESC LIMIT 1
        ) s ON true
    """
