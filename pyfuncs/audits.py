"""Writing audited decisions to blink.risk_score_audits, one INSERT per batch.

Every audit row carries its reasons, so an explanation is computed once per (snapshot, model)
and then read back: the table's UNIQUE (snapshot_id, model_id) is the only bookkeeping.
"""

from __future__ import annotations

from pyfuncs import queries, reasons
from pyfuncs._typing import Any
from pyfuncs.model import BatchScores, LoadedModel
from pyfuncs.snapshots import SnapshotBatch, Unscorable

MAX_WARNINGS = 3  # invalid snapshots named in one warning; the rest are counted

# The source column: who wrote the audit.
RESCORE, ON_DEMAND, SHADOW = "rescore", "on-demand", "shadow"


def write(plpy: Any, GD: dict, model_id: int, snapshot_ids: list[int], scores: BatchScores,
          reason_json: list[str], source: str) -> tuple[int, Any]:
    """One INSERT for the whole batch; returns (rows written, their scored_at).

    Rows whose (snapshot, model) is already audited are skipped by the unique key, so a run
    that repeats work (after a crash, or racing an on-demand explanation) writes no duplicate.
    """
    row = queries.one(plpy, GD, "insert_audits", snapshot_ids, model_id,
                      scores.probabilities.tolist(), scores.decisions, scores.bands,
                      reason_json, source)
    return (int(row["written"]), row["scored_at"]) if row else (0, None)


def score_and_explain(model: LoadedModel, matrix: Any,
                      table: reasons.ReasonTable) -> tuple[BatchScores, list[str]]:
    """An audit's contents for each row: scores, decisions, bands and the reasons as JSON."""
    reason_json = reasons.to_json(reasons.explain_matrix(model, matrix, model.spec, table))
    return model.score_batch(matrix), reason_json


def audit_batch(plpy: Any, GD: dict, model: LoadedModel, batch: SnapshotBatch,
                table: reasons.ReasonTable, source: str) -> int:
    """Score and explain ``batch`` with ``model`` and insert its audits; returns rows written."""
    if not batch.ids:
        return 0
    scores, reason_json = score_and_explain(model, batch.matrix, table)
    written, _ = write(plpy, GD, model.id, batch.ids, scores, reason_json, source)
    return written


def write_on_demand(plpy: Any, GD: dict, model_id: int, snapshot_id: int,
                    scores: BatchScores, reason_json: list[str]) -> Any:
    """Insert one on-demand audit; returns its scored_at, or None when it was not stored.

    A rescoring run may have inserted this (snapshot, model) without committing yet; the
    INSERT would then wait for that whole run. Wait briefly instead, then give up storing
    (the run's own row will be the audit).
    """
    previous = queries.one(plpy, GD, "short_lock_timeout")["previous"]  # type: ignore[index]
    try:
        with plpy.subtransaction():
            written, scored_at = write(plpy, GD, model_id, [snapshot_id], scores, reason_json,
                                       ON_DEMAND)
            return scored_at if written else None
    except plpy.SPIError as exc:
        if getattr(exc, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        return None
    finally:
        queries.run(plpy, GD, "set_lock_timeout", previous)


def quarantine(plpy: Any, GD: dict, model_id: int, invalid: list[Unscorable]) -> int:
    """Record snapshots a run could not score (blink.unscorable_snapshots); returns rows added.

    Later runs skip them for this model; the user's next snapshot is scored as usual.
    """
    if not invalid:
        return 0
    row = queries.one(plpy, GD, "insert_unscorable", model_id,
                      [u.snapshot_id for u in invalid], [u.user_id for u in invalid],
                      [u.error for u in invalid])
    return int(row["written"]) if row else 0


def warn_invalid(plpy: Any, invalid: list[Unscorable]) -> None:
    """One WARNING naming the first few snapshots left unscored, counting the rest."""
    messages = [u.error for u in invalid]
    if messages:
        shown = "; ".join(messages[:MAX_WARNINGS])
        more = f" (and {len(messages) - MAX_WARNINGS} more)" if len(messages) > MAX_WARNINGS else ""
        plpy.warning(
            f"blink: {len(messages)} snapshot(s) left unscored because of invalid features: "
            f"{shown}{more}. Insert a corrected snapshot for these users."
        )


def reason_table(plpy: Any, GD: dict) -> reasons.ReasonTable:
    """The reason texts as they are now (read once per run: the risk team may edit them)."""
    return reasons.ReasonTable.from_rows(queries.run(plpy, GD, "reason_codes"))
