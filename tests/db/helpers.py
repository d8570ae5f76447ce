"""Helpers for database tests: load snapshots and models the way users would."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg.types.json import Jsonb

from trainer import registry
from trainer.artifacts import ModelArtifact


def insert_snapshots(conn: psycopg.Connection, user_ids: Sequence[str],
                     documents: Sequence[dict]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO blink.feature_store_snapshots (user_id, features) VALUES (%s, %s)",
            [(u, Jsonb(d)) for u, d in zip(user_ids, documents, strict=True)],
        )


def install(conn: psycopg.Connection, artifact: ModelArtifact, promote: bool = True) -> int:
    model_id = registry.insert_model(conn, artifact)
    if promote:
        registry.promote(conn, model_id, "test")
    return model_id
