-- Rescoring with reason codes: blink_rescore_pending, and each user's decision of record.

CREATE OR REPLACE FUNCTION public.blink_rescore_pending(
    max_users integer DEFAULT 200000,
    max_seconds double precision DEFAULT 240,
    batch_size integer DEFAULT 500)
RETURNS jsonb
LANGUAGE plpython3u VOLATILE STRICT PARALLEL UNSAFE
SET search_path = blink, pg_catalog, pg_temp
AS $$
from pyfuncs import api
return api.rescore_pending(plpy, GD, max_users, max_seconds, batch_size)
$$;
COMMENT ON FUNCTION public.blink_rescore_pending(integer, double precision, integer) IS
'One rescoring run: audits (with SHAP reason codes) every user whose latest snapshot has no audit by the champion, then by each shadow model, in batches. Returns a JSON summary. Returns at once when another run holds the lock; starts no batch after max_seconds; at most max_users per model. One transaction: if killed, nothing is kept and the next run redoes it.';

-- The decision of record: each user's latest snapshot as audited by the current champion.
CREATE OR REPLACE VIEW blink.current_decisions AS
SELECT a.user_id, a.probability_default, a.decision, a.risk_band, a.reasons, a.model_id,
       a.snapshot_id, a.snapshot_at, a.source, a.scored_at
FROM blink.latest_snapshots() l
JOIN blink.risk_score_audits a ON a.snapshot_id = l.id
WHERE a.model_id = (SELECT c.model_id FROM blink.champion() c);
COMMENT ON VIEW blink.current_decisions IS
'Each user''s decision of record: the audit of the latest snapshot by the current champion (users not yet rescored are absent). Shadow rows never appear here while their model is not champion.';
