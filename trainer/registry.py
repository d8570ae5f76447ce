"""Writing models to blink_models and changing the champion, through psycopg."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainer.artifacts import ModelArtifact

INSERT_MODEL = """
INSERT INTO blink.blink_models (version, feature_names, model_text, compiled_lib,
    compiled_lib_sha256, compiled_platform, decision_threshold, risk_bands, metrics, params,
    library_versions, model_text_sha256, treelite_model, treelite_model_sha256, report_html,
    feature_categories, monitoring_reference)
VALUES (%(version)s, %(feature_names)s, %(model_text)s, %(compiled_lib)s,
    %(compiled_lib_sha256)s, %(compiled_platform)s, %(decision_threshold)s, %(risk_bands)s,
    %(metrics)s, %(params)s, %(library_versions)s, %(model_text_sha256)s, %(treelite_model)s,
    %(treelite_model_sha256)s, %(report_html)s, %(feature_categories)s,
    %(monitoring_reference)s)
RETURNING id
"""


def insert_model(conn: Any, artifact: ModelArtifact) -> int:
    """Insert one model row (all artifacts in one statement); returns its id."""
    row = conn.execute(INSERT_MODEL, artifact.row()).fetchone()
    return int(row[0])


def model_id_by_version(conn: Any, version: str) -> int | None:
    """The id of the model with ``version``, or None."""
    row = conn.execute("SELECT id FROM blink.blink_models WHERE version = %s", [version]).fetchone()
    return None if row is None else int(row[0])


def promote(conn: Any, model_id: int, reason: str, review: str | None = None) -> int:
    """Make ``model_id`` the champion (blink vets it first); returns the deployment id.

    ``review`` (JSON) is recorded by blink_promote with the deployment.
    """
    row = conn.execute("SELECT (blink_promote(%s, %s, %s::jsonb)).id",
                       [model_id, reason, review]).fetchone()
    return int(row[0])


def refresh_feature_vectors(conn: Any, batch: int = 100_000,
                            progress: Callable[[str], None] | None = None) -> int:
    """Rebuild the stored feature vectors for the champion's layout; returns how many.

    Snapshots written before a champion with this layout score from JSON until rebuilt
    (same scores, slower). Batches of ``batch`` rows, each its own statement.
    """
    total = 0
    while True:
        (done,) = conn.execute("SELECT blink_refresh_feature_vectors(%s)", [batch]).fetchone()
        total += int(done)
        if progress is not None and done:
            progress(f"rebuilt {total:,} stored feature vectors for the champion")
        if done < batch:
            return total


def champion_id(conn: Any) -> int | None:
    """The champion's model id, or None before the first promotion."""
    row = conn.execute("SELECT model_id FROM blink.champion()").fetchone()
    return None if row is None else int(row[0])


def champion_model(conn: Any) -> dict[str, Any] | None:
    """The champion's id, version, features (``spec``, a FeatureSpec) and model text, or None."""
    from pyfuncs.features import FeatureSpec

    row = conn.execute(
        """
        SELECT m.id, m.version, m.feature_names, m.model_text, m.feature_categories
        FROM blink.champion() c JOIN blink.blink_models m ON m.id = c.model_id
        """).fetchone()
    if row is None:
        return None
    return {"id": int(row[0]), "version": row[1], "spec": FeatureSpec(row[2], row[4]),
            "model_text": row[3]}


def free_version(conn: Any, version: str) -> str:
    """``version``, or ``version-2``, ``-3``... if taken (two runs in the same second)."""
    candidate, n = version, 1
    while model_id_by_version(conn, candidate) is not None:
        n += 1
        candidate = f"{version}-{n}"
    return candidate
