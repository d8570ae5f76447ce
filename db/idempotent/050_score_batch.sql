-- Many users in one call: blink_score_batch.

-- Internal half of blink_score_batch: the scores as arrays aligned with user_ids.
-- jit = off: its one query reads up to 100,000 users' snapshots, a plan cost that makes
-- PostgreSQL JIT-compile it (inlining and optimization) on every call; compiling cost more
-- than it saved (batch ~20% faster without it, docs/benchmarks.md).
CREATE OR REPLACE FUNCTION blink.score_batch_arrays(
    user_ids text[],
    OUT model_id bigint,
    OUT probabilities double precision[],
    OUT decisions text[],
    OUT bands text[],
    OUT snapshot_ids bigint[],
    OUT snapshot_epochs double precision[]
)
LANGUAGE plpython3u STABLE STRICT PARALLEL UNSAFE
SET search_path = blink, pg_catalog, pg_temp
SET jit = off
AS $$
from pyfuncs import api
return api.score_batch(plpy, GD, user_ids)
$$;
COMMENT ON FUNCTION blink.score_batch_arrays(text[]) IS
'Internal: champion scores of user_ids as arrays aligned with the input (NULLs without a snapshot). Called by blink_score_batch.';

-- Python returns arrays and SQL unnests them: far cheaper than a PL/Python row per user.
CREATE OR REPLACE FUNCTION public.blink_score_batch(user_ids text[])
RETURNS TABLE (
    user_id text,
    probability_default double precision,
    decision text,
    risk_band text,
    model_id bigint,
    snapshot_id bigint,
    snapshot_at timestamptz
)
LANGUAGE sql STABLE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
    SELECT u.user_id, u.probability, u.decision, u.band, r.model_id, u.snapshot_id,
           to_timestamp(u.epoch)
    FROM blink.score_batch_arrays(user_ids) AS r,
         unnest(user_ids, r.probabilities, r.decisions, r.bands, r.snapshot_ids,
                r.snapshot_epochs) WITH ORDINALITY
             AS u(user_id, probability, decision, band, snapshot_id, epoch, ord)
    ORDER BY u.ord
$$;
COMMENT ON FUNCTION public.blink_score_batch(text[]) IS
'Champion scores of many users in one call (one fetch, one compiled-predict call): one row per array element, in order; NULL probability/decision when the user has no snapshot. Writes no audit.';
