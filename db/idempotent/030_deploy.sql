-- Which model is live: blink_champion, blink_promote, blink_rollback, and the history view.

CREATE OR REPLACE FUNCTION public.blink_champion()
RETURNS TABLE (model_id bigint, version text, deployed_at timestamptz, deployed_by text, action text, reason text)
LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
    SELECT c.model_id, m.version, c.deployed_at, c.deployed_by, c.action, c.reason
    FROM blink.champion() c JOIN blink.blink_models m ON m.id = c.model_id
$$;
COMMENT ON FUNCTION public.blink_champion() IS
'The current champion model and the deployment that made it champion. No row before the first promotion.';

-- Vetting: the server builds the library it will run from the model text, in a separate
-- process (pyfuncs.vet_worker). Internal: blink_promote and blink_shadow_add call it.
CREATE OR REPLACE FUNCTION blink.vet_model(model_id bigint)
RETURNS jsonb
LANGUAGE plpython3u VOLATILE STRICT PARALLEL UNSAFE
SET search_path = blink, pg_catalog, pg_temp
AS $$
from pyfuncs import api
return api.vet_model(plpy, GD, model_id)
$$;
COMMENT ON FUNCTION blink.vet_model(bigint) IS
'Internal: vet a model once (parse, compile with the server''s own toolchain and check against LightGBM, in a separate process) and store the library in blink.vetted_models. Refuses the model with an error naming why.';

-- CALLED ON NULL INPUT for the optional review; the body refuses a NULL model_id or reason.
CREATE OR REPLACE FUNCTION public.blink_promote(model_id bigint, reason text DEFAULT 'manual promotion',
                                                review jsonb DEFAULT NULL)
RETURNS blink.blink_deployments
LANGUAGE plpython3u VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
from pyfuncs import api
return api.promote(plpy, GD, model_id, reason, review)
$$;
COMMENT ON FUNCTION public.blink_promote(bigint, text, jsonb) IS
'Make a model of blink.blink_models the champion: vet it (the server builds and checks its library in a separate process), score a test row, append to blink.blink_deployments, and record the trainer''s review (JSON) with the deployment. Open sessions score with it from their next statement after commit.';

CREATE OR REPLACE FUNCTION public.blink_rollback(reason text DEFAULT 'manual rollback')
RETURNS blink.blink_deployments
LANGUAGE plpython3u VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
from pyfuncs import api
return api.rollback(plpy, GD, reason)
$$;
COMMENT ON FUNCTION public.blink_rollback(text) IS
'Return to the champion that preceded the current one (the deployment history is a stack: promotions push, rollbacks pop). Appends to blink.blink_deployments.';

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
