-- Undo 0007_monitoring. The history tables go (refused unless -x drop_data=yes when they
-- hold rows); the policy row goes with them (an edited policy is in monitoring_policy_history).
DROP INDEX blink.risk_score_audits_model_snapshot;
DROP INDEX blink.risk_score_audits_user_model;
DROP TABLE blink.monitoring_actions;
DROP TABLE blink.retrain_request_results;
DROP TABLE blink.retrain_requests;
DROP TABLE blink.monitoring_events;
DROP TABLE blink.monitoring_metrics;
DROP TABLE blink.monitoring_runs;
DROP TABLE blink.monitoring_policy;
DROP TABLE blink.monitoring_policy_history;
DROP FUNCTION blink.monitoring_policy_changed();
ALTER TABLE blink.blink_shadow_models DROP COLUMN until;
REVOKE INSERT (monitoring_reference) ON blink.blink_models FROM blink_trainer;
ALTER TABLE blink.blink_models DROP COLUMN monitoring_reference;
