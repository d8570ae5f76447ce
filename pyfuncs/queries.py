"""All SQL pyfuncs runs through SPI, as plans prepared once per session and kept in GD.

"The champion" and "a user's latest snapshot" are read through ``blink.champion()`` and
``blink.latest_snapshot()`` (db/idempotent/010_lookups.sql), which the planner inlines.
"""

from __future__ import annotations

from pyfuncs._typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyfuncs.features import FeatureSpec

# Where a database's library files live (pyfuncs.library_files.directory_in): the server's
# data directory and the database's oid, the same on every standby.
_LIBRARY_PLACE = """current_setting('data_directory') AS data_directory,
               (SELECT d.oid FROM pg_catalog.pg_database d
                WHERE d.datname = current_database())::bigint AS database_oid"""

# The latest snapshot of every user of worker $4 of $3 (every user when $3 = 1) that has no
# audit (or quarantine) by model $1, oldest first, at most $2; {written} narrows the users to
# those with a recently written snapshot. horizon: every transaction older than it had ended
# when this statement's snapshot was taken, so each snapshot it wrote is in this answer's
# view; a later run may start from it (rescore.pending).
_PENDING = """
    SELECT coalesce(array_agg(id ORDER BY id), '{}') AS ids,
           pg_snapshot_xmin(pg_current_snapshot())::text AS horizon
    FROM (
        -- blink.latest_snapshots() of this worker's users ($4 of $3) only: the share is
        -- taken before the lookups (a filter on latest_snapshots()'s rows would look every
        -- user up first, so each of n workers would pay a whole run's lookups)
        SELECT l.id
        FROM (SELECT DISTINCT f.user_id FROM blink.feature_store_snapshots f
              WHERE blink.rescore_worker(f.user_id, $3) = $4 {written}) u
        CROSS JOIN LATERAL blink.latest_snapshot(u.user_id) l
        WHERE NOT EXISTS (SELECT FROM blink.risk_score_audits a
                          WHERE a.snapshot_id = l.id AND a.model_id = $1)
          AND NOT EXISTS (SELECT FROM blink.unscorable_snapshots q
                          WHERE q.snapshot_id = l.id AND q.model_id = $1)
        ORDER BY l.id LIMIT $2
    ) q
"""

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
               length(v.compiled_lib) AS compiled_lib_size, v.compiled_lib_sha256,
               v.model_id IS NOT NULL AS vetted,
               """ + _LIBRARY_PLACE + """
        FROM blink.blink_models m LEFT JOIN blink.vetted_models v ON v.model_id = m.id
        WHERE m.id = $1
        """,
        ["bigint"],
    ),
    # The libraries pyfuncs.library_files keeps on disk: those of the models blink may run
    # without another promotion (the champion, the one a rollback restores, the shadows),
    # and where they are.
    "kept_libraries": (
        """
        SELECT ARRAY(SELECT v.compiled_lib_sha256 FROM blink.vetted_models v
                     WHERE v.model_id IN (
                         SELECT c.model_id FROM blink.champion() c
                         UNION SELECT d.model_id FROM blink.champion() c
                               JOIN blink.blink_deployments d ON d.id = c.rollback_to_id
                         UNION SELECT s.model_id FROM blink.blink_shadow_models s)) AS hashes,
               """ + _LIBRARY_PLACE + """
        """,
        [],
    ),
    # A model's decision threshold and risk bands (LoadedModel.policy, on its first decision).
    "model_policy": (
        "SELECT decision_threshold, band_names, band_bounds FROM blink.model_policy($1)",
        ["bigint"],
    ),
    # Which stored vectors a model reads (LoadedModel.layout, fetched for its first batch).
    "model_layout": (
        "SELECT blink.feature_layout(m.feature_names, m.feature_categories)::text"
        " AS feature_layout FROM blink.blink_models m WHERE m.id = $1",
        ["bigint"],
    ),
    "model_library": ("SELECT compiled_lib FROM blink.vetted_models WHERE model_id = $1",
                      ["bigint"]),
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
    # Per database (advisory locks are), held to the end of the transaction. A run of every
    # user ($1 workers = 1) holds the lock alone; a worker's run ($2 of $1) shares it with
    # the other workers and holds its worker's lock alone: a run of every user never
    # overlaps a worker's, two runs of one worker never overlap each other. A standby takes
    # locks too (locks need no writes), so it is asked about first; CASE fixes the order.
    "rescore_lock": (
        "SELECT pg_is_in_recovery() AS standby,"
        " CASE WHEN pg_is_in_recovery() THEN false"
        " WHEN $1 = 1 THEN pg_try_advisory_xact_lock(hashtext('blink.rescore_pending'))"
        " WHEN pg_try_advisory_xact_lock_shared(hashtext('blink.rescore_pending'))"
        " THEN pg_try_advisory_xact_lock(hashtext('blink.rescore_pending/' || $1), $2)"
        " ELSE false END AS locked",
        ["integer", "integer"],
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
    # Pending snapshots: see _PENDING. Every user of the share, or (…_written_since) only
    # the users with a snapshot written by transaction $5 or later.
    "pending_snapshots": (_PENDING.replace("{written}", ""),
                          ["bigint", "integer", "integer", "integer"]),
    "pending_snapshots_written_since": (
        _PENDING.replace("{written}", "AND f.written_xid >= $5"),
        ["bigint", "integer", "integer", "integer", "xid8"],
    ),
    # Where the share's last complete run left model $1's rescoring (rescore.pending).
    "rescore_cursor": (
        """
        SELECT written_before::text AS written_before,
               swept_at > now() - $4::interval AS swept_recently,
               cluster_id = (SELECT system_identifier FROM pg_control_system()) AS here
        FROM blink.rescore_cursors WHERE model_id = $1 AND workers = $2 AND worker = $3
        """,
        ["bigint", "integer", "integer", "text"],
    ),
    # After a complete run: its horizon, and (if it read every user) now as its sweep.
    "advance_rescore_cursor": (
        """
        INSERT INTO blink.rescore_cursors AS c (model_id, workers, worker, written_before,
                                                completed_at, swept_at, cluster_id)
        SELECT $1, $2, $3, $4, now(), now(), system_identifier FROM pg_control_system()
        ON CONFLICT (model_id, workers, worker) DO UPDATE
        SET written_before = excluded.written_before, completed_at = excluded.completed_at,
            cluster_id = excluded.cluster_id,
            swept_at = CASE WHEN $5 THEN excluded.swept_at ELSE c.swept_at END
        """,
        ["bigint", "integer", "integer", "xid8", "boolean"],
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
    # --- monitoring (pyfuncs.monitoring.run) ---
    "monitor_lock": (
        "SELECT pg_is_in_recovery() AS standby, clock_timestamp() AS started_at,"
        " NOT pg_is_in_recovery()"
        " AND pg_try_advisory_xact_lock(hashtext('blink.monitor_run')) AS locked",
        [],
    ),
    "monitoring_policy": (
        """
        SELECT p.*, extract(epoch FROM p.cohort) AS cohort_seconds,
               extract(epoch FROM p.grace) AS grace_seconds,
               extract(epoch FROM p.lookback) AS lookback_seconds,
               extract(epoch FROM p.cooldown) AS cooldown_seconds,
               extract(epoch FROM p.probation) AS probation_seconds
        FROM blink.monitoring_policy p
        """,
        [],
    ),
    "probation_shadow": (
        """
        INSERT INTO blink.blink_shadow_models (model_id, reason, until)
        SELECT $1, $2, now() + p.probation FROM blink.monitoring_policy p
        WHERE p.mode <> 'off' AND p.probation > interval '0'
        ON CONFLICT (model_id) DO NOTHING
        """,
        ["bigint", "text"],
    ),
    "monitor_live": (
        """
        SELECT c.model_id AS champion, c.deployed_at AS champion_since,
               (SELECT d.model_id FROM blink.blink_deployments d WHERE d.id = c.rollback_to_id)
                   AS previous,
               (SELECT coalesce(json_object_agg(s.model_id, s.until), '{}')::text
                FROM blink.blink_shadow_models s) AS shadows,
               ARRAY(SELECT DISTINCT a.model_id FROM blink.monitoring_actions a
                     WHERE a.action = 'rollback') AS never_auto,
               EXISTS (SELECT FROM blink.retrain_requests r WHERE NOT EXISTS (
                   SELECT FROM blink.retrain_request_results x WHERE x.request_id = r.id))
                   AS pending_retrain,
               EXISTS (SELECT FROM blink.monitoring_metrics m
                       JOIN blink.monitoring_runs r ON r.id = m.run_id
                       WHERE m.model_id = c.model_id AND m.cohort_kind = 'inputs'
                         AND m.status <> 'insufficient_data' AND r.started_at >= c.deployed_at)
                   AS champion_inputs_measured
        FROM (SELECT 1) one LEFT JOIN blink.champion() c ON true
        """,
        [],
    ),
    "monitor_models": (
        """
        SELECT id, version, feature_names, feature_categories::text AS feature_categories,
               decision_threshold, risk_bands::text AS risk_bands,
               monitoring_reference::text AS reference
        FROM blink.blink_models WHERE id = ANY($1) ORDER BY id
        """,
        ["bigint[]"],
    ),
    # Closed cohorts (weeks by default, aligned to Mondays 00:00 UTC) with scores of the model,
    # not yet measured for it (all of them with recompute).
    "inputs_cohorts": (
        """
        SELECT s AS start, s + $2 AS end
        FROM generate_series(date_bin($2, $3 - $4, '2000-01-03 00:00+00'),
                             date_bin($2, $3, '2000-01-03 00:00+00') - $2, $2) s
        WHERE EXISTS (SELECT FROM blink.risk_score_audits a WHERE a.model_id = $1
                      AND a.snapshot_at >= s AND a.snapshot_at < s + $2)
          AND ($5 OR NOT EXISTS (SELECT FROM blink.monitoring_metrics m WHERE m.model_id = $1
                 AND m.cohort_kind = 'inputs' AND m.cohort_start = s))
        ORDER BY s
        """,
        ["bigint", "interval", "timestamptz", "interval", "boolean"],
    ),
    # Matured cohorts: every loan issued in it is past due + grace (the trainer's rule).
    "outcomes_cohorts": (
        """
        WITH term AS (
            SELECT coalesce(max(o.due_at - o.issued_at), interval '0') AS longest
            FROM blink.repayment_outcomes o WHERE o.issued_at >= $3 - $4 - $2)
        SELECT s AS start, s + $2 AS end
        FROM term, generate_series(date_bin($2, $3 - $4, '2000-01-03 00:00+00'),
                                   date_bin($2, $3, '2000-01-03 00:00+00') - $2, $2) s
        WHERE s + $2 + term.longest + $6 <= $3
          AND EXISTS (SELECT FROM blink.repayment_outcomes o
                      WHERE o.issued_at >= s AND o.issued_at < s + $2)
          AND EXISTS (SELECT FROM blink.risk_score_audits a WHERE a.model_id = $1
                      AND a.snapshot_at < s + $2)
          AND ($5 OR NOT EXISTS (SELECT FROM blink.monitoring_metrics m WHERE m.model_id = $1
                 AND m.cohort_kind = 'outcomes' AND m.cohort_start = s))
        ORDER BY s
        """,
        ["bigint", "interval", "timestamptz", "interval", "boolean", "interval"],
    ),
    # One row per user: the model's latest score of a snapshot taken in the cohort.
    "inputs_rows": (
        """
        SELECT coalesce(array_agg(user_id ORDER BY user_id), '{}') AS users,
               coalesce(array_agg(features ORDER BY user_id), '{}') AS features,
               coalesce(array_agg(probability_default ORDER BY user_id), '{}') AS p,
               coalesce(array_agg(decision = 'approved' ORDER BY user_id), '{}') AS approved
        FROM (SELECT DISTINCT ON (a.user_id) a.user_id, a.features::text AS features,
                     a.probability_default, a.decision
              FROM blink.risk_score_audits a
              WHERE a.model_id = $1 AND a.snapshot_at >= $2 AND a.snapshot_at < $3
              ORDER BY a.user_id, a.snapshot_at DESC, a.id DESC) latest
        """,
        ["bigint", "timestamptz", "timestamptz"],
    ),
    # Matured loans issued in the cohort, each with the model's latest score before the loan.
    "outcome_rows": (
        """
        SELECT coalesce(array_agg(o.id ORDER BY o.id), '{}') AS loans,
               coalesce(array_agg((o.outcome <> 'repaid')::int ORDER BY o.id), '{}') AS bad,
               coalesce(array_agg(s.probability_default ORDER BY o.id), '{}') AS p
        FROM blink.repayment_outcomes o
        CROSS JOIN LATERAL (
            SELECT a.probability_default FROM blink.risk_score_audits a
            WHERE a.user_id = o.user_id AND a.model_id = $1 AND a.snapshot_at < o.issued_at
            ORDER BY a.snapshot_at DESC LIMIT 1) s
        WHERE o.issued_at >= $2 AND o.issued_at < $3
          AND o.due_at + $4 <= $5 AND o.observed_at <= $5
        """,
        ["bigint", "timestamptz", "timestamptz", "interval", "timestamptz"],
    ),
    # Statuses of a metric on earlier cohorts (the latest run's figure per cohort), newest last.
    "metric_history": (
        """
        SELECT status, run_id FROM (
            SELECT DISTINCT ON (m.cohort_start) m.cohort_start, m.status, m.run_id
            FROM blink.monitoring_metrics m
            WHERE m.model_id = $1 AND m.metric = $2
              AND m.compared_model_id IS NOT DISTINCT FROM $3 AND m.cohort_start < $4
            ORDER BY m.cohort_start DESC, m.run_id DESC
            LIMIT 20) h
        ORDER BY cohort_start
        """,
        ["bigint", "text", "bigint", "timestamptz"],
    ),
    "insert_monitoring_run": (
        """
        INSERT INTO blink.monitoring_runs (started_at, as_of, mode, status, summary)
        VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id
        """,
        ["timestamptz", "timestamptz", "text", "text", "text"],
    ),
    "insert_monitoring_metrics": (
        """
        INSERT INTO blink.monitoring_metrics (run_id, model_id, cohort_kind, cohort_start,
            cohort_end, metric, feature, compared_model_id, value, reference, sampling_error,
            lower_bound, upper_bound, critical_value, p_value, rows, status, detail)
        SELECT $1, r.model_id, r.cohort_kind, r.cohort_start, r.cohort_end, r.metric,
               r.feature, r.compared_model_id, r.value, r.reference, r.sampling_error,
               r.lower_bound, r.upper_bound, r.critical_value, r.p_value, r.rows, r.status,
               r.detail
        FROM jsonb_to_recordset($2::jsonb) AS r(model_id bigint, cohort_kind text,
            cohort_start timestamptz, cohort_end timestamptz, metric text, feature text,
            compared_model_id bigint, value float8, reference float8, sampling_error float8,
            lower_bound float8, upper_bound float8, critical_value float8, p_value float8,
            rows int, status text, detail jsonb)
        """,
        ["bigint", "text"],
    ),
    "insert_monitoring_event": (
        """
        INSERT INTO blink.monitoring_events (run_id, model_id, severity, rule, cohort_kind,
            cohort_start, message, detail)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb) RETURNING id
        """,
        ["bigint", "bigint", "text", "text", "text", "timestamptz", "text", "text"],
    ),
    "notify_monitoring": ("SELECT pg_notify('blink_monitoring', $1)", ["text"]),
    "insert_retrain_request": (
        """
        INSERT INTO blink.retrain_requests (run_id, model_id, rules, reason)
        VALUES ($1, $2, $3, $4) RETURNING id
        """,
        ["bigint", "bigint", "text[]", "text"],
    ),
    "insert_monitoring_action": (
        """
        INSERT INTO blink.monitoring_actions (run_id, action, rule, model_id, deployment_id,
            retrain_request_id, cited_run_ids, reason)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id
        """,
        ["bigint", "text", "text", "bigint", "bigint", "bigint", "bigint[]", "text"],
    ),
    "end_probation": (
        "DELETE FROM blink.blink_shadow_models WHERE model_id = $1 AND until IS NOT NULL",
        ["bigint"],
    ),
    # A shard of a sharded install receives its models from the model home (docs/scale-out.md).
    "is_shard": (
        """
        SELECT EXISTS (SELECT FROM pg_catalog.pg_subscription s
                       WHERE s.subname = 'blink_models' AND s.subdbid = (
                           SELECT d.oid FROM pg_catalog.pg_database d
                           WHERE d.datname = pg_catalog.current_database())) AS shard
        """,
        [],
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


def packed_values_sql(spec: FeatureSpec, row: str, *, safe: bool,
                      layout: str | None) -> tuple[str, str]:
    """Snapshot ``row``'s feature vector as packed big-endian float8s (bytea), missing as NaN.

    ``string_agg`` of these is the batch matrix in one bytea: PL/Python converts a float8[]
    element by element into Python floats, which costs more than the query itself. The
    stored vector serves when it was built for ``layout`` (the model's) and has its length
    (one of another length, written around the trigger, would shift every later row);
    otherwise the values are extracted from the JSON document, and the flag may send the row
    to Python.
    """
    values, flagged = value_exprs(spec, f"{row}.features", safe=safe)
    packed = " || ".join(f"float8send(coalesce({v}, 'NaN'::float8))" for v in values)
    if layout is None:
        return packed, flagged
    stored = (f"{row}.feature_layout = {sql_literal(layout)}::uuid"
              f" AND octet_length({row}.feature_vector) = {8 * len(spec)}")
    return (f"CASE WHEN {stored} THEN {row}.feature_vector ELSE {packed} END",
            f"(NOT coalesce({stored}, false) AND {flagged})")


def snapshots_by_id_sql(spec: FeatureSpec, *, safe: bool, layout: str | None = None) -> str:
    """Snapshots $1 (bigint[]) as packed rows, ascending id (snapshots.unpack_rows); flagged ids."""
    packed, flagged = packed_values_sql(spec, "s", safe=safe, layout=layout)
    return f"""
        SELECT string_agg(int8send(s.id) || {packed}, ''::bytea ORDER BY s.id) AS packed,
               array_agg(s.id) FILTER (WHERE {flagged}) AS bad
        FROM blink.feature_store_snapshots s WHERE s.id = ANY($1)
    """


def latest_snapshots_sql(spec: FeatureSpec, *, safe: bool, layout: str | None = None) -> str:
    """Latest snapshot of each user of $1 (text[]) as packed rows in input order, flagged ids.

    One aggregate, so one sort; a user without a snapshot is a row of id -1 and NaNs.
    """
    packed, flagged = packed_values_sql(spec, "s", safe=safe, layout=layout)
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
