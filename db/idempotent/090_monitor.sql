-- Monitoring and self-healing: blink_monitor_run, blink_retrain_request_done, and the views a
-- risk team or a dashboard reads (docs/monitoring.md).

CREATE OR REPLACE FUNCTION public.blink_monitor_run(
    as_of timestamptz DEFAULT now(),
    max_seconds double precision DEFAULT 120,
    recompute boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpython3u VOLATILE STRICT PARALLEL UNSAFE
SET search_path = blink, pg_catalog, pg_temp
AS $$
from pyfuncs import api
return api.monitor_run(plpy, GD, as_of, max_seconds, recompute)
$$;
COMMENT ON FUNCTION public.blink_monitor_run(timestamptz, double precision, boolean) IS
'One monitoring run (pg_cron runs it daily): measures every closed cohort not measured yet for the champion and each shadow (feature and score drift, estimated and realised performance, champion vs challenger on the same loans), records the figures, then alerts, requests retraining, promotes or rolls back as blink.monitoring_policy allows. Returns a JSON summary. as_of: the data to look at (a past time re-reads history); recompute: measure again cohorts already measured, record figures, take no action.';

CREATE OR REPLACE FUNCTION public.blink_retrain_request_done(
    request_id bigint, outcome text, model_id bigint DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
BEGIN
    IF request_id IS NULL OR outcome IS NULL OR outcome = '' THEN
        RAISE EXCEPTION 'blink: blink_retrain_request_done needs a request_id and an outcome'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM blink.retrain_requests r WHERE r.id = blink_retrain_request_done.request_id) THEN
        RAISE EXCEPTION 'blink: no retrain request with id %', blink_retrain_request_done.request_id
            USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO blink.retrain_request_results (request_id, model_id, outcome)
    VALUES (blink_retrain_request_done.request_id, blink_retrain_request_done.model_id,
            blink_retrain_request_done.outcome)
    ON CONFLICT DO NOTHING;
    RETURN FOUND;
END $$;
COMMENT ON FUNCTION public.blink_retrain_request_done(bigint, text, bigint) IS
'Record how a retrain request ended (the trainer''s --if-requested does): the model it built, if any, and the outcome (its promotion decision or error). Returns false when the request was already handled.';

CREATE OR REPLACE VIEW blink.pending_retrain_requests AS
SELECT r.id, r.requested_at, r.model_id, r.rules, r.reason, r.run_id
FROM blink.retrain_requests r
WHERE NOT EXISTS (SELECT FROM blink.retrain_request_results x WHERE x.request_id = r.id);
COMMENT ON VIEW blink.pending_retrain_requests IS
'Retrain requests no trainer has handled yet, oldest first by id.';

-- The newest figure per model, cohort and metric (a recomputed cohort shows its latest run).
CREATE OR REPLACE VIEW blink.monitoring_timeseries AS
SELECT DISTINCT ON (m.model_id, m.cohort_kind, m.cohort_start, m.metric, m.feature,
                    m.compared_model_id)
       m.cohort_start AS "time", m.cohort_end, m.cohort_kind, m.model_id, b.version,
       m.metric, m.feature, m.compared_model_id, m.value, m.reference, m.sampling_error,
       m.lower_bound, m.upper_bound, m.critical_value, m.p_value, m.rows, m.status,
       m.run_id
FROM blink.monitoring_metrics m
JOIN blink.blink_models b ON b.id = m.model_id
ORDER BY m.model_id, m.cohort_kind, m.cohort_start, m.metric, m.feature, m.compared_model_id,
         m.run_id DESC;
COMMENT ON VIEW blink.monitoring_timeseries IS
'One row per model, cohort, metric and feature: the newest figure, with its reference, sampling error, bounds and status. Shaped for a dashboard (time = cohort start).';

-- Current state of each live model: the latest measured cohorts and what is open. The
-- champion is read from the table (the newest deployment), not through blink.champion(),
-- so the view's privileges are enough for the app role.
CREATE OR REPLACE VIEW blink.monitoring_status AS
WITH champion AS (
    SELECT d.model_id, d.deployed_at FROM blink.blink_deployments d ORDER BY d.id DESC LIMIT 1
), live AS (
    SELECT c.model_id, 'champion'::text AS role, c.deployed_at AS since, NULL::timestamptz AS until
    FROM champion c
    UNION ALL
    SELECT s.model_id, CASE WHEN s.until IS NULL THEN 'shadow' ELSE 'probation' END,
           s.added_at, s.until
    FROM blink.blink_shadow_models s
    WHERE s.model_id IS DISTINCT FROM (SELECT c.model_id FROM champion c)
), latest AS (
    SELECT t.model_id, t.cohort_kind, max(t."time") AS cohort_start
    FROM blink.monitoring_timeseries t GROUP BY t.model_id, t.cohort_kind
)
SELECT l.model_id, b.version, l.role, l.since, l.until,
       b.monitoring_reference IS NOT NULL AS has_reference,
       li.cohort_start AS inputs_cohort, i.inputs_insufficient, i.drifting_features,
       i.score_psi, i.score_psi_critical, i.approval_rate, i.estimated_auc,
       lo.cohort_start AS outcomes_cohort, o.realised_auc, o.realised_auc_lower_bound,
       o.auc_gain_vs_champion,
       (SELECT count(*) FROM blink.monitoring_events e WHERE e.model_id = l.model_id
          AND e.severity = 'alert' AND e.created_at > now() - interval '7 days') AS alerts_7_days,
       (SELECT max(r.finished_at) FROM blink.monitoring_runs r) AS last_run_at,
       EXISTS (SELECT FROM blink.pending_retrain_requests p WHERE p.model_id = l.model_id)
           AS retrain_requested
FROM live l
JOIN blink.blink_models b ON b.id = l.model_id
LEFT JOIN latest li ON li.model_id = l.model_id AND li.cohort_kind = 'inputs'
LEFT JOIN latest lo ON lo.model_id = l.model_id AND lo.cohort_kind = 'outcomes'
-- Each cohort's figures in one pass: one row per metric (and feature) of the latest cohort.
LEFT JOIN LATERAL (
    SELECT bool_or(t.status = 'insufficient_data') FILTER (WHERE t.metric = 'rows')
               AS inputs_insufficient,
           array_agg(DISTINCT t.feature ORDER BY t.feature) FILTER (
               WHERE t.metric IN ('feature_psi', 'feature_missing_rate')
                 AND t.status = 'breach') AS drifting_features,
           max(t.value) FILTER (WHERE t.metric = 'score_psi') AS score_psi,
           max(t.critical_value) FILTER (WHERE t.metric = 'score_psi') AS score_psi_critical,
           max(t.value) FILTER (WHERE t.metric = 'approval_rate') AS approval_rate,
           max(t.value) FILTER (WHERE t.metric = 'estimated_auc') AS estimated_auc
    FROM blink.monitoring_timeseries t
    WHERE t.model_id = l.model_id AND t.cohort_kind = 'inputs' AND t."time" = li.cohort_start
) i ON true
LEFT JOIN LATERAL (
    SELECT max(t.value) FILTER (WHERE t.metric = 'realised_auc') AS realised_auc,
           max(t.lower_bound) FILTER (WHERE t.metric = 'realised_auc')
               AS realised_auc_lower_bound,
           max(t.value) FILTER (WHERE t.metric = 'auc_gain') AS auc_gain_vs_champion
    FROM blink.monitoring_timeseries t
    WHERE t.model_id = l.model_id AND t.cohort_kind = 'outcomes' AND t."time" = lo.cohort_start
) o ON true;
COMMENT ON VIEW blink.monitoring_status IS
'One row per live model (champion, shadows, the previous champion on probation): its latest measured inputs and outcomes cohorts, drifting features, score stability, estimated and realised AUC, alerts of the last 7 days and whether retraining is requested.';

-- Everything that happened, on one timeline: monitoring events and champion changes.
CREATE OR REPLACE VIEW blink.monitoring_timeline AS
SELECT e.created_at AS "time", e.severity, e.rule, e.model_id, e.message, e.run_id,
       NULL::bigint AS deployment_id
FROM blink.monitoring_events e
UNION ALL
SELECT d.deployed_at, 'deployment', d.action, d.model_id, d.reason, NULL, d.id
FROM blink.blink_deployments d;
COMMENT ON VIEW blink.monitoring_timeline IS
'Monitoring events (info, alert, action) and every promotion and rollback, for a dashboard''s annotations; order by time.';
