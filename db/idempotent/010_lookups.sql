-- The two rules every query shares: which model is the champion, and which snapshot is a
-- user's latest. Every query in db/, pyfuncs and the trainer reads them through these.
-- LANGUAGE sql, STABLE, no SET, not SECURITY DEFINER: the planner inlines them into the
-- calling query, so they cost nothing (a SET would stop that); names are schema-qualified.

CREATE OR REPLACE FUNCTION blink.champion()
RETURNS SETOF blink.blink_deployments
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT d.* FROM blink.blink_deployments d ORDER BY d.id DESC LIMIT 1
$$;
COMMENT ON FUNCTION blink.champion() IS
'The deployment that made the current champion (its model_id is the champion): the newest row of blink.blink_deployments. No row before the first promotion.';

CREATE OR REPLACE FUNCTION blink.latest_snapshot(user_id text, before timestamptz DEFAULT NULL)
RETURNS SETOF blink.feature_store_snapshots
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT f.* FROM blink.feature_store_snapshots f
    WHERE f.user_id = latest_snapshot.user_id
      AND (latest_snapshot.before IS NULL OR f.snapshot_at < latest_snapshot.before)
    ORDER BY f.snapshot_at DESC, f.id DESC
    LIMIT 1
$$;
COMMENT ON FUNCTION blink.latest_snapshot(text, timestamptz) IS
'A user''s latest snapshot (by snapshot_at, then id), or the latest taken strictly before "before" (the trainer''s point-in-time rule). One index descent.';

CREATE OR REPLACE FUNCTION blink.latest_snapshots()
RETURNS SETOF blink.feature_store_snapshots
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT l.* FROM (SELECT DISTINCT f.user_id FROM blink.feature_store_snapshots f) u
    CROSS JOIN LATERAL blink.latest_snapshot(u.user_id) l
$$;
COMMENT ON FUNCTION blink.latest_snapshots() IS
'Every user''s latest snapshot (blink.latest_snapshot of each user).';

-- A model's decision policy as pyfuncs.decision.DecisionPolicy reads it: the threshold, and
-- the risk bands as two arrays in the model's order (vetting checked them).
CREATE OR REPLACE FUNCTION blink.model_policy(model_id bigint, OUT decision_threshold double precision,
                                              OUT band_bounds double precision[], OUT band_names text[])
RETURNS SETOF record
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT m.decision_threshold,
           ARRAY(SELECT (b.value -> 'max_probability')::pg_catalog.float8
                 FROM pg_catalog.jsonb_array_elements(m.risk_bands) WITH ORDINALITY b
                 ORDER BY b.ordinality),
           ARRAY(SELECT b.value ->> 'band'
                 FROM pg_catalog.jsonb_array_elements(m.risk_bands) WITH ORDINALITY b
                 ORDER BY b.ordinality)
    FROM blink.blink_models m WHERE m.id = model_policy.model_id
$$;
COMMENT ON FUNCTION blink.model_policy(bigint) IS
'A model''s decision policy: decline at or above decision_threshold; risk band = the first whose bound is >= the probability, else the last. No row for an unknown model.';

-- The champion again, as constants for blink_score: reading blink_deployments in every
-- call's query costs an executor node (~10 µs of a ~50 µs score). Functions whose body is a
-- literal are inlined and folded into the caller's cached plan, and redefining them
-- invalidates every session's plans that folded them, as any DDL does. The trigger
-- blink_deployments_champion (db/incremental/0011) redefines them from blink.champion()
-- after every deployment, in the deploying transaction; they are never edited by hand.
-- The library's name is the file pyfuncs.library_files writes for it (DIRECTORY/<database
-- oid>/<sha256>.so), relative to the data directory, where blink_native opens it
-- (tests/db/test_native.py checks the two names agree). Its policy's numbers are written
-- with extra_float_digits = 1, the shortest text that reads back as the same float8.
CREATE OR REPLACE FUNCTION blink.define_champion_constants()
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET extra_float_digits = 1
AS $$
DECLARE
    model_id bigint;
    layout uuid;
    library text;
    policy record;
BEGIN
    SELECT c.model_id, c.feature_layout,
           (SELECT 'blink_libraries/' || d.oid || '/' || v.compiled_lib_sha256 || '.so'
            FROM blink.vetted_models v, pg_catalog.pg_database d
            WHERE v.model_id = c.model_id AND d.datname = pg_catalog.current_database())
    INTO model_id, layout, library FROM blink.champion() c;
    SELECT * INTO policy FROM blink.model_policy(model_id);
    EXECUTE format('CREATE OR REPLACE FUNCTION blink.champion_model_id() RETURNS bigint '
                   'LANGUAGE sql STABLE PARALLEL SAFE AS %L',
                   format('SELECT %s::pg_catalog.int8', coalesce(model_id::text, 'NULL')));
    EXECUTE format('CREATE OR REPLACE FUNCTION blink.champion_layout() RETURNS uuid '
                   'LANGUAGE sql STABLE PARALLEL SAFE AS %L',
                   format('SELECT %s::pg_catalog.uuid', coalesce(quote_literal(layout), 'NULL')));
    EXECUTE format('CREATE OR REPLACE FUNCTION blink.champion_library() RETURNS text '
                   'LANGUAGE sql STABLE PARALLEL SAFE AS %L',
                   format('SELECT %s::pg_catalog.text', coalesce(quote_literal(library), 'NULL')));
    EXECUTE format('CREATE OR REPLACE FUNCTION blink.champion_policy(OUT decision_threshold '
                   'pg_catalog.float8, OUT band_bounds pg_catalog.float8[], OUT band_names '
                   'pg_catalog.text[]) LANGUAGE sql STABLE PARALLEL SAFE AS %L',
                   format('SELECT %L::pg_catalog.float8, %L::pg_catalog.float8[], %L::pg_catalog.text[]',
                          policy.decision_threshold, policy.band_bounds, policy.band_names));
    COMMENT ON FUNCTION blink.champion_model_id() IS
    'The champion''s model id as a constant (blink.champion().model_id; NULL before the first promotion), for blink_score''s plan. Redefined by blink.define_champion_constants.';
    COMMENT ON FUNCTION blink.champion_layout() IS
    'The champion''s feature layout as a constant (blink.champion().feature_layout), for blink_score''s plan. Redefined by blink.define_champion_constants.';
    COMMENT ON FUNCTION blink.champion_library() IS
    'The file of the champion''s vetted library, relative to the data directory (blink_libraries/<database oid>/<sha256>.so), as a constant for blink_score''s plan. Redefined by blink.define_champion_constants.';
    COMMENT ON FUNCTION blink.champion_policy() IS
    'The champion''s decision policy (blink.model_policy) as constants, for blink_score_batch in C. Redefined by blink.define_champion_constants.';
END
$$;
COMMENT ON FUNCTION blink.define_champion_constants() IS
'Redefines blink.champion_model_id(), blink.champion_layout(), blink.champion_library() and blink.champion_policy() from blink.champion(); run by the trigger on blink.blink_deployments and by every upgrade.';

SELECT blink.define_champion_constants();
