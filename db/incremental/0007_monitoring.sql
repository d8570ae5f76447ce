-- 0007_monitoring: the monitoring reference frozen with each model, the owner's monitoring
-- policy, and the append-only history of monitoring runs, metrics, events, retrain requests
-- and automatic actions (docs/monitoring.md).
-- Released: never edit (db/incremental/frozen.txt); change state in a new numbered file.

-- What the model saw on its out-of-time window, written by the trainer with the model and
-- checked by the insert trigger: per-feature bin edges, proportions and missing rate, the
-- score distribution, approval rate and band mix, and the realised performance there.
ALTER TABLE blink.blink_models ADD COLUMN monitoring_reference jsonb
    CHECK (jsonb_typeof(monitoring_reference) = 'object');
COMMENT ON COLUMN blink.blink_models.monitoring_reference IS
    'Monitoring reference from the model''s out-of-time window (never training rows): features'' bins, proportions and missing rates, the score distribution, approval rate and band mix, realised ROC AUC with its sampling error. NULL: monitoring measures performance only.';
GRANT INSERT (monitoring_reference) ON blink.blink_models TO blink_trainer;

-- A shadow may be temporary: after a promotion the previous champion scores in shadow until
-- the probation ends, so monitoring can roll back to it if it turns out better.
ALTER TABLE blink.blink_shadow_models ADD COLUMN until timestamptz;
COMMENT ON COLUMN blink.blink_shadow_models.until IS
    'End of a probation shadow (the champion before the last promotion); monitoring removes it then. NULL: until removed.';

-- The owner's policy: one row, edited with UPDATE; every edit is kept in the history table.
CREATE TABLE blink.monitoring_policy (
    id                      boolean PRIMARY KEY DEFAULT true CHECK (id),
    mode                    text NOT NULL DEFAULT 'alert' CHECK (mode IN ('off', 'alert', 'auto')),
    kill_switch             boolean NOT NULL DEFAULT false,
    cohort                  interval NOT NULL DEFAULT '7 days' CHECK (cohort >= interval '1 hour'),
    grace                   interval NOT NULL DEFAULT '30 days' CHECK (grace >= interval '0'),
    lookback                interval NOT NULL DEFAULT '182 days' CHECK (lookback > interval '0'),
    max_cohorts_per_run     integer NOT NULL DEFAULT 8 CHECK (max_cohorts_per_run >= 1),
    drift_fdr               double precision NOT NULL DEFAULT 0.001 CHECK (drift_fdr > 0 AND drift_fdr < 0.5),
    drift_share             double precision NOT NULL DEFAULT 0.3 CHECK (drift_share > 0 AND drift_share <= 1),
    score_alpha             double precision NOT NULL DEFAULT 0.001 CHECK (score_alpha > 0 AND score_alpha < 0.5),
    alert_alpha             double precision NOT NULL DEFAULT 0.001 CHECK (alert_alpha > 0 AND alert_alpha < 0.5),
    detectable_psi          double precision NOT NULL DEFAULT 0.1 CHECK (detectable_psi > 0),
    max_auc_standard_error  double precision NOT NULL DEFAULT 0.04 CHECK (max_auc_standard_error > 0),
    performance_z           double precision NOT NULL DEFAULT 3 CHECK (performance_z > 0),
    alert_z                 double precision NOT NULL DEFAULT 2 CHECK (alert_z > 0),
    consecutive_breaches    integer NOT NULL DEFAULT 2 CHECK (consecutive_breaches >= 1),
    min_auc_gain            double precision NOT NULL DEFAULT 0.005 CHECK (min_auc_gain >= 0),
    calibration_tolerance   double precision NOT NULL DEFAULT 0.01 CHECK (calibration_tolerance >= 0),
    confidence_z            double precision NOT NULL DEFAULT 1.645 CHECK (confidence_z > 0),
    promote_after           integer NOT NULL DEFAULT 2 CHECK (promote_after >= 1),
    rollback_after          integer NOT NULL DEFAULT 1 CHECK (rollback_after >= 1),
    cooldown                interval NOT NULL DEFAULT '14 days' CHECK (cooldown >= interval '0'),
    probation               interval NOT NULL DEFAULT '63 days' CHECK (probation >= interval '0'),
    broken_psi              double precision NOT NULL DEFAULT 0.25 CHECK (broken_psi > 0),
    broken_approval_change  double precision NOT NULL DEFAULT 0.15 CHECK (broken_approval_change > 0 AND broken_approval_change < 1),
    shadow_disagreement     double precision NOT NULL DEFAULT 0.25 CHECK (shadow_disagreement > 0 AND shadow_disagreement <= 1),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    updated_by              text NOT NULL DEFAULT session_user
);
COMMENT ON TABLE blink.monitoring_policy IS
    'What monitoring may do (mode off/alert/auto, kill_switch) and its thresholds; one row, edited with UPDATE by the owner. docs/monitoring.md explains each column.';
