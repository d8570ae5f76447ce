-- Scheduled rescoring and monitoring with pg_cron: blink_schedule, blink_unschedule.

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

-- This database's rescoring jobs: one, or one per worker (blink_rescore_pending's worker,
-- 0 .. workers - 1). rescore_jobs_condition finds them all in cron.job, of any split, in
-- SQL run in pg_cron's database (which need not have blink): its pattern matches these names.
CREATE OR REPLACE FUNCTION blink.rescore_job_name(db text, worker integer, workers integer)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT CASE WHEN workers = 1 THEN 'blink-rescore/' || db
                  ELSE pg_catalog.format('blink-rescore-%s-of-%s/%s', worker, workers, db) END $$;
COMMENT ON FUNCTION blink.rescore_job_name(text, integer, integer) IS
'Internal: the pg_cron job name of database db''s rescoring by worker of workers (blink-rescore/db when workers = 1).';

CREATE OR REPLACE FUNCTION blink.rescore_jobs_condition(db text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT pg_catalog.format(
    '(jobname ~ %L AND substr(jobname, strpos(jobname, ''/'') + 1) = %L)',
    '^blink-rescore(-[0-9]+-of-[0-9]+)?/', db) $$;
COMMENT ON FUNCTION blink.rescore_jobs_condition(text) IS
'Internal: an SQL condition on cron.job true for every rescoring job of database db (blink.rescore_job_name), whatever its number of workers.';

CREATE OR REPLACE FUNCTION public.blink_schedule(
    schedule text DEFAULT '*/5 * * * *',
    max_users integer DEFAULT 200000,
    max_seconds double precision DEFAULT 240,
    keep_history interval DEFAULT '7 days',
    monitor_schedule text DEFAULT '41 2 * * *',
    rescore_workers integer DEFAULT 1)
RETURNS TABLE (job_name text, job_id bigint, job_schedule text, command text, cron_database text)
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    here text := current_database();
    cron_db text := current_setting('cron.database_name', true);
    rescore_names text[];
    trim_name text := 'blink-trim-history/' || here;
    monitor_name text := 'blink-monitor/' || here;
    refresh_name text := 'blink-refresh-vectors/' || here;
    refresh_cmd text := 'SELECT public.blink_refresh_feature_vectors()';
    monitor_cmd text := 'SELECT public.blink_monitor_run()';
    trim_cmd text;
BEGIN
    PERFORM blink.check_rescore_limits(max_users, max_seconds, rescore_workers);
    IF keep_history < interval '1 hour' THEN
        RAISE EXCEPTION 'blink: keep_history must be at least 1 hour, got %', keep_history
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- pg_cron in this very database (a single-database cluster, the demo): set it up here.
    IF cron_db = here AND NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        CREATE EXTENSION pg_cron;
    END IF;
    trim_cmd := format('DELETE FROM cron.job_run_details WHERE end_time < now() - interval %L',
                       keep_history);
    cron_database := cron_db;
    -- Rescoring: one job, or one per worker, each its own session on the same schedule.
    -- Jobs of another number of workers go first; cron.schedule_in_database replaces a job
    -- of the same name and user: safe to call again.
    rescore_names := ARRAY(SELECT blink.rescore_job_name(here, k, rescore_workers)
                           FROM generate_series(0, rescore_workers - 1) AS k);
    PERFORM blink.cron_query(format(
        'SELECT jobid FROM (SELECT jobid, cron.unschedule(jobid) AS done FROM cron.job '
        'WHERE %s AND jobname <> ALL (%L::text[])) j WHERE done',
        blink.rescore_jobs_condition(here), rescore_names));
    FOR w IN 0 .. rescore_workers - 1 LOOP
        job_name := rescore_names[w + 1]; job_schedule := schedule;
        command := format('SELECT public.blink_rescore_pending(max_users => %s, max_seconds => %s%s)',
                          max_users, max_seconds,
                          CASE WHEN rescore_workers > 1
                               THEN format(', worker => %s, workers => %s', w, rescore_workers)
                               ELSE '' END);
        SELECT v INTO job_id FROM blink.cron_query(format(
            'SELECT cron.schedule_in_database(%L, %L, %L, %L)',
            job_name, schedule, command, here)) AS v;
        RETURN NEXT;
    END LOOP;
    job_name := trim_name; job_schedule := '17 3 * * *'; command := trim_cmd;
    SELECT v INTO job_id FROM blink.cron_query(format(
        'SELECT cron.schedule_in_database(%L, %L, %L, %L)',
        trim_name, '17 3 * * *', trim_cmd, cron_db)) AS v;
    RETURN NEXT;
    job_name := monitor_name; job_schedule := monitor_schedule; command := monitor_cmd;
    SELECT v INTO job_id FROM blink.cron_query(format(
        'SELECT cron.schedule_in_database(%L, %L, %L, %L)',
        monitor_name, monitor_schedule, monitor_cmd, here)) AS v;
    RETURN NEXT;
    -- Stored vectors for a new champion's layout, a bounded batch per run (a no-op once done).
    job_name := refresh_name; job_schedule := schedule; command := refresh_cmd;
    SELECT v INTO job_id FROM blink.cron_query(format(
        'SELECT cron.schedule_in_database(%L, %L, %L, %L)',
        refresh_name, schedule, refresh_cmd, here)) AS v;
    RETURN NEXT;
END $$;
COMMENT ON FUNCTION public.blink_schedule(text, integer, double precision, interval, text, integer) IS
'Install (or update) the pg_cron jobs of this database: blink_rescore_pending (one job, or one per worker with rescore_workers > 1: as many sessions and cores at once) and blink_refresh_feature_vectors on schedule (default every 5 minutes), blink_monitor_run on monitor_schedule (default daily at 02:41), and a daily trim of cron.job_run_details older than keep_history. Run as a superuser. Creates pg_cron when cron.database_name is this database; when it is another one, pg_cron must already be created there and dblink is used to reach it.';

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
        'WHERE %s OR jobname IN (%L, %L, %L)) j WHERE done',
        blink.rescore_jobs_condition(current_database()), 'blink-trim-history/' || current_database(),
        'blink-monitor/' || current_database(), 'blink-refresh-vectors/' || current_database()));
    RETURN removed;
END $$;
COMMENT ON FUNCTION public.blink_unschedule() IS
'Remove this database''s blink pg_cron jobs (rescoring, every worker''s, vector refresh, monitoring and history trim); returns how many were removed.';
