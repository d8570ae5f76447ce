-- Rescoring, reason codes, shadow models, batch scoring and the pg_cron schedule.
-- Safe to apply again: CREATE OR REPLACE only. Tables live in migration 0003_rescoring.

-- A jsonb feature value as float8, NULL when missing or when SQL cannot convert it exactly
-- (not a number, or beyond +-1e300 / below 1e-300 in magnitude: pyfuncs converts those rows).
-- No SET search_path here on purpose: it would stop the planner from inlining the function,
-- which runs once per feature value; every name is schema-qualified instead.
CREATE OR REPLACE FUNCTION blink.feature_number(value jsonb)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN pg_catalog.jsonb_typeof(value) = 'number' THEN
        CASE WHEN pg_catalog.abs(value::pg_catalog.numeric) BETWEEN 1e-300 AND 1e300
                  OR value::pg_catalog.numeric = 0
             THEN value::pg_catalog.float8 END
    END
$$;
COMMENT ON FUNCTION blink.feature_number(jsonb) IS
'A feature value of a snapshot as float8 for batch scoring; NULL when missing or not convertible in SQL (the batch path then converts that snapshot in Python, like blink_score).';

CREATE OR REPLACE FUNCTION public.blink_rescore_pending(
    max_users integer DEFAULT 200000,
    max_seconds double precision DEFAULT 240,
    batch_size integer DEFAULT 500)
RETURNS jsonb
LANGUAGE plpython3u VOLATILE STRICT PARALLEL UNSAFE
SET search_path = blink, pg_catalog, pg_temp
AS $$
from pyfuncs import api
return api.rescore_pending(plpy, GD, max_users, max_seconds, batch_size)
$$;
COMMENT ON FUNCTION public.blink_rescore_pending(integer, double precision, integer) IS
'One rescoring run: audits (with SHAP reason codes) every user whose latest snapshot has no audit by the champion, then by each shadow model, in batches. Returns a JSON summary. Returns at once when another run holds the lock; starts no batch after max_seconds; at most max_users per model. One transaction: if killed, nothing is kept and the next run redoes it.';

CREATE OR REPLACE FUNCTION public.blink_explain(user_id text)
RETURNS TABLE (
    rank integer,
    reason_code text,
    reason_text text,
    feature_name text,
    feature_value double precision,
    shap_value double precision,
    probability_default double precision,
    decision text,
    model_id bigint,
    snapshot_id bigint,
    source text,
    scored_at timestamptz
)
LANGUAGE plpython3u VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
from pyfuncs import api
return api.explain(plpy, GD, user_id)
$$;
COMMENT ON FUNCTION public.blink_explain(text) IS
'The top 4 reasons (features pushing hardest towards default, exact TreeSHAP, texts from blink.reason_codes) behind the champion''s score of the user''s latest snapshot. Reuses the stored audit of (snapshot, champion); otherwise computes it and stores it with source on-demand. No rows when the user has no snapshot.';

-- Internal half of blink_score_batch: the scores as arrays aligned with user_ids.
CREATE OR REPLACE FUNCTION blink.score_batch_arrays(
    user_ids text[],
    OUT model_id bigint,
    OUT probabilities double precision[],
    OUT decisions text[],
    OUT bands text[],
    OUT snapshot_ids bigint[],
    OUT snapshot_epochs double precision[]
)
LANGUAGE plpython3u STABLE STRICT PARALLEL UNSAFE
SET search_path = blink, pg_catalog, pg_temp
AS $$
from pyfuncs import api
return api.score_batch(plpy, GD, user_ids)
$$;
COMMENT ON FUNCTION blink.score_batch_arrays(text[]) IS
'Internal: champion scores of user_ids as arrays aligned with the input (NULLs without a snapshot). Called by blink_score_batch.';
REVOKE ALL ON FUNCTION blink.score_batch_arrays(text[]) FROM PUBLIC;

-- Python returns arrays and SQL unnests them: far cheaper than a PL/Python row per user.
CREATE OR REPLACE FUNCTION public.blink_score_batch(user_ids text[])
RETURNS TABLE (
    user_id text,
    probability_default double precision,
    decision text,
    risk_band text,
    model_id bigint,
    snapshot_id bigint,
    snapshot_at timestamptz
)
LANGUAGE sql STABLE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
    SELECT u.user_id, u.probability, u.decision, u.band, r.model_id, u.snapshot_id,
           to_timestamp(u.epoch)
    FROM blink.score_batch_arrays(user_ids) AS r,
         unnest(user_ids, r.probabilities, r.decisions, r.bands, r.snapshot_ids,
                r.snapshot_epochs) WITH ORDINALITY
             AS u(user_id, probability, decision, band, snapshot_id, epoch, ord)
    ORDER BY u.ord
