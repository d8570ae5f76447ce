"""Alembic environment: connects to DATABASE_URL (or -x dsn=...) with psycopg 3."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from alembic import context
from sqlalchemy import create_engine, pool

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for blink_sql

# Its own version table, so blink can share a database with an application's own alembic.
VERSION_TABLE = "blink_alembic_version"


def database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("dsn") or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit(
            "blink migrations need a database: set DATABASE_URL=postgresql://user@host/db "
            "or pass -x dsn=postgresql://..."
        )
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def run_migrations_offline() -> None:
    context.configure(url=database_url(), literal_binds=True, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, version_table=VERSION_TABLE,
                          transaction_per_migration=False)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
