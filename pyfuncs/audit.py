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
    """One SPI query for the whole batch, plus one for the rare rows SQL could not convert.

    SQL converts numbers; a row holding anything else (a string, a boolean, a number beyond
    float8) is converted here by the same rules as blink_score, so it either scores exactly
    as blink_score would, or is left out with the error blink_score would raise.
    """
    import numpy as np

    row = store.one(plpy, GD, "snapshot_batch", list(snapshot_ids), list(feature_names))
    ids: list[int] = list(row["ids"] or []) if row else []
    matrix = batch.matrix_from_flat(row["vals"] if row else None, len(ids), len(feature_names))
    bad = sorted(row["bad"] or []) if row else []
    invalid: list[str] = []
    if bad:
        keep = np.ones(len(ids), dtype=bool)
        position = {sid: i for i, sid in enumerate(ids)}
        for doc in store.run(plpy, GD, "snapshot_documents", bad):
            i = position[doc["id"]]
            where = f"in snapshot {doc['id']} of user {doc['user_id']!r}"
            try:
                matrix[i] = features.to_vector(features.parse_document(doc["features"]),
                                               feature_names, allow_unknown=True, where=where)
            except FeatureError as exc:
                keep[i] = False
                invalid.append(str(exc))
        ids = [sid for sid, k in zip(ids, keep, strict=True) if k]
        matrix = matrix[keep]
    return SnapshotBatch(ids, matrix, invalid)


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
    row = store.one(plpy, GD, "insert_audits", snapshots.ids, model.id,
                    scores.probabilities.tolist(), scores.decisions, scores.bands, reasons,
                    source)
    return int(row["written"]) if row else 0


def warn_invalid(plpy: Any, messages: list[str]) -> None:
    if messages:
        shown = "; ".join(messages[:MAX_WARNINGS])
        more = f" (and {len(messages) - MAX_WARNINGS} more)" if len(messages) > MAX_WARNINGS else ""
        plpy.warning(
            f"blink: {len(messages)} snapshot(s) left unscored because of invalid features: "
            f"{shown}{more}. Insert a corrected snapshot for these users."
        )


def reason_table(plpy: Any, GD: dict) -> explain.ReasonTable:
    """The reason texts as they are now (read once per call: the risk team may edit them)."""
    return explain.ReasonTable.from_rows(store.run(plpy, GD, "reason_codes"))


def explain_user(plpy: Any, GD: dict, user_id: str,
                 load_model: Callable[[int | None], LoadedModel]) -> list[dict[str, Any]]:
    """blink_explain(user_id): the champion's reasons for the user's latest snapshot.

    Reads the stored audit of (latest snapshot, champion) when there is one; otherwise
    scores and explains that snapshot and stores the audit (source ``on-demand``), so the
    next call, and the next rescoring run, reuse it.
    """
    row = store.one(plpy, GD, "champion_and_snapshot", user_id)
    champion = load_model(row["model_id"] if row else None)
    if row is None or row["snapshot_id"] is None:
        return []
    snapshot_id = int(row["snapshot_id"])
    audit = store.one(plpy, GD, "audit_of", snapshot_id, champion.id)
    if audit is None:
        where = f"in snapshot {snapshot_id} of user {user_id!r}"
        values = features.to_vector(features.parse_document(row["features"]),
                                    champion.feature_names, allow_unknown=True, where=where)
        import numpy as np

        snapshots = SnapshotBatch([snapshot_id], np.array([values], dtype=np.float64), [])
        _write_on_demand(plpy, GD, champion, snapshots)
        audit = store.one(plpy, GD, "audit_of", snapshot_id, champion.id)
        if audit is None:  # a concurrent run holds the same row: not ours to wait for
            scores = batch.score_matrix(champion, snapshots.matrix)
            reasons_text = explain.to_json(explain.explain_matrix(
                champion.booster, snapshots.matrix, champion.feature_names,
                reason_table(plpy, GD)))[0]
            audit = {"probability_default": float(scores.probabilities[0]),
                     "decision": scores.decisions[0], "risk_band": scores.bands[0],
                     "reasons": reasons_text, "source": "on-demand", "scored_at": None}
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


def _write_on_demand(plpy: Any, GD: dict, model: LoadedModel, snapshots: SnapshotBatch) -> None:
    # A rescoring run may have inserted this (snapshot, model) and not committed yet; the
    # INSERT would then wait for that whole run. Wait briefly instead, then give up storing.
    previous = plpy.execute("SELECT current_setting('lock_timeout') AS v")[0]["v"]
    try:
        with plpy.subtransaction():
            plpy.execute("SELECT set_config('lock_timeout', '250ms', true)")
            audit_snapshots(plpy, GD, model, snapshots, reason_table(plpy, GD), "on-demand")
    except plpy.SPIError as exc:
        if getattr(exc, "sqlstate", None) != "55P03":  # lock_not_available
            raise
    finally:
        plpy.execute(plpy.prepare("SELECT set_config('lock_timeout', $1, true)", ["text"]),
                     [previous])


def score_users(plpy: Any, GD: dict, user_ids: Sequence[str | None],
                champion: LoadedModel) -> list[dict[str, Any]]:
    """blink_score_batch: one row per input user, in order, through the batch predictor."""
    row = store.one(plpy, GD, "latest_snapshots_of", list(user_ids))
    snapshot_ids = list(row["snapshot_ids"] or []) if row else []
    snapshot_ats = list(row["snapshot_ats"] or []) if row else []
    wanted = sorted({sid for sid in snapshot_ids if sid is not None})
    snapshots = fetch_batch(plpy, GD, wanted, champion.feature_names)
    if snapshots.invalid:
        raise FeatureError(snapshots.invalid[0])
    scores = batch.score_matrix(champion, snapshots.matrix)
    position = {sid: i for i, sid in enumerate(snapshots.ids)}
    probabilities = scores.probabilities
    out = []
    for user_id, sid, at in zip(user_ids, snapshot_ids, snapshot_ats, strict=True):
        i = position.get(sid) if sid is not None else None
        if i is None:
            out.append({"user_id": user_id, "probability_default": None, "decision": None,
                        "risk_band": None, "model_id": champion.id, "snapshot_id": None,
                        "snapshot_at": None})
        else:
            p = float(probabilities[i])
            out.append({"user_id": user_id, "probability_default": p,
                        "decision": scores.decisions[i], "risk_band": scores.bands[i],
                        "model_id": champion.id, "snapshot_id": sid, "snapshot_at": at})
    return out
