-- Reason codes on demand: blink_explain.

CREATE OR REPLACE FUNCTION public.blink_explain(user_id text)
RETURNS TABLE (
    rank integer,
    reason_code text,
    reason_text text,
    feature_name text,
    feature_value double precision,
    feature_category text,
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
-- Its queries are key lookups and a one-row audit insert: a generic plan suits each, and
-- the insert (arrays, shared with rescoring) would otherwise be re-planned on every call
-- (~0.2 ms, a tenth of an on-demand explanation).
SET plan_cache_mode = force_generic_plan
AS $$
from pyfuncs import api
return api.explain(plpy, GD, user_id)
$$;
COMMENT ON FUNCTION public.blink_explain(text) IS
'The top 4 reasons (features pushing hardest towards default, exact TreeSHAP, texts from blink.reason_codes) behind the champion''s score of the user''s latest snapshot. Reuses the stored audit of (snapshot, champion); otherwise computes it and stores it with source on-demand. feature_value holds a numeric feature''s value, feature_category a categorical feature''s category as given (true/false for booleans); both are NULL when the value was missing or an unseen category. No rows when the user has no snapshot.';
