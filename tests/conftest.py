"""Shared fixtures: one throwaway cluster per run, a migrated template, small real models."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import pytest

from devenv.cluster import throwaway_cluster
from trainer import synthetic
from trainer.artifacts import ModelArtifact, build_artifact
from trainer.build import fit_booster

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "blink_template"
APP_USER = "app_user"  # a login role granted blink_app, as an application would have
TRAINER_USER = "trainer_user"  # a login role granted blink_trainer
_db_counter = itertools.count()


@dataclass
class Database:
    """One database of the throwaway cluster."""

    cluster_url: str  # postgresql://postgres@127.0.0.1:port/test
    name: str

    def dsn(self, user: str = "postgres") -> str:
        base = self.cluster_url.rsplit("/", 1)[0].replace("postgres@", f"{user}@", 1)
        return f"{base}/{self.name}"

    def connect(self, user: str = "postgres", autocommit: bool = True) -> psycopg.Connection:
        return psycopg.connect(self.dsn(user), autocommit=autocommit)


def alembic_upgrade(dsn: str, revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config

    os.environ["DATABASE_URL"] = dsn
    command.upgrade(Config(str(REPO_ROOT / "alembic.ini")), revision)


def alembic_downgrade(dsn: str, revision: str = "base") -> None:
    from alembic import command
    from alembic.config import Config

    os.environ["DATABASE_URL"] = dsn
    command.downgrade(Config(str(REPO_ROOT / "alembic.ini")), revision)


@pytest.fixture(scope="session")
def cluster() -> Iterator[str]:
    """A throwaway PostgreSQL 15 with plpython3u and pg_cron; yields its superuser URL."""
    server = throwaway_cluster()
    try:
        yield server.url()
    finally:
        server.stop()


def create_database(cluster_url: str, template: str | None = None) -> Database:
    name = f"t{os.getpid()}_{next(_db_counter)}"
    with psycopg.connect(cluster_url, autocommit=True) as conn:
        clause = f" TEMPLATE {template}" if template else ""
        conn.execute(f"CREATE DATABASE {name}{clause}")
    return Database(cluster_url, name)


@pytest.fixture(scope="session")
def template_db(cluster: str) -> Database:
    """A database migrated to head, with login roles for the app and the trainer."""
    with psycopg.connect(cluster, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    template = Database(cluster, TEMPLATE)
    alembic_upgrade(template.dsn())
    with template.connect() as conn:
        conn.execute(f"CREATE ROLE {APP_USER} LOGIN IN ROLE blink_app")
        conn.execute(f"CREATE ROLE {TRAINER_USER} LOGIN IN ROLE blink_trainer")
    return template


@pytest.fixture
def db(cluster: str, template_db: Database) -> Iterator[Database]:
    """A fresh migrated database per test (a copy of the template)."""
    database = create_database(cluster, TEMPLATE)
    yield database
    with psycopg.connect(cluster, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)")


@pytest.fixture
def empty_db(cluster: str) -> Iterator[Database]:
    """A fresh database with nothing of blink in it."""
    database = create_database(cluster)
    yield database
    with psycopg.connect(cluster, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)")


@dataclass
class TrainedModel:
    booster: object
    artifact: ModelArtifact
    population: synthetic.Population

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return self.booster.predict(matrix, num_threads=1)  # type: ignore[attr-defined]


def _trained(version: str, n_users: int, rounds: int, seed: int) -> TrainedModel:
    population = synthetic.generate(n_users, seed=seed)
    booster = fit_booster(population.features, population.defaulted, synthetic.FEATURES,
                          num_boost_round=rounds, seed=seed)
    artifact = build_artifact(booster, version, decision_threshold=0.2)
    return TrainedModel(booster, artifact, population)


@pytest.fixture(scope="session")
def model_a() -> TrainedModel:
    """A small real model: LightGBM trained on synthetic borrowers, compiled by TL2cgen."""
    return _trained("test-a", 1200, 60, seed=11)


@pytest.fixture(scope="session")
def model_b() -> TrainedModel:
    """A second, different model (other data and size) for promotion tests."""
    return _trained("test-b", 1500, 90, seed=12)
