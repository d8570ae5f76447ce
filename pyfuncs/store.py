"""The SQL pyfuncs runs through SPI, as plans prepared once per session and kept in GD."""

from __future__ import annotations

from pyfuncs._typing import Any

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
    # --- rescoring, reason codes and the batch API (issue 4) ---
    # Per database (advisory locks are), held to the end of the transaction.
    "rescore_lock": (
        "SELECT pg_try_advisory_xact_lock(hashtext('blink.rescore_pending')) AS locked",
        [],
    ),
    "shadow_models": (
        "SELECT model_id FROM blink.blink_shadow_models ORDER BY model_id",
        [],
    ),
    "reason_codes": (
        "SELECT feature_name, code, reason_text, missing_reason_text FROM blink.reason_codes",
        [],
    ),
    # Latest snapshot of every user that has no audit by model $1 yet, oldest first.
    "pending_snapshots": (
        """
        SELECT coalesce(array_agg(id ORDER BY id), '{}') AS ids FROM (
            SELECT l.id FROM (
                SELECT DISTINCT ON (user_id) id FROM blink.feature_store_snapshots
                ORDER BY user_id, snapshot_at DESC, id DESC
            ) l
            WHERE NOT EXISTS (SELECT FROM blink.risk_score_audits a
                              WHERE a.snapshot_id = l.id AND a.model_id = $1)
            ORDER BY l.id LIMIT $2
        ) q
        """,
        ["bigint", "integer"],
    ),
    "snapshot_documents": (
        """
        SELECT id, user_id, features::text AS features FROM blink.feature_store_snapshots
        WHERE id = ANY($1)
        """,
        ["bigint[]"],
    ),
    # One statement per batch; the unique (snapshot_id, model_id) makes a rerun a no-op.
    "insert_audits": (
        """
        WITH ins AS (
            INSERT INTO blink.risk_score_audits (user_id, snapshot_id, snapshot_at, model_id,
                probability_default, decision, risk_band, features, reasons, source)
            SELECT s.user_id, s.id, s.snapshot_at, $2, x.p, x.d, x.b, s.features,
                   x.r::jsonb, $7
            FROM unnest($1::bigint[], $3::float8[], $4::text[], $5::text[], $6::text[])
                 AS x(id, p, d, b, r)
            JOIN blink.feature_store_snapshots s ON s.id = x.id
            ON CONFLICT (snapshot_id, model_id) DO NOTHING
            RETURNING scored_at
        )
        SELECT count(*)::int AS written, max(scored_at) AS scored_at FROM ins
        """,
        ["bigint[]", "bigint", "float8[]", "text[]", "text[]", "text[]", "text"],
    ),
    # blink_explain in one round trip: champion, latest snapshot, its audit if any, and the
    # reason texts only when the audit has to be computed.
    "explain_lookup": (
        """
        SELECT c.model_id, s.id AS snapshot_id, s.features::text AS features,
               a.probability_default, a.decision, a.reasons::text AS reasons, a.source,
               a.scored_at,
               CASE WHEN a.id IS NULL AND s.id IS NOT NULL THEN (
                   SELECT json_agg(r)::text FROM (SELECT feature_name, code, reason_text,
                       missing_reason_text FROM blink.reason_codes) r
               ) END AS reason_codes
        FROM (SELECT model_id FROM blink.blink_deployments ORDER BY id DESC LIMIT 1) c
        LEFT JOIN LATERAL (
            SELECT id, features FROM blink.feature_store_snapshots
            WHERE user_id = $1 ORDER BY snapshot_at DESC, id DESC LIMIT 1
        ) s ON true
        LEFT JOIN blink.risk_score_audits a ON a.snapshot_id = s.id AND a.model_id = c.model_id
        """,
        ["text"],
    ),
    "short_lock_timeout": (
        "SELECT current_setting('lock_timeout') AS previous,"
        " set_config('lock_timeout', '250ms', true) AS now",
        [],
    ),
    "set_lock_timeout": ("SELECT set_config('lock_timeout', $1, true)", ["text"]),
    "audit_of": (
        """
        SELECT id, probability_default, decision, risk_band, reasons::text AS reasons, source,
               scored_at
        FROM blink.risk_score_audits WHERE snapshot_id = $1 AND model_id = $2
        """,
        ["bigint", "bigint"],
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
