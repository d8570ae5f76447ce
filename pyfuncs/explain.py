"""Reason codes on demand: blink_explain, from the stored audit or computed once and stored."""

from __future__ import annotations

import json

from pyfuncs import audits, model, queries, reasons
from pyfuncs._typing import Any
from pyfuncs.reasons import category_key
from pyfuncs.score import document_vector, snapshot_place


def explain_user(plpy: Any, GD: dict, user_id: str) -> list[dict[str, Any]]:
    """The champion's reasons for the user's latest snapshot.

    Reads the stored audit of (latest snapshot, champion) when there is one; otherwise
    scores and explains that snapshot and stores the audit (source ``on-demand``), so the
    next call, and the next rescoring run, reuse it. In a read-only transaction or on a
    standby it answers without storing (``scored_at`` NULL). Every row of one statement
    uses the champion that statement saw first, even across a concurrent promotion.
    """
    import numpy as np

    now = queries.one(plpy, GD, "statement_champion")
    assert now is not None
    key = (now["statement"], now["backend"])
    memo = GD.get("blink.explain_statement")
    if memo is None or memo[0] != key:  # first row of this statement: its champion is fixed
        memo = GD["blink.explain_statement"] = (key, now["model_id"])
    champion = model.loaded(plpy, GD, memo[1])
    row = queries.one(plpy, GD, "explain_lookup", user_id, champion.id)
    if row is None or row["snapshot_id"] is None:
        return []
    snapshot_id = int(row["snapshot_id"])
    audit: dict[str, Any] | None = row if row["reasons"] is not None else None
    if audit is None:
        values = document_vector(champion, row["features"], stored=True,
                                 where=snapshot_place(snapshot_id, user_id))
        matrix = np.array([values], dtype=np.float64)
        table = reasons.ReasonTable.from_rows(json.loads(row["reason_codes"] or "[]"))
        scores, reason_json = audits.score_and_explain(champion, matrix, table)
        scored_at = (audits.write_on_demand(plpy, GD, champion.id, snapshot_id, scores,
                                            reason_json)
                     if now["writable"] else None)  # read-only: answer without storing
        audit = {"probability_default": float(scores.probabilities[0]),
                 "decision": scores.decisions[0], "reasons": reason_json[0],
                 "source": audits.ON_DEMAND, "scored_at": scored_at}
        if scored_at is None and now["writable"]:  # another run's row won, or is in flight
            audit = queries.one(plpy, GD, "audit_of", snapshot_id, champion.id) or audit
    return [
        {
            "rank": r["rank"],
            "reason_code": r["code"],
            "reason_text": r["reason"],
            "feature_name": r["feature"],
            # A number in feature_value; a category (as given) in feature_category.
            "feature_value": r["value"] if _is_number(r["value"]) else None,
            "feature_category": category_key(r["value"]),
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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
