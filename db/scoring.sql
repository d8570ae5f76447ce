-- Scoring API. Safe to apply again: CREATE OR REPLACE only.
-- Public functions live in schema public so any role granted blink_app calls them unqualified;
-- they run as their owner (SECURITY DEFINER) with a fixed search_path, because blink_app may
-- not read the feature store or the model table directly.

-- Internal half of blink_score: scores a snapshot the caller already fetched.
CREATE OR REPLACE FUNCTION blink.score_snapshot(model_id bigint, user_id text, snapshot_id bigint,
                                                features text)
RETURNS double precision
LANGUAGE plpython3u STABLE PARALLEL UNSAFE
SET search_path = blink, pg_catalog, pg_temp
AS $$
from pyfuncs import api
return api.score_snapshot(plpy, GD, model_id, user_id, snapshot_id, features)
$$;
COMMENT ON FUNCTION blink.score_snapshot(bigint, text, bigint, text) IS
'Internal: probability of default of one stored snapshot under model_id (NULL snapshot -> NULL; NULL model_id -> "no champion" error). Called by blink_score.';
REVOKE ALL ON FUNCTION blink.score_snapshot(bigint, text, bigint, text) FROM PUBLIC;

-- The lookup is PL/pgSQL (a cached plan, no subtransaction); the scoring is Python.
CREATE OR REPLACE FUNCTION public.blink_score(user_id text)
RETURNS double precision
LANGUAGE plpgsql STABLE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
DECLARE
    champion_id bigint;
    latest_id bigint;
    document text;
BEGIN
    SELECT c.model_id, s.id, s.features::text INTO champion_id, latest_id, document
    FROM (SELECT d.model_id FROM blink.blink_deployments d ORDER BY d.id DESC LIMIT 1) c
    LEFT JOIN LATERAL (
        SELECT f.id, f.features FROM blink.feature_store_snapshots f
        WHERE f.user_id = blink_score.user_id
        ORDER BY f.snapshot_at DESC, f.id DESC LIMIT 1
    ) s ON true;
    RETURN blink.score_snapshot(champion_id, blink_score.user_id, latest_id, document);
END
$$;
COMMENT ON FUNCTION public.blink_score(text) IS
'Probability of default (0..1) of a user, from the champion model and the user''s latest row in blink.feature_store_snapshots. NULL when the user has no snapshot; an error when no model has been promoted.';

CREATE OR REPLACE FUNCTION public.blink_score_features(features jsonb)
RETURNS double precision
LANGUAGE plpython3u STABLE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
from pyfuncs import api
return api.score_features(plpy, GD, features)
$$;
COMMENT ON FUNCTION public.blink_score_features(jsonb) IS
'Probability of default (0..1) from the champion model for an ad-hoc feature document {"name": number|null, ...}. Absent or null features are missing; unknown names, non-numbers and non-finite values are errors naming the feature.';

CREATE OR REPLACE FUNCTION public.blink_decide(user_id text)
RETURNS TABLE (
    user_id text,
    probability_default double precision,
    decision text,
    risk_band text,
    model_id bigint,
    model_version text,
    snapshot_id bigint,
    snapshot_at timestamptz
)
LANGUAGE plpython3u STABLE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
from pyfuncs import api
return api.decide(plpy, GD, user_id)
$$;
COMMENT ON FUNCTION public.blink_decide(text) IS
'The champion''s decision for a user: probability, approved/declined by the model''s decision_threshold, risk band, model and snapshot used. No row when the user has no snapshot.';

CREATE OR REPLACE FUNCTION public.blink_champion()
RETURNS TABLE (model_id bigint, version text, deployed_at timestamptz, deployed_by text, action text, reason text)
LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
    SELECT d.model_id, m.version, d.deployed_at, d.deployed_by, d.action, d.reason
    FROM blink.blink_deployments d JOIN blink.blink_models m ON m.id = d.model_id
    ORDER BY d.id DESC LIMIT 1
$$;
COMMENT ON FUNCTION public.blink_champion() IS
'The current champion model and the deployment that made it champion. No row before the first promotion.';

REVOKE ALL ON FUNCTION public.blink_score(text), public.blink_score_features(jsonb),
    public.blink_decide(text), public.blink_champion() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.blink_score(text), public.blink_score_features(jsonb),
    public.blink_decide(text), public.blink_champion() TO blink_app, blink_trainer;
