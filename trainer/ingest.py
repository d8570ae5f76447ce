"""Writing feature snapshots and repayment outcomes in bulk (COPY), for imports and demos."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from trainer.synthetic import History


def write_snapshots(conn: Any, rows: Iterable[tuple[str, datetime, dict[str, Any]]]) -> int:
    """COPY (user_id, snapshot_at, features) rows into blink.feature_store_snapshots."""
    count = 0
    with conn.cursor() as cur, cur.copy(
            "COPY blink.feature_store_snapshots (user_id, snapshot_at, features) FROM STDIN"
    ) as copy:
        for user_id, snapshot_at, doc in rows:
            copy.write_row([user_id, snapshot_at, Jsonb(doc)])
            count += 1
    return count


def write_outcomes(conn: Any, rows: Iterable[dict[str, Any]]) -> int:
    """COPY outcome dicts (user_id, issued_at, due_at, outcome, observed_at) into the table."""
    count = 0
    with conn.cursor() as cur, cur.copy(
            "COPY blink.repayment_outcomes (user_id, issued_at, due_at, outcome, observed_at)"
            " FROM STDIN") as copy:
        for r in rows:
            copy.write_row([r["user_id"], r["issued_at"], r["due_at"], r["outcome"],
                            r["observed_at"]])
            count += 1
    return count


def load_history(conn: Any, history: History) -> tuple[int, int]:
    """Write a synthetic history in one transaction; returns (snapshots, outcomes) written."""
    with conn.transaction():
        return write_snapshots(conn, history.snapshots), write_outcomes(conn, history.outcomes)
