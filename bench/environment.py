"""The benchmark's world: a throwaway cluster, migrated, with users, a trained model and roles.

Everything runs on 127.0.0.1, over TCP like an application's connections. Scoring runs as
``bench_app`` (granted ``blink_app`` only, like
an application); the floor query and the microservice read the feature store as
``bench_reader``, which may SELECT the snapshots table and nothing else.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from bench.config import BenchConfig

DATABASE = "blink_bench"  # not the cluster's pg_cron database, so no cron job runs during a run
APP_ROLE = "bench_app"
READER_ROLE = "bench_reader"
PAIR_ROLE = "bench_pair"  # both of the above: runs blink_score and the floor in one pgbench
USER_PREFIX = "user-"


@dataclass
class Environment:
    """A ready benchmark database and what was loaded into it."""

    server: Any  # the throwaway cluster (has .stop())
    host: str
    port: int
    workdir: Path
    population: Any  # trainer.synthetic.Population
    booster: Any  # lightgbm.Booster
    artifact: Any  # trainer.artifacts.ModelArtifact
    model_id: int
    model_file: Path  # the champion's LightGBM model text, for the microservice baseline
    timings: dict[str, float] = field(default_factory=dict)

    def dsn(self, user: str = "postgres") -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{DATABASE}"

    def connect(self, user: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.dsn(user), autocommit=True)

    @property
    def n_users(self) -> int:
        return len(self.population.user_ids)

    def close(self) -> None:
        self.server.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _timed(timings: dict[str, float], name: str, step: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = step()
    timings[name] = round(time.perf_counter() - start, 3)
    return result


def create_roles(conn: psycopg.Connection) -> None:
    """The scoring role (blink_app only), the reader role of the floor and microservice, and
    a role with both for the one-client pairs (bench.latency)."""
    for role in (APP_ROLE, READER_ROLE, PAIR_ROLE):
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        if not exists:
            conn.execute(f"CREATE ROLE {role} LOGIN")
    conn.execute(f"GRANT blink_app TO {APP_ROLE}")
    conn.execute(f"GRANT USAGE ON SCHEMA blink TO {READER_ROLE}")
    conn.execute(f"GRANT SELECT ON blink.feature_store_snapshots TO {READER_ROLE}")
    conn.execute(f"GRANT {APP_ROLE}, {READER_ROLE} TO {PAIR_ROLE}")


def load_snapshots(conn: psycopg.Connection, population: Any) -> None:
    """One snapshot per user, with COPY, then ANALYZE so plans see the real table."""
    from psycopg.types.json import Jsonb

    with conn.cursor() as cur:
        with cur.copy("COPY blink.feature_store_snapshots (user_id, features) FROM STDIN") as cp:
            for user_id, doc in zip(population.user_ids, population.documents(), strict=True):
                cp.write_row([user_id, Jsonb(doc)])
    conn.execute("ANALYZE blink.feature_store_snapshots")


def train(config: BenchConfig, population: Any) -> tuple[Any, Any]:
    """Fit the benchmark model (``config.trees`` x ``config.leaves``) and compile it."""
    from trainer import synthetic
    from trainer.artifacts import build_artifact
    from trainer.training import fit_booster

    n = config.train_users
    booster = fit_booster(
        population.features[:n], population.defaulted[:n], synthetic.FEATURES,
        num_boost_round=config.trees, seed=config.seed,
        params={"num_leaves": config.leaves, "min_data_in_leaf": 20},
    )
    artifact = build_artifact(
        booster, f"bench-{config.trees}x{config.leaves}-{config.seed}",
        decision_threshold=0.2, params={"trees": config.trees, "leaves": config.leaves},
    )
    return booster, artifact


def prepare(config: BenchConfig, log: Callable[[str], None]) -> Environment:
    """Start a throwaway cluster and fill it; the caller must ``close()`` the result."""
    from devenv import migrate
    from devenv.cluster import throwaway_cluster
    from trainer import registry, synthetic

    timings: dict[str, float] = {}
    workdir = Path(tempfile.mkdtemp(prefix="blink-bench-"))
    log("starting a throwaway PostgreSQL cluster")
    server = _timed(timings, "cluster_start_s", lambda: throwaway_cluster(tcp=True))
    try:
        url = urlsplit(server.url())
        host, port = url.hostname or "127.0.0.1", int(url.port or 5432)
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        dsn = f"postgresql://postgres@{host}:{port}/{DATABASE}"
        _timed(timings, "migrate_s", lambda: migrate.upgrade(dsn))
        population = synthetic.generate(config.n_users, seed=config.seed, prefix=USER_PREFIX)
        log(f"training and compiling a {config.trees} trees x {config.leaves} leaves model")
        booster, artifact = _timed(timings, "train_compile_s", lambda: train(config, population))
        model_file = workdir / "model.txt"
        model_file.write_text(artifact.model_text)
        log(f"loading {config.n_users:,} feature snapshots")
        with psycopg.connect(dsn, autocommit=True) as conn:
            create_roles(conn)
            # The bench times rescoring of one model: no previous champion on probation
            # scoring in shadow after the reload benchmark's promotions.
            conn.execute("UPDATE blink.monitoring_policy SET probation = '0'")
            _timed(timings, "load_snapshots_s", lambda: load_snapshots(conn, population))
            model_id = registry.insert_model(conn, artifact)
            registry.promote(conn, model_id, "make bench")
            _timed(timings, "refresh_feature_vectors_s",
                   lambda: registry.refresh_feature_vectors(conn))
            # The refresh rewrote every row. Autovacuum would clean the old versions up
            # within a minute, in the middle of the timed rounds; the bench measures the
            # table as it is once that has happened.
            _timed(timings, "vacuum_s",
                   lambda: conn.execute("VACUUM (ANALYZE) blink.feature_store_snapshots"))
    except BaseException:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return Environment(server, host, port, workdir, population, booster, artifact, model_id,
                       model_file, timings)
