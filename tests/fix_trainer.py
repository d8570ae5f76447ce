"""Trainer test helpers: a small history, a fast config, a weak champion, row counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg

from trainer import synthetic
from trainer.artifacts import ModelArtifact, build_artifact
from trainer.config import TrainerConfig
from trainer.ingest import load_history
from trainer.training import fit_booster

START = datetime(2026, 1, 5, tzinfo=UTC)
WEEKS = 16
CUTOFF = START + timedelta(weeks=WEEKS, days=60)  # every outcome has matured
WEAK_FEATURE = "metric_transaction_count90"


def small_history(users: int = 600, seed: int = 3) -> synthetic.History:
    return synthetic.generate_history(users, start=START, weeks=WEEKS, seed=seed)


def fast_config(**kw) -> TrainerConfig:
    """Few rounds: the tests check behaviour, not model quality."""
    values = dict(max_rounds=150, early_stopping_rounds=20)
    values.update(kw)
    return TrainerConfig(**values).validate()  # type: ignore[arg-type]


def weak_champion_artifact() -> tuple[object, ModelArtifact]:
    """A real but poor model: one weakly informative feature, three rounds."""
    pop = synthetic.generate(1000, seed=5)
    column = synthetic.FEATURES.index(WEAK_FEATURE)
    booster = fit_booster(pop.features[:, [column]], pop.defaulted, [WEAK_FEATURE],
                          num_boost_round=3, seed=5)
    return booster, build_artifact(booster, "weak-champion", decision_threshold=0.2)


def load(conn: psycopg.Connection, history: synthetic.History) -> None:
    load_history(conn, history)


def counts(conn: psycopg.Connection) -> dict[str, int]:
    tables = ("blink_models", "blink_deployments", "blink_promotion_reviews",
              "repayment_outcomes", "feature_store_snapshots")
    return {t: conn.execute(f"SELECT count(*) FROM blink.{t}").fetchone()[0] for t in tables}


def latest_vector(history: synthetic.History, user_id: str, names: list[str],
                  categories: dict | None = None) -> np.ndarray:
    """The user's newest snapshot as a model input row (what blink_score reads)."""
    from pyfuncs.features import FeatureSpec

    doc = max((s for s in history.snapshots if s[0] == user_id), key=lambda s: s[1])[2]
    spec = FeatureSpec(names, categories)
    return np.array([spec.vector(doc, allow_unknown=True, where="")], dtype=np.float64)
