"""Writing models to blink_models and changing the champion, through psycopg."""

from __future__ import annotations

from typing import Any

from trainer.artifacts import ModelArtifact

INSERT_MODEL = """
INSERT INTO blink.blink_models (version, feature_names, model_text, compiled_lib,
    compiled_lib_sha256, compiled_platform, decision_threshold, risk_bands, metrics, params,
    library_versions)
VALUES (%(version)s, %(feature_names)s, %(model_text)s, %(compiled_lib)s,
    %(compiled_lib_sha256)s, %(compiled_platform)s, %(decision_threshold)s, %(risk_bands)s,
    %(metrics)s, %(params)s, %(library_versions)s)
RETURNING id
"""


def insert_model(conn: Any, artifact: ModelArtifact) -> int:
    """Insert one model row (all artifacts in one statement); returns its id."""
    row = conn.execute(INSERT_MODEL, artifact.row()).fetchone()
    return int(row[0])


def model_id_by_version(conn: Any, version: str) -> int | None:
    row = conn.execute("SELECT id FROM blink.blink_models WHERE version = %s", [version]).fetchone()
    return None if row is None else int(row[0])


def promote(conn: Any, model_id: int, reason: str) -> int:
    """Make ``model_id`` the champion; returns the deployment id."""
    row = conn.execute("SELECT (blink_promote(%s, %s)).id", [model_id, reason]).fetchone()
    return int(row[0])


def champion_id(conn: Any) -> int | None:
    row = conn.execute("SELECT model_id FROM blink_champion()").fetchone()
    return None if row is None else int(row[0])
