"""Audited decisions: score and explain batches of snapshots, write risk_score_audits rows.

Every audit row carries its reasons, so an explanation is computed once per (snapshot, model)
and then read back: the table's UNIQUE (snapshot_id, model_id) is the only bookkeeping.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyfuncs import batch, explain, features, store
from pyfuncs.errors import FeatureError
from pyfuncs.model import LoadedModel

MAX_WARNINGS = 3  # invalid snapshots named in one warning; the rest are counted


@dataclass
class SnapshotBatch:
    """Snapshots ready to score: ids and their feature matrix (rows aligned)."""

    ids: list[int]
    matrix: Any
    invalid: list[str]  # one message per snapshot left out, naming the feature


def fetch_batch(plpy: Any, GD: dict, snapshot_ids: Sequence[int],
                feature_names: Sequence[str]) -> SnapshotBatch:
    """The snapshots ``snapshot_ids`` (ascending), in one SPI query, ready to score.

    SQL converts the numbers; a row holding anything else (a string, a boolean, a number
    beyond float8) is converted here by the same rules as blink_score, so it either scores
    exactly as blink_score would, or is left out with the error blink_score would raise.
    """
    row = values_query(plpy, GD, "ids", feature_names, list(snapshot_ids))
    id_array, _, matrix = batch.unpack_rows(row["packed"], len(feature_names), with_epoch=False)
    ids: list[int] = id_array.tolist()
    keep, invalid = _convert_flagged(plpy, GD, ids, matrix, row["bad"], feature_names)
    if invalid:
        ids = [sid for sid, k in zip(ids, keep, strict=True) if k]
        matrix = matrix[keep]
    return SnapshotBatch(ids, matrix, invalid)


def values_query(plpy: Any, GD: dict, kind: str, feature_names: Sequence[str],
                 arg: list[Any]) -> dict[str, Any]:
    """Run the batch values query (``kind`` "ids" or "users") for this feature list.

    The fast form casts numbers straight to float8; a number beyond float8's range makes it
    fail (SQLSTATE 22003), and the batch is read again with the slower form that cannot fail.
    """
    plans = GD.setdefault("blink.value_plans", {})

    def plan(safe: bool) -> Any:
        key = (kind, safe, tuple(feature_names))
        if key not in plans:
            if kind == "ids":
                plans[key] = plpy.prepare(batch.snapshots_by_id_sql(feature_names, safe=safe),
                                          ["bigint[]"])
            else:
                plans[key] = plpy.prepare(batch.latest_snapshots_sql(feature_names, safe=safe),
                                          ["text[]"])
        return plans[key]

    try:
        with plpy.subtransaction():
            return plpy.execute(plan(False), [arg])[0]
    except plpy.SPIError as exc:
        if getattr(exc, "sqlstate", None) != "22003":  # numeric_value_out_of_range
            raise
    return plpy.execute(plan(True), [arg])[0]


def _convert_flagged(plpy: Any, GD: dict, ids: list[int], matrix: Any,
                     flagged: list[int] | None, feature_names: Sequence[str]) -> tuple[Any, list]:
    """Convert the rows SQL flagged in Python; returns (rows to keep, error per dropped row)."""
    import numpy as np

    keep = np.ones(len(ids), dtype=bool)
    invalid: list[str] = []
    if not flagged:
        return keep, invalid
    positions: dict[int, list[int]] = {}
    for i, sid in enumerate(ids):
        positions.setdefault(sid, []).append(i)
    for doc in store.run(plpy, GD, "snapshot_documents", sorted(set(flagged))):
        where = f"in snapshot {doc['id']} of user {doc['user_id']!r}"
        try:
            vector = features.to_vector(features.parse_document(doc["features"]),
                                        feature_names, allow_unknown=True, where=where)
        except FeatureError as exc:
            keep[positions[doc["id"]]] = False
            invalid.append(str(exc))
        else:
            matrix[positions[doc["id"]]] = vector
    return keep, invalid


def audit_snapshots(plpy: Any, GD: dict, model: LoadedModel, snapshots: SnapshotBatch,
                    table: explain.ReasonTable, source: str) -> int:
    """Score and explain ``snapshots`` with ``model``; insert their audits. Returns rows written.

    Rows whose (snapshot, model) is already audited are skipped by the unique key, so a run
    that repeats work (after a crash, or racing an on-demand explanation) writes no duplicate.
    """
    if not snapshots.ids:
        return 0
    scores = batch.score_matrix(model, snapshots.matrix)
    reasons = explain.to_json(explain.explain_matrix(
        model.booster, snapshots.matrix, model.feature_names, table))
    written, _ = write_audits(plpy, GD, model.id, snapshots.ids, scores, reasons, source)
    return written


def write_audits(plpy: Any, GD: dict, model_id: int, snapshot_ids: list[int],
                 scores: batch.BatchScores, reasons: list[str], source: str) -> tuple[int, Any]:
    """One INSERT for the whole batch; returns (rows written, their scored_at)."""
    row = store.one(plpy, GD, "insert_audits", snapshot_ids, model_id,
                    scores.probabilities.tolist(), scores.decisions, scores.bands, reasons,
                    source)
    return (int(row["written"]), row["scored_at"]) if row else (0, None)


def warn_invalid(plpy: Any, messages: list[str]) -> None:
    if messages:
        shown = "; ".join(messages[:MAX_WARNINGS])
        more = f" (and {len(messages) - MAX_WARNINGS} more)" if len(messages) > MAX_WARNINGS else ""
        plpy.warning(
            f"blink: {len(messages)} snapshot(s) left unscored because of invalid features: "
            f"{shown}{more}. Insert a corrected snapshot for these users."
        )


def reason_table(plpy: Any, GD: dict) -> explain.ReasonTable:
    """The reason texts as they are now (read once per run: the risk team may edit them)."""
    return explain.ReasonTable.from_rows(store.run(plpy, GD, "reason_codes"))


def explain_user(plpy: Any, GD: dict, user_id: str,
                 load_model: Callable[[int | None], LoadedModel]) -> list[dict[str, Any]]:
    """blink_explain(user_id): the champion's reasons for the user's latest snapshot.

    Reads the stored audit of (latest snapshot, champion) when there is one; otherwise
    scores and explains that snapshot and stores the audit (source ``on-demand``), so the
    next call, and the next rescoring run, reuse it.
    """
    import numpy as np

    row = store.one(plpy, GD, "explain_lookup", user_id)
    champion = load_model(row["model_id"] if row else None)
    if row is None or row["snapshot_id"] is None:
        return []
    snapshot_id = int(row["snapshot_id"])
    audit: dict[str, Any] | None = row if row["reasons"] is not None else None
    if audit is None:
        where = f"in snapshot {snapshot_id} of user {user_id!r}"
        values = features.to_vector(features.parse_document(row["features"]),
                                    champion.feature_names, allow_unknown=True, where=where)
        matrix = np.array([values], dtype=np.float64)
        table = explain.ReasonTable.from_rows(json.loads(row["reason_codes"] or "[]"))
        scores = batch.score_matrix(champion, matrix)
        reasons = explain.to_json(explain.explain_matrix(
            champion.booster, matrix, champion.feature_names, table))
        scored_at = _store_on_demand(plpy, GD, champion.id, snapshot_id, scores, reasons)
        audit = {"probability_default": float(scores.probabilities[0]),
                 "decision": scores.decisions[0], "reasons": reasons[0],
                 "source": "on-demand", "scored_at": scored_at}
        if scored_at is None:  # not stored: someone else's row won (read it) or is in flight
            audit = store.one(plpy, GD, "audit_of", snapshot_id, champion.id) or audit
    return [
        {
            "rank": r["rank"],
            "reason_code": r["code"],
            "reason_text": r["reason"],
            "feature_name": r["feature"],
            "feature_value": r["value"],
            "shap_value": r["shap"],
            "probability_default": audit["probability_default"],
            "decision": audit["decision"],
            "model_id": champion.id,
            "snapshot_id": snapshot_id,
            "source": audit["source"],
            "scored_at": audit["scored_at"],
        }
        for r in json.loads(audit["reasons"])
    ]


def _store_on_demand(plpy: Any, GD: dict, model_id: int, snapshot_id: int,
                     scores: batch.BatchScores, reasons: list[str]) -> Any:
    """Insert one on-demand audit; returns its scored_at, or None when it was not stored.

    A rescoring run may have inserted this (snapshot, model) without committing yet; the
    INSERT would then wait for that whole run. Wait briefly instead, then give up storing
    (the run's own row will be the audit).
    """
    previous = store.one(plpy, GD, "short_lock_timeout")["previous"]  # type: ignore[index]
    try:
        with plpy.subtransaction():
            written, scored_at = write_audits(plpy, GD, model_id, [snapshot_id], scores,
                                              reasons, "on-demand")
            return scored_at if written else None
    except plpy.SPIError as exc:
        if getattr(exc, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        return None
    finally:
        store.run(plpy, GD, "set_lock_timeout", previous)


def score_users(plpy: Any, GD: dict, user_ids: Sequence[str | None],
                champion: LoadedModel) -> dict[str, Any]:
    """blink_score_batch: the scores of ``user_ids`` as arrays aligned with the input.

    One SPI query finds each user's latest snapshot and its values; one native call scores
    them all. Arrays, not rows, go back to SQL (which unnests them): a row per user through
    PL/Python costs several times the prediction. A snapshot with an invalid value is an
    error naming it, as in blink_score. Users without a snapshot get NULLs.
    """
    import numpy as np

    names = champion.feature_names
    row = values_query(plpy, GD, "users", names, list(user_ids))
    ids, epochs, matrix = batch.unpack_rows(row["packed"], len(names), with_epoch=True)
    have = ids >= 0  # id -1: the user has no snapshot
    _, invalid = _convert_flagged(plpy, GD, ids.tolist(), matrix, row["bad"], names)
    if invalid:
        raise FeatureError(invalid[0])
    scores = batch.score_matrix(champion, matrix[have])
    probabilities = np.full(len(ids), np.nan)
    probabilities[have] = scores.probabilities
    decisions = np.full(len(ids), None, dtype=object)
    decisions[have] = scores.decisions
    bands = np.full(len(ids), None, dtype=object)
    bands[have] = scores.bands
    nulls = ~have
    return {
        "model_id": champion.id,
        "probabilities": [None if n else p for p, n in zip(probabilities.tolist(), nulls,
                                                             strict=True)]
        if nulls.any() else probabilities.tolist(),
        "decisions": decisions.tolist(),
        "bands": bands.tolist(),
        "snapshot_ids": [None if n else int(i) for i, n in zip(ids.tolist(), nulls, strict=True)],
        "snapshot_epochs": [None if n else e for e, n in zip(epochs.tolist(), nulls, strict=True)],
    }
