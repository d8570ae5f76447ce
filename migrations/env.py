"""Alembic environment: runs blink's incremental steps, then re-applies its API at head.

The database comes from ``-x dsn=...``, ``config.attributes["dsn"]`` (programs) or
$DATABASE_URL, in that order.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from alembic import context
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `from migrations import ...`

from migrations import layers  # noqa: E402

# Its own version table, so blink can share a database with an application's own alembic.
VERSION_TABLE = "blink_alembic_version"


def database_url() -> str:
    url = (context.get_x_argument(as_dictionary=True).get("dsn")
           or context.config.attributes.get("dsn") or os.environ.get("DATABASE_URL"))
    if not url:
        raise SystemExit(
            "blink migrations need a database: set DATABASE_URL=postgresql://user@host/db "
            "or pass -x dsn=postgresql://..."
        )
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def run_migrations_online() -> None:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    head = ScriptDirectory.from_config(context.config).get_current_head()
    with engine.connect() as connection:
        context.configure(connection=connection, version_table=VERSION_TABLE,
                          transaction_per_migration=False)
        with context.begin_transaction():
            context.run_migrations()
            if context.get_context().get_current_heads() == (head,):
                layers.say(f"at {head}: applying db/idempotent/ (functions, views, privileges)")
                layers.apply_api(connection.connection.driver_connection)
                layers.vet_live_models(connection.connection.driver_connection)


if context.is_offline_mode():
    raise SystemExit("blink migrations run online only: they check the database first")
run_migrations_online()
