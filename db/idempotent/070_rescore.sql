-- Rescoring with reason codes: blink_rescore_pending, and each user's decision of record.

-- The worker that rescores a user when rescoring is split among workers (workers > 1): a
-- hash of the id, so the shares are near-equal and a user always falls in the same one.
-- hashtext is the hash PostgreSQL uses for text (the shards' partition rule hashes with it
-- too); the mask keeps it non-negative for the modulus.
CREATE OR REPLACE FUNCTION blink.rescore_worker(user_id text, workers integer)
RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT ((pg_catalog.hashtext(user_id)::bigint & 2147483647) % workers)::integer $$;
COMMENT ON FUNCTION blink.rescore_worker(text, integer) IS
'Internal: which of workers (0 .. workers - 1) rescores user_id when blink_rescore_pending is split among workers. Every user falls to worker 0 of 1.';

CREATE OR REPLACE FUNCTION public.blink_rescore_pending(
    max_users integer DEFAULT 200000,
    max_seconds double precision DEFAULT 240,
    batch_size integer DEFAULT 500,
    worker integer DEFAULT 0,
    workers integer DEFAULT 1)
RETURNS jsonb
LANGUAGE plpython3u VOLATILE STRICT PARALLEL UNSAFE
SET search_path = blink, pg_catalog, pg_temp
AS $$
from pyfuncs import api
return api.rescore_pending(plpy, GD, max_users, max_seconds, batch_size, worker, workers)
$$;
COMMENT ON FUNCTION public.blink_rescore_pending(integer, double precision, integer, integer, integer) IS
'One rescoring run: audits (with SHAP reason codes) every user whose latest snapshot has no audit by the champion, then by each shadow model, in batches. Returns a JSON summary. Returns at once when another run holds the lock; starts no batch after max_seconds; at most max_users per model. One transaction: if killed, nothing is kept and the next run redoes it. With workers > 1 it takes only the users of its worker (0 .. workers - 1; blink.rescore_worker): one run per worker, each in its own session, rescore on as many cores at once.';

-- blink_schedule's check of its jobs' arguments: blink_rescore_pending's own rule.
CREATE OR REPLACE FUNCTION blink.check_rescore_limits(max_users integer,
                                                      max_seconds double precision,
                                                      workers integer)
RETURNS void
LANGUAGE plpython3u IMMUTABLE STRICT PARALLEL UNSAFE
SET search_path = blink, pg_catalog, pg_temp
AS $$
from pyfuncs import api
api.check_rescore_limits(plpy, GD, max_users, max_seconds, workers)
$$;
COMMENT ON FUNCTION blink.check_rescore_limits(integer, double precision, integer) IS
'Internal: an error naming the argument when blink_rescore_pending would refuse these limits (max_users, max_seconds, workers). Called by blink_schedule.';

-- The decision of record: each user's latest snapshot as audited by the current champion.
CREATE OR REPLACE VIEW blink.current_decisions AS
SELECT a.user_id, a.probability_default, a.decision, a.risk_band, a.reasons, a.model_id,
       a.snapshot_id, a.snapshot_at, a.source, a.scored_at
FROM blink.latest_snapshots() l
JOIN blink.risk_score_audits a ON a.snapshot_id = l.id
WHERE a.model_id = (SELECT c.model_id FROM blink.champion() c);
COMMENT ON VIEW blink.current_decisions IS
'Each user''s decision of record: the audit of the latest snapshot by the current champion (users not yet rescored are absent). Shadow rows never appear here while their model is not champion.';
