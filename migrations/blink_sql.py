"""Helpers for migrations: run raw SQL and apply the idempotent function files in db/."""

from __future__ import annotations

from pathlib import Path

from alembic import op

DB_DIR = Path(__file__).resolve().parent.parent / "db"


def execute(sql: str) -> None:
    """Run a multi-statement SQL script as is (no bind-parameter parsing)."""
    op.get_bind().connection.driver_connection.execute(sql)


def apply(*names: str) -> None:
    """Apply files of db/ (CREATE OR REPLACE, so applying again is safe)."""
    for name in names:
        execute((DB_DIR / name).read_text())