INSERT INTO blink.monitoring_policy DEFAULT VALUES;

CREATE TABLE blink.monitoring_policy_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    changed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    changed_by  text NOT NULL DEFAULT session_user,
    old_policy  jsonb NOT NULL,
    new_policy  jsonb NOT NULL
);
COMMENT ON TABLE blink.monitoring_policy_history IS
    'Append-only: every edit of blink.monitoring_policy, before and after.';

CREATE FUNCTION blink.monitoring_policy_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'blink: blink.monitoring_policy has exactly one row; edit it with UPDATE'
            USING ERRCODE = 'object_in_use';
    END IF;
    NEW.updated_at := now();
    NEW.updated_by := session_user;
    INSERT INTO blink.monitoring_policy_history (old_policy, new_policy)
    VALUES (to_jsonb(OLD), to_jsonb(NEW));
    RETURN NEW;
END $$;
COMMENT ON FUNCTION blink.monitoring_policy_changed() IS
    'Trigger: keeps the single policy row and records every edit in blink.monitoring_policy_history.';
CREATE TRIGGER monitoring_policy_changed BEFORE UPDATE OR DELETE ON blink.monitoring_policy
    FOR EACH ROW EXECUTE FUNCTION blink.monitoring_policy_changed();
CREATE TRIGGER monitoring_policy_no_truncate BEFORE TRUNCATE ON blink.monitoring_policy
    FOR EACH STATEMENT EXECUTE FUNCTION blink.refuse_change();

CREATE TABLE blink.monitoring_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    as_of        timestamptz NOT NULL,
    mode         text NOT NULL CHECK (mode IN ('off', 'alert', 'auto')),
    status       text NOT NULL CHECK (status IN ('done', 'partial', 'off')),
    summary      jsonb NOT NULL CHECK (jsonb_typeof(summary) = 'object'),
    run_by       text NOT NULL DEFAULT session_user
);
COMMENT ON TABLE blink.monitoring_runs IS
    'Append-only: one row per monitoring run (blink_monitor_run): when, the data it looked at (as_of), the mode it acted in, and a summary.';

CREATE TABLE blink.monitoring_metrics (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id             bigint NOT NULL REFERENCES blink.monitoring_runs (id),
    model_id           bigint NOT NULL REFERENCES blink.blink_models (id),
    cohort_kind        text NOT NULL CHECK (cohort_kind IN ('inputs', 'outcomes')),
    cohort_start       timestamptz NOT NULL,
    cohort_end         timestamptz NOT NULL CHECK (cohort_end > cohort_start),
    metric             text NOT NULL CHECK (metric <> ''),
    feature            text,
    compared_model_id  bigint REFERENCES blink.blink_models (id),
    value              double precision,
    reference          double precision,
    sampling_error     double precision,
    lower_bound        double precision,
    upper_bound        double precision,
    critical_value     double precision,
    p_value            double precision,
    rows               integer NOT NULL CHECK (rows >= 0),
    status             text NOT NULL CHECK (status IN ('ok', 'breach', 'insufficient_data')),
    detail             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(detail) = 'object')
);
COMMENT ON TABLE blink.monitoring_metrics IS
    'Append-only: every figure of every monitoring run, per model and cohort (inputs: by snapshot time; outcomes: by issue date), with its reference, sampling error, bounds and whether it breached. docs/monitoring.md defines each metric.';
CREATE INDEX monitoring_metrics_series ON blink.monitoring_metrics (model_id, metric, cohort_start);
CREATE INDEX monitoring_metrics_run ON blink.monitoring_metrics (run_id);

