-- Undo 0003_rescoring. This database's pg_cron jobs would fail once blink is gone; blink's
-- API (and so blink_unschedule) is already dropped here, so remove them by name if we can.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        PERFORM cron.unschedule(jobid) FROM cron.job
        WHERE jobname IN ('blink-rescore/' || current_database(),
                          'blink-trim-history/' || current_database());
    END IF;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'blink: pg_cron jobs not removed (%); check cron.job', SQLERRM;
END $$;
DROP TABLE blink.blink_shadow_models;
DROP TABLE blink.reason_codes;
-- Only the dblink this migration created (in schema blink); one installed elsewhere stays.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
               WHERE e.extname = 'dblink' AND n.nspname = 'blink') THEN
        DROP EXTENSION dblink;
    END IF;
END $$;
