-- Many users in one call: blink_score_batch.

-- Internal half of blink_score_batch: the scores as arrays aligned with user_ids. SECURITY
-- DEFINER: blink_score_batch (C, the caller's role) calls it for the elements it leaves.
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
LANGUAGE plpython3u STABLE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
SET jit = off
AS $$
from pyfuncs import api
return api.score_batch(plpy, GD, user_ids)
$$;
COMMENT ON FUNCTION blink.score_batch_arrays(text[]) IS
'Internal: champion scores of user_ids as arrays aligned with the input (NULLs without a snapshot). Called by blink_score_batch.';

-- The batch's bound on one call's time and memory (~1 s, ~100 MB at 100,000 ids).
CREATE OR REPLACE FUNCTION blink.batch_user_ids(user_ids text[])
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_users constant int := 100000;
BEGIN
    IF cardinality(user_ids) > max_users THEN
        RAISE EXCEPTION 'blink: blink_score_batch takes at most % user ids per call, got %',
            max_users, cardinality(user_ids)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Split the array into several calls.';
    END IF;
    RETURN user_ids;
END
$$;
COMMENT ON FUNCTION blink.batch_user_ids(text[]) IS
'Internal: user_ids, or an error when there are more than blink_score_batch takes in one call (100,000). Called by blink_score_batch.';

-- public.blink_score_batch(user_ids text[]) is defined by blink.define_native_score (020):
-- C from blink_native where this server loads it, else PL/pgSQL over score_batch_arrays.
COMMENT ON FUNCTION public.blink_score_batch(text[]) IS
'Champion scores of many users in one call: one row per array element, in order; NULL probability/decision when the user has no snapshot. At most 100,000 ids. Writes no audit.';