CREATE TABLE blink.monitoring_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id        bigint NOT NULL REFERENCES blink.monitoring_runs (id),
    model_id      bigint REFERENCES blink.blink_models (id),
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    severity      text NOT NULL CHECK (severity IN ('info', 'alert', 'action')),
    rule          text NOT NULL CHECK (rule <> ''),
    cohort_kind   text CHECK (cohort_kind IN ('inputs', 'outcomes')),
    cohort_start  timestamptz,
    message       text NOT NULL CHECK (message <> ''),
    detail        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(detail) = 'object')
);
COMMENT ON TABLE blink.monitoring_events IS
    'Append-only: what monitoring found (alerts, insufficient data, actions taken or withheld and why). Each alert and action is also sent with NOTIFY on channel blink_monitoring.';
CREATE INDEX monitoring_events_created ON blink.monitoring_events (created_at);

CREATE TABLE blink.retrain_requests (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id        bigint NOT NULL REFERENCES blink.monitoring_runs (id),
    model_id      bigint NOT NULL REFERENCES blink.blink_models (id),
    requested_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    rules         text[] NOT NULL CHECK (cardinality(rules) > 0),
    reason        text NOT NULL CHECK (reason <> '')
);
COMMENT ON TABLE blink.retrain_requests IS
    'Append-only: monitoring asks for a new model (the champion model_id has drifted or decayed). Pending until blink_retrain_request_done records what the trainer did.';

CREATE TABLE blink.retrain_request_results (
    request_id  bigint PRIMARY KEY REFERENCES blink.retrain_requests (id),
    handled_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    handled_by  text NOT NULL DEFAULT session_user,
    model_id    bigint REFERENCES blink.blink_models (id),
    outcome     text NOT NULL CHECK (outcome <> '')
);
COMMENT ON TABLE blink.retrain_request_results IS
    'Append-only: how each retrain request ended (the model the trainer built, if any, and its promotion decision or error).';

CREATE TABLE blink.monitoring_actions (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id              bigint NOT NULL REFERENCES blink.monitoring_runs (id),
    created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    action              text NOT NULL CHECK (action IN ('promote', 'rollback', 'retrain_request', 'end_probation')),
    rule                text NOT NULL CHECK (rule <> ''),
    model_id            bigint NOT NULL REFERENCES blink.blink_models (id),
    deployment_id       bigint REFERENCES blink.blink_deployments (id),
    retrain_request_id  bigint REFERENCES blink.retrain_requests (id),
    cited_run_ids       bigint[] NOT NULL CHECK (cardinality(cited_run_ids) > 0),
    reason              text NOT NULL CHECK (reason <> ''),
    CHECK ((action IN ('promote', 'rollback')) = (deployment_id IS NOT NULL)),
    CHECK ((action = 'retrain_request') = (retrain_request_id IS NOT NULL))
);
COMMENT ON TABLE blink.monitoring_actions IS
    'Append-only: what monitoring changed on its own (promotions and rollbacks through blink_promote/blink_rollback, retrain requests, ends of probation), citing the runs whose figures justified it.';

-- Outcomes cohorts join each loan to the model's latest score before the loan.
CREATE INDEX risk_score_audits_user_model ON blink.risk_score_audits (user_id, model_id, snapshot_at DESC);
CREATE INDEX risk_score_audits_model_snapshot ON blink.risk_score_audits (model_id, snapshot_at);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['monitoring_policy_history', 'monitoring_runs', 'monitoring_metrics',
                             'monitoring_events', 'retrain_requests', 'retrain_request_results',
                             'monitoring_actions']
    LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE OR TRUNCATE ON blink.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION blink.refuse_change()',
                       t || '_append_only', t);
        EXECUTE format('GRANT SELECT ON blink.%I TO blink_trainer', t);
    END LOOP;
END $$;
GRANT SELECT ON blink.monitoring_policy TO blink_trainer, blink_app;
GRANT SELECT ON blink.monitoring_events, blink.monitoring_actions TO blink_app;

-- blink_schedule gains the monitoring job (db/idempotent/080_schedule.sql).
DROP FUNCTION IF EXISTS public.blink_schedule(text, integer, double precision, interval);
