-- Trainer views. Safe to apply again.

-- One row per event: champion changes (blink_deployments, with the review that led to them,
-- if any) and promotion reviews that did not change the champion (refused or evaluated).
CREATE OR REPLACE VIEW blink.blink_deployment_history AS
SELECT d.deployed_at AS event_at,
       CASE d.action WHEN 'promote' THEN 'promoted' ELSE 'rolled back' END AS event,
       d.model_id,
       m.version,
       r.champion_model_id AS previous_model_id,
       d.reason,
       d.deployed_by AS actor,
       d.id AS deployment_id,
       r.id AS review_id,
       r.forced,
       (r.candidate_metrics ->> 'roc_auc')::double precision AS candidate_roc_auc,
       (r.champion_metrics ->> 'roc_auc')::double precision AS champion_roc_auc,
       r.window_start,
       r.window_end
FROM blink.blink_deployments d
JOIN blink.blink_models m ON m.id = d.model_id
LEFT JOIN blink.blink_promotion_reviews r ON r.deployment_id = d.id
UNION ALL
SELECT r.reviewed_at, r.decision, r.candidate_model_id, m.version, r.champion_model_id,
       r.reason, r.reviewed_by, NULL, r.id, r.forced,
       (r.candidate_metrics ->> 'roc_auc')::double precision,
       (r.champion_metrics ->> 'roc_auc')::double precision,
       r.window_start, r.window_end
FROM blink.blink_promotion_reviews r
JOIN blink.blink_models m ON m.id = r.candidate_model_id
WHERE r.deployment_id IS NULL;

COMMENT ON VIEW blink.blink_deployment_history IS
'Every promotion, rollback and refused or evaluated challenger, with its reason; order by event_at. Champion changes come from blink_deployments, refusals from blink_promotion_reviews.';

GRANT SELECT ON blink.blink_deployment_history TO blink_trainer;
