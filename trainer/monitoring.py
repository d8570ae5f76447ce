"""The monitoring reference the trainer freezes with each model (pyfuncs.monitoring.reference).

It comes from the out-of-time window, never from training rows: every user's latest snapshot
taken in the test period (the population rescoring will score, one row per user, so the
reference's sampling error is what the chi-square critical values assume), scored by the new
model; and the realised performance on the test period's loans.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import numpy as np

from pyfuncs.decision import DecisionPolicy
from pyfuncs.errors import FeatureError
from pyfuncs.features import FeatureSpec
from pyfuncs.monitoring.reference import build_reference

# Latest snapshot per user in the window; a deterministic sample of users above the cap.
WINDOW_SNAPSHOTS_SQL = """
SELECT DISTINCT ON (user_id) user_id, features::text
FROM blink.feature_store_snapshots
WHERE snapshot_at >= %(start)s AND snapshot_at <= %(end)s
ORDER BY user_id, snapshot_at DESC, id DESC
"""
MAX_USERS = 200_000


def window_documents(conn: Any, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Each user's latest snapshot taken between ``start`` and ``end`` (at most MAX_USERS)."""
    rows = conn.execute(WINDOW_SNAPSHOTS_SQL, {"start": start, "end": end}).fetchall()
    if len(rows) > MAX_USERS:  # every k-th user in user order: reproducible
        rows = rows[:: -(-len(rows) // MAX_USERS)]
    return [json.loads(text) for _, text in rows]


def documents_matrix(spec: FeatureSpec, documents: list[dict[str, Any]]) -> np.ndarray:
    """Model rows of snapshot documents; an unusable value counts as missing."""
    out = np.full((len(documents), len(spec)), np.nan)
    for i, doc in enumerate(documents):
        try:
            out[i] = spec.vector(doc, allow_unknown=True, where="in a reference snapshot")
        except FeatureError:
            pass
    return out


def reference(booster: Any, spec: FeatureSpec, documents: list[dict[str, Any]], *,
              decision_threshold: float, risk_bands: list[dict[str, Any]],
              window: dict[str, Any], y_test: np.ndarray, p_test: np.ndarray
              ) -> dict[str, Any]:
    """The reference of ``booster`` from the window's snapshots and the test loans."""
    X = documents_matrix(spec, documents)
    p = np.asarray(booster.predict(X, num_threads=1), dtype=float)
    bands = DecisionPolicy.from_model(decision_threshold, risk_bands).bands
    return build_reference(spec, X, p, decision_threshold=decision_threshold, bands=bands,
                           window=window, outcomes=(y_test, p_test))