$$;
COMMENT ON FUNCTION public.blink_score_batch(text[]) IS
'Champion scores of many users in one call (one fetch, one compiled-predict call): one row per array element, in order; NULL probability/decision when the user has no snapshot. Writes no audit.';

CREATE OR REPLACE FUNCTION public.blink_shadow_add(model_id bigint, reason text DEFAULT 'shadow scoring')
RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM blink.blink_models m WHERE m.id = blink_shadow_add.model_id) THEN
        RAISE EXCEPTION 'blink: no model with id % in blink.blink_models', blink_shadow_add.model_id
            USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO blink.blink_shadow_models (model_id, reason)
    VALUES (blink_shadow_add.model_id, blink_shadow_add.reason)
    ON CONFLICT DO NOTHING;
    RETURN FOUND;
END $$;
COMMENT ON FUNCTION public.blink_shadow_add(bigint, text) IS
'Mark a model as shadow: rescoring also audits its scores (source shadow) without changing any decision. Returns false when it already was.';

CREATE OR REPLACE FUNCTION public.blink_shadow_remove(model_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM blink.blink_shadow_models s WHERE s.model_id = blink_shadow_remove.model_id;
    RETURN FOUND;
END $$;
COMMENT ON FUNCTION public.blink_shadow_remove(bigint) IS
'Stop shadow scoring of a model (its audits stay). Returns false when it was not a shadow.';

-- The decision of record: each user's latest snapshot as audited by the current champion.
CREATE OR REPLACE VIEW blink.current_decisions AS
SELECT a.user_id, a.probability_default, a.decision, a.risk_band, a.reasons, a.model_id,
       a.snapshot_id, a.snapshot_at, a.source, a.scored_at
FROM (SELECT DISTINCT ON (s.user_id) s.id FROM blink.feature_store_snapshots s
      ORDER BY s.user_id, s.snapshot_at DESC, s.id DESC) l
JOIN blink.risk_score_audits a ON a.snapshot_id = l.id
WHERE a.model_id = (SELECT d.model_id FROM blink.blink_deployments d ORDER BY d.id DESC LIMIT 1);
COMMENT ON VIEW blink.current_decisions IS
'Each user''s decision of record: the audit of the latest snapshot by the current champion (users not yet rescored are absent). Shadow rows never appear here while their model is not champion.';

-- pg_cron. Its tables live in one database per cluster (cron.database_name). Jobs for this
-- database are created there with cron.schedule_in_database: directly when that is this
-- database, through dblink otherwise (as the calling superuser, over the local socket).
CREATE OR REPLACE FUNCTION blink.cron_query(query text)
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cron_db text := current_setting('cron.database_name', true);
    dblink_schema text;
    socket text := trim(split_part(current_setting('unix_socket_directories'), ',', 1));
    conn text;
BEGIN
    IF cron_db IS NULL THEN
        RAISE EXCEPTION 'blink: pg_cron is not loaded in this server'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name, restart, then CREATE EXTENSION pg_cron in that database.';
    END IF;
    IF cron_db = current_database() THEN
        IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
            RAISE EXCEPTION 'blink: pg_cron is loaded but not created in database %', cron_db
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Run CREATE EXTENSION pg_cron; in this database as a superuser.';
        END IF;
        RETURN QUERY EXECUTE query;
        RETURN;
    END IF;
    SELECT n.nspname INTO dblink_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'dblink';
    IF dblink_schema IS NULL THEN
        RAISE EXCEPTION 'blink: pg_cron lives in database %, which blink reaches through dblink, not installed here', cron_db
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('CREATE EXTENSION dblink; in this database, or run in database %s: %s', cron_db, query);
    END IF;
    conn := format('dbname=%s user=%s port=%s host=%s',
        blink.conninfo_quote(cron_db), blink.conninfo_quote(current_user),
        current_setting('port'),
        blink.conninfo_quote(CASE WHEN socket <> '' THEN socket ELSE '127.0.0.1' END));
    RETURN QUERY EXECUTE format('SELECT v FROM %I.dblink($1, $2) AS t(v bigint)', dblink_schema)
        USING conn, query;
END $$;
COMMENT ON FUNCTION blink.cron_query(text) IS
'Run a query returning one bigint column in pg_cron''s database (this one, or through dblink as the current superuser). Used by blink_schedule/blink_unschedule.';

CREATE OR REPLACE FUNCTION blink.conninfo_quote(value text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT '''' || replace(replace(value, '\', '\\'), '''', '\''') || '''' $$;
COMMENT ON FUNCTION blink.conninfo_quote(text) IS 'Quote a libpq connection-string value.';

CREATE OR REPLACE FUNCTION public.blink_schedule(
    schedule text DEFAULT '*/5 * * * *',
    max_users integer DEFAULT 200000,
    max_seconds double precision DEFAULT 240,
    keep_history interval DEFAULT '7 days')
RETURNS TABLE (job_name text, job_id bigint, job_schedule text, command text, cron_database text)
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    here text := current_database();
    cron_db text := current_setting('cron.database_name', true);
    rescore_name text := 'blink-rescore/' || here;
    trim_name text := 'blink-trim-history/' || here;
    rescore_cmd text;
    trim_cmd text;
BEGIN
    IF max_users < 1 OR NOT max_seconds > 0 THEN
        RAISE EXCEPTION 'blink: max_users and max_seconds must be positive, got % and %',
            max_users, max_seconds USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF keep_history < interval '1 hour' THEN
        RAISE EXCEPTION 'blink: keep_history must be at least 1 hour, got %', keep_history
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- pg_cron in this very database (a single-database cluster, the demo): set it up here.
    IF cron_db = here AND NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        CREATE EXTENSION pg_cron;
    END IF;
    rescore_cmd := format('SELECT public.blink_rescore_pending(max_users => %s, max_seconds => %s)',
                          max_users, max_seconds);
    trim_cmd := format('DELETE FROM cron.job_run_details WHERE end_time < now() - interval %L',
                       keep_history);
    -- cron.schedule_in_database replaces a job of the same name and user: safe to call again.
    job_name := rescore_name; job_schedule := schedule; command := rescore_cmd;
    cron_database := cron_db;
    SELECT v INTO job_id FROM blink.cron_query(format(
        'SELECT cron.schedule_in_database(%L, %L, %L, %L)',
        rescore_name, schedule, rescore_cmd, here)) AS v;
    RETURN NEXT;
    job_name := trim_name; job_schedule := '17 3 * * *'; command := trim_cmd;
    SELECT v INTO job_id FROM blink.cron_query(format(
        'SELECT cron.schedule_in_database(%L, %L, %L, %L)',
        trim_name, '17 3 * * *', trim_cmd, cron_db)) AS v;
    RETURN NEXT;
END $$;
COMMENT ON FUNCTION public.blink_schedule(text, integer, double precision, interval) IS
'Install (or update) the pg_cron jobs of this database: blink_rescore_pending on schedule (default every 5 minutes), and a daily trim of cron.job_run_details older than keep_history. Run as a superuser. Creates pg_cron when cron.database_name is this database; when it is another one, pg_cron must already be created there and dblink is used to reach it.';

CREATE OR REPLACE FUNCTION public.blink_unschedule()
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    removed integer;
BEGIN
    SELECT count(*) INTO removed FROM blink.cron_query(format(
        'SELECT jobid FROM (SELECT jobid, cron.unschedule(jobid) AS done FROM cron.job '
        'WHERE jobname IN (%L, %L)) j WHERE done',
        'blink-rescore/' || current_database(), 'blink-trim-history/' || current_database()));
    RETURN removed;
END $$;
COMMENT ON FUNCTION public.blink_unschedule() IS
'Remove this database''s blink pg_cron jobs (rescoring and history trim); returns how many were removed.';

REVOKE ALL ON FUNCTION public.blink_rescore_pending(integer, double precision, integer),
    public.blink_explain(text), public.blink_score_batch(text[]),
    public.blink_shadow_add(bigint, text), public.blink_shadow_remove(bigint),
    public.blink_schedule(text, integer, double precision, interval), public.blink_unschedule(),
    blink.cron_query(text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.blink_explain(text), public.blink_score_batch(text[])
    TO blink_app;
GRANT EXECUTE ON FUNCTION public.blink_shadow_add(bigint, text), public.blink_shadow_remove(bigint)
    TO blink_trainer;
GRANT SELECT ON blink.current_decisions TO blink_app, blink_trainer;
