"""All SQL pyfuncs runs through SPI, as plans prepared once per session and kept in GD.

"The champion" and "a user's latest snapshot" are read through ``blink.champion()`` and
``blink.latest_snapshot()`` (db/idempotent/010_lookups.sql), which the planner inlines.
"""

from __future__ import annotations

from pyfuncs._typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyfuncs.features import FeatureSpec

_QUERIES: dict[str, tuple[str, list[str]]] = {
    # The champion and the user's latest snapshot in one round trip (blink_decide).
    "champion_and_snapshot": (
        """
        SELECT c.model_id, s.id AS snapshot_id, s.snapshot_at, s.features::text AS features
        FROM blink.champion() c LEFT JOIN LATERAL blink.latest_snapshot($1) s ON true
        """,
        ["text"],
    ),
    "champion": ("SELECT model_id FROM blink.champion()", []),
    # A model as blink runs it: the library is the one the server built (vetted_models).
    "model": (
        """
        SELECT m.id, m.version, m.feature_names, m.feature_categories::text AS feature_categories,
               v.compiled_lib, v.compiled_lib_sha256,
               m.decision_threshold, m.risk_bands::text AS risk_bands,
               v.model_id IS NOT NULL AS vetted
        FROM blink.blink_models m LEFT JOIN blink.vetted_models v ON v.model_id = m.id
        WHERE m.id = $1
        """,
        ["bigint"],
    ),
    "vetted": ("SELECT model_id FROM blink.vetted_models WHERE model_id = $1", ["bigint"]),
    "model_to_vet": (
        "SELECT version, feature_names, feature_categories::text AS feature_categories,"
        " model_text FROM blink.blink_models WHERE id = $1",
        ["bigint"],
    ),
    "data_directory": ("SELECT current_setting('data_directory') AS path", []),
    "insert_vetted": (
        """
        INSERT INTO blink.vetted_models (model_id, compiled_lib, compiled_lib_sha256,
            compiled_platform, model_text_sha256, parity_max_abs_diff, library_versions)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
        ON CONFLICT (model_id) DO NOTHING
        """,
        ["bigint", "bytea", "text", "text", "text", "float8", "text"],
    ),
    "model_text": ("SELECT model_text FROM blink.blink_models WHERE id = $1", ["bigint"]),
    "champion_deployment": ("SELECT * FROM blink.champion()", []),
    "deployment": ("SELECT * FROM blink.blink_deployments WHERE id = $1", ["bigint"]),
    "lock_deployments": ("LOCK TABLE blink.blink_deployments IN EXCLUSIVE MODE", []),
    "insert_deployment": (
        """
        INSERT INTO blink.blink_deployments (model_id, action, reason, rollback_to_id)
        VALUES ($1, $2, $3, $4) RETURNING *
        """,
        ["bigint", "text", "text", "bigint"],
    ),
    # The trainer's review of a promotion, attached to the deployment blink_promote made.
    "insert_promotion_review": (
        """
        INSERT INTO blink.blink_promotion_reviews (candidate_model_id, champion_model_id,
            decision, gate_passed, forced, reason, deployment_id, window_start, window_end,
            candidate_metrics, champion_metrics)
        SELECT $1, (r ->> 'champion_model_id')::bigint, 'promoted',
               coalesce((r ->> 'gate_passed')::boolean, false),
               coalesce((r ->> 'forced')::boolean, false),
               coalesce(r ->> 'reason', 'promoted'), $2,
               (r ->> 'window_start')::timestamptz, (r ->> 'window_end')::timestamptz,
               coalesce(r -> 'candidate_metrics', '{}'),
               nullif(r -> 'champion_metrics', 'null')  -- no champion: SQL NULL
        FROM (SELECT $3::jsonb AS r) x
        """,
        ["bigint", "bigint", "text"],
    ),
    # Per database (advisory locks are), held to the end of the transaction.
    # A standby takes the lock too (locks need no writes), so it is asked about first.
    "rescore_lock": (
        "SELECT pg_is_in_recovery() AS standby,"
        " NOT pg_is_in_recovery()"
        " AND pg_try_advisory_xact_lock(hashtext('blink.rescore_pending')) AS locked",
        [],
    ),
    "shadow_models": (
        "SELECT model_id FROM blink.blink_shadow_models ORDER BY model_id",
        [],
    ),
    "reason_codes": (
        "SELECT feature_name, code, reason_text, missing_reason_text, category"
        " FROM blink.reason_codes",
        [],
    ),
    # Snapshots a run could not score, once per (snapshot, model).
    "insert_unscorable": (
        """
        WITH ins AS (
            INSERT INTO blink.unscorable_snapshots (snapshot_id, model_id, user_id, error)
            SELECT x.id, $1, x.u, x.e FROM unnest($2::bigint[], $3::text[], $4::text[])
                AS x(id, u, e)
            ON CONFLICT DO NOTHING RETURNING 1
        )
        SELECT count(*)::int AS written FROM ins
        """,
        ["bigint", "bigint[]", "text[]", "text[]"],
    ),
    # Latest snapshot of every user that has no audit (or quarantine) by model $1, oldest first.
    "pending_snapshots": (
        """
        SELECT coalesce(array_agg(id ORDER BY id), '{}') AS ids FROM (
            SELECT l.id FROM blink.latest_snapshots() l
            WHERE NOT EXISTS (SELECT FROM blink.risk_score_audits a
                              WHERE a.snapshot_id = l.id AND a.model_id = $1)
              AND NOT EXISTS (SELECT FROM blink.unscorable_snapshots q
                              WHERE q.snapshot_id = l.id AND q.model_id = $1)
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
                       missing_reason_text, category FROM blink.reason_codes) r
               ) END AS reason_codes
        FROM (SELECT $2::bigint AS model_id) c
        LEFT JOIN LATERAL blink.latest_snapshot($1) s ON true
        LEFT JOIN blink.risk_score_audits a ON a.snapshot_id = s.id AND a.model_id = c.model_id
        """,
        ["text", "bigint"],
    ),
    # The champion as this statement sees it, and whether it may write (not read-only, not
    # a standby): one statement uses one champion for every row it explains.
    "statement_champion": (
        """
        SELECT statement_timestamp()::text AS statement, pg_backend_pid() AS backend,
               (SELECT model_id FROM blink.champion()) AS model_id,
               current_setting('transaction_read_only') = 'off'
                   AND NOT pg_is_in_recovery() AS writable
        """,
        [],
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


# --- the batch queries: feature vectors built in SQL, packed into one bytea ---------------


def sql_literal(text: str) -> str:
    """``text`` as an escape-string literal: correct whatever standard_conforming_strings is."""
    return "E'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def value_exprs(spec: FeatureSpec, document: str, *, safe: bool) -> tuple[list[str], str]:
    """SQL for each feature's float8 value (NULL when missing) and the row's "needs Python" flag.

    ``safe=False`` casts numbers straight to float8 (fast; a number beyond float8's range
    makes the query fail, and the caller retries with ``safe=True``, which never fails).
    A categorical feature's code is looked up in a jsonb object of its categories
    (``FeatureSpec.category_keys``); an unseen category is NULL, missing, as in Python.
    The flag is true when a value is of a type the feature does not take (or, when safe,
    when SQL could not convert a number): such rows are converted by pyfuncs.features,
    like blink_score, which gives the error.
    """
    import json

    values, checks = [], []
    for j, name in enumerate(spec.names):
        key = sql_literal(name)
        v = f"({document} -> {key})"
        if spec.is_categorical(j):
            codes = sql_literal(json.dumps(spec.category_keys(j), sort_keys=True))
            values.append(f"(({codes}::jsonb -> (left(jsonb_typeof({v}), 1)"
                          f" || ({document} ->> {key})))::float8)")
            checks.append(f"coalesce(jsonb_typeof({v}) IN ('string', 'boolean', 'null'), true)")
        elif safe:
            values.append(f"blink.feature_number({v})")
            checks.append(f"(blink.feature_number({v}) IS NOT NULL OR {v} IS NULL"
                          f" OR jsonb_typeof({v}) = 'null')")
        else:
            values.append(f"CASE WHEN jsonb_typeof({v}) = 'number' THEN {v}::float8 END")
            checks.append(f"coalesce(jsonb_typeof({v}) IN ('number', 'null'), true)")
    return values, "NOT (" + " AND ".join(checks) + ")"


def packed_values_sql(spec: FeatureSpec, document: str, *, safe: bool) -> tuple[str, str]:
    """The row's feature vector as packed big-endian float8s (bytea), missing as NaN.

    ``string_agg`` of these is the batch matrix in one bytea: PL/Python converts a float8[]
    element by element into Python floats, which costs more than the query itself.
    """
    values, flagged = value_exprs(spec, document, safe=safe)
    return " || ".join(f"float8send(coalesce({v}, 'NaN'::float8))" for v in values), flagged


def snapshots_by_id_sql(spec: FeatureSpec, *, safe: bool) -> str:
    """Snapshots $1 (bigint[]) as packed rows, ascending id (snapshots.unpack_rows); flagged ids."""
    packed, flagged = packed_values_sql(spec, "s.features", safe=safe)
    return f"""
        SELECT string_agg(int8send(s.id) || {packed}, ''::bytea ORDER BY s.id) AS packed,
               array_agg(s.id) FILTER (WHERE {flagged}) AS bad
        FROM blink.feature_store_snapshots s WHERE s.id = ANY($1)
    """


def latest_snapshots_sql(spec: FeatureSpec, *, safe: bool) -> str:
    """Latest snapshot of each user of $1 (text[]) as packed rows in input order, flagged ids.

    One aggregate, so one sort; a user without a snapshot is a row of id -1 and NaNs.
    """
    packed, flagged = packed_values_sql(spec, "s.features", safe=safe)
    missing = " || ".join(["float8send('NaN'::float8)"] * len(spec))
    return f"""
        SELECT string_agg(
                   CASE WHEN s.id IS NULL
                        THEN int8send(-1) || float8send('NaN'::float8) || {missing}
                        ELSE int8send(s.id) || float8send(date_part('epoch', s.snapshot_at))
                             || {packed}
                   END, ''::bytea ORDER BY u.ord) AS packed,
               array_agg(s.id) FILTER (WHERE {flagged}) AS bad
        FROM unnest($1::text[]) WITH ORDINALITY AS u(user_id, ord)
        LEFT JOIN LATERAL blink.latest_snapshot(u.user_id) s ON true
    """
