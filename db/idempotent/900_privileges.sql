-- Privileges of every function and view of the idempotent layer. Applied last, so every
-- object exists. Nothing blink defines is executable by PUBLIC; each role gets what it needs.

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
             WHERE (p.pronamespace = 'blink'::regnamespace
                    OR p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'blink\_%')
               AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                               WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                                 AND d.deptype = 'e')
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END $$;

-- blink_score is inlined into its caller's query, so its callers execute what it calls.
-- (blink_score_batch is C or SECURITY DEFINER itself: its callers need it alone.)
GRANT EXECUTE ON FUNCTION blink.score_native(text), blink.score_user(text)
    TO blink_app, blink_trainer;

-- Applications (blink_app): score, decide, explain, and read decisions.
GRANT EXECUTE ON FUNCTION public.blink_score(text), public.blink_score_features(jsonb),
    public.blink_decide(text), public.blink_champion(), public.blink_explain(text),
    public.blink_score_batch(text[])
    TO blink_app;
GRANT SELECT ON blink.current_decisions TO blink_app;
-- Monitoring as it bears on decisions: the live models' status, what happened, and when.
GRANT SELECT ON blink.monitoring_status, blink.monitoring_timeline TO blink_app;

-- The trainer (blink_trainer): the same reads, the shared lookups for its own queries,
-- model deployment and shadows, and the history.
GRANT EXECUTE ON FUNCTION public.blink_score(text), public.blink_score_features(jsonb),
    public.blink_decide(text), public.blink_champion(),
    public.blink_promote(bigint, text, jsonb), public.blink_rollback(text),
    public.blink_shadow_add(bigint, text), public.blink_shadow_remove(bigint),
    blink.champion(), blink.latest_snapshot(text, timestamptz), blink.latest_snapshots(),
    public.blink_retrain_request_done(bigint, text, bigint),
    public.blink_refresh_feature_vectors(integer)
    TO blink_trainer;
GRANT SELECT ON blink.current_decisions, blink.blink_deployment_history,
    blink.pending_retrain_requests, blink.monitoring_timeseries, blink.monitoring_status,
    blink.monitoring_timeline TO blink_trainer;

-- The owner alone (a superuser): blink_rescore_pending and blink_monitor_run (pg_cron runs
-- them), blink_schedule, blink_unschedule and the internal functions.
