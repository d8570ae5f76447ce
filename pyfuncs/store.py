"""The SQL pyfuncs runs through SPI, as plans prepared once per session and kept in GD."""

from __future__ import annotations

from typing import Any

_QUERIES: dict[str, tuple[str, list[str]]] = {
    # Champion and the user's latest snapshot in one round trip: the hot path of blink_score.
    "champion_and_snapshot": (
        """
        SELECT c.model_id, s.id AS snapshot_id, s.snapshot_at, s.features::text AS features
        FROM (SELECT model_id FROM blink.blink_deployments ORDER BY id DESC LIMIT 1) c
        LEFT JOIN LATERAL (
            SELECT id, snapshot_at, features FROM blink.feature_store_snapshots
            WHERE user_id = $1 ORDER BY snapshot_at DESC, id DESC LIMIT 1
        ) s ON true
        """,
        ["text"],
    ),
    "champion": (
        "SELECT model_id FROM blink.blink_deployments ORDER BY id DESC LIMIT 1",
        [],
    ),
    "model": (
        """
        SELECT id, version, feature_names, compiled_lib, compiled_lib_sha256,
               decision_threshold, risk_bands::text AS risk_bands
        FROM blink.blink_models WHERE id = $1
        """,
        ["bigint"],
    ),
    "model_text": ("SELECT model_text FROM blink.blink_models WHERE id = $1", ["bigint"]),
    "model_exists": ("SELECT version FROM blink.blink_models WHERE id = $1", ["bigint"]),
    "latest_deployment": (
        "SELECT * FROM blink.blink_deployments ORDER BY id DESC LIMIT 1",
        [],
    ),
    "deployment": ("SELECT * FROM blink.blink_deployments WHERE id = $1", ["bigint"]),
    "insert_deployment": (
        """
        INSERT INTO blink.blink_deployments (model_id, action, reason, rollback_to_id)
        VALUES ($1, $2, $3, $4) RETURNING *
        """,
        ["bigint", "text", "text", "bigint"],
    ),
}


def run(plpy: Any, GD: dict, name: str, *args: Any) -> list[dict[str, Any]]:
    """Execute the named query with ``args``; the plan is prepared on first use per session."""
    plans = GD.setdefault("blink.plans", {})
    plan = plans.get(name)
    if plan is None:
        sql, types = _QUERIES[name]
        plan = plans[name] = plpy.prepare(sql, types)
    return list(plpy.execute(plan, list(args)))


def one(plpy: Any, GD: dict, name: str, *args: Any) -> dict[str, Any] | None:
    rows = run(plpy, GD, name, *args)
    return rows[0] if rows else None
