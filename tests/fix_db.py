"""Database fixtures: one throwaway cluster per run, a migrated template, a database per test.

Also the helpers database tests use to load data the way users would.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import psycopg
import pytest
from psycopg.types.json import Jsonb

from devenv import migrate
from devenv.cluster import throwaway_cluster, with_database
from trainer import registry
from trainer.artifacts import ModelArtifact

TEMPLATE = "blink_template"
APP_USER = "app_user"  # a login role granted blink_app, as an application would have
TRAINER_USER = "trainer_user"  # a login role granted blink_trainer
_db_counter = itertools.count()


@dataclass
class Database:
    """One database of the throwaway cluster."""

    cluster_url: str  # the superuser's URL (through the cluster's private socket)
    name: str

    def dsn(self, user: str = "postgres") -> str:
        return with_database(self.cluster_url, self.name, user)

    def connect(self, user: str = "postgres", autocommit: bool = True) -> psycopg.Connection:
        return psycopg.connect(self.dsn(user), autocommit=autocommit)


def create_database(cluster_url: str, template: str | None = None) -> Database:
    name = f"t{os.getpid()}_{next(_db_counter)}"
    with psycopg.connect(cluster_url, autocommit=True) as conn:
        clause = f" TEMPLATE {template}" if template else ""
        conn.execute(f"CREATE DATABASE {name}{clause}")
    return Database(cluster_url, name)


def drop_database(database: Database) -> None:
    with psycopg.connect(database.cluster_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)")


def insert_snapshots(conn: psycopg.Connection, user_ids: Sequence[str],
                     documents: Sequence[dict]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO blink.feature_store_snapshots (user_id, features) VALUES (%s, %s)",
            [(u, Jsonb(d)) for u, d in zip(user_ids, documents, strict=True)],
        )


def install(conn: psycopg.Connection, artifact: ModelArtifact, promote: bool = True) -> int:
    """Insert a model as the trainer does; promote it unless told not to."""
    model_id = registry.insert_model(conn, artifact)
    if promote:
        registry.promote(conn, model_id, "test")
        registry.refresh_feature_vectors(conn)
    return model_id


# Fails (an error) in a session that imported pyfuncs: PL/Python scored there, not blink_native.
NO_PYFUNCS = ("DO $$\nimport sys\nif 'pyfuncs.api' in sys.modules:\n"
              "    plpy.error('pyfuncs was imported: PL/Python scored')\n$$ LANGUAGE plpython3u")


def python_scored(conn: psycopg.Connection) -> bool:
    """Whether this superuser session has run blink's Python (imported pyfuncs)."""
    try:
        conn.execute(NO_PYFUNCS)
    except psycopg.errors.InternalError_ as exc:  # what plpy.error raises
        if "PL/Python scored" not in str(exc):
            raise
        return True
    return False


def library_file(conn: psycopg.Connection) -> str:
    """The champion's library file, absolute, as blink_native opens it."""
    return conn.execute("SELECT current_setting('data_directory') || '/' || "
                        "blink.champion_library()").fetchone()[0]


def remove_as_server(conn: psycopg.Connection, path: str) -> None:
    """Delete a file as the server's OS user (which owns it)."""
    conn.execute(f"DO $$\nimport os\nos.remove({path!r})\n$$ LANGUAGE plpython3u")


@pytest.fixture(scope="session")
def cluster() -> Iterator[str]:
    """A throwaway PostgreSQL 15 with plpython3u and pg_cron; yields its superuser URL."""
    server = throwaway_cluster()
    try:
        yield server.url()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def template_db(cluster: str) -> Database:
    """A database migrated to head, with login roles for the app and the trainer."""
    with psycopg.connect(cluster, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    template = Database(cluster, TEMPLATE)
    migrate.upgrade(template.dsn())
    with template.connect() as conn:
        conn.execute(f"CREATE ROLE {APP_USER} LOGIN IN ROLE blink_app")
        conn.execute(f"CREATE ROLE {TRAINER_USER} LOGIN IN ROLE blink_trainer")
    return template


@pytest.fixture
def db(cluster: str, template_db: Database) -> Iterator[Database]:
    """A fresh migrated database per test (a copy of the template)."""
    database = create_database(cluster, TEMPLATE)
    yield database
    drop_database(database)


@pytest.fixture
def empty_db(cluster: str) -> Iterator[Database]:
    """A fresh database with nothing of blink in it."""
    database = create_database(cluster)
    yield database
    drop_database(database)


@pytest.fixture
def scored_db(db: Database, model_a) -> Database:
    """Every synthetic user with one snapshot, model_a champion, nothing audited yet."""
    with db.connect() as conn:
        insert_snapshots(conn, model_a.population.user_ids, model_a.population.documents())
        install(conn, model_a.artifact)
    return db
