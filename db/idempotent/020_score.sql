-- Scoring one user or one document: blink_score, blink_score_features, blink_decide.
-- Public functions live in schema public so any role granted blink_app calls them unqualified;
-- they run as their owner (SECURITY DEFINER) with a fixed search_path, because blink_app may
-- not read the feature store or the model table directly.

-- Internal half of blink_score: scores a snapshot the caller already fetched, from its stored
-- vector when it has one for the champion's layout, from its JSON document otherwise.
-- No SET: blink_score's applies, and a SET per call costs more than the prediction's overhead.
CREATE OR REPLACE FUNCTION blink.score_snapshot(model_id bigint, user_id text, snapshot_id bigint,
                                                vector bytea, document text)
RETURNS double precision
LANGUAGE plpython3u STABLE PARALLEL UNSAFE
AS $$
from pyfuncs import api
return api.score_snapshot(plpy, GD, model_id, user_id, snapshot_id, vector, document)
$$;
COMMENT ON FUNCTION blink.score_snapshot(bigint, text, bigint, bytea, text) IS
'Internal: probability of default of one stored snapshot under model_id, from its feature vector or else its JSON document (NULL snapshot -> NULL; NULL model_id -> "no champion" error). Called by blink_score.';

-- blink_score and blink_score_batch in C: blink_native (db/native/blink_native.c) reads
-- users' latest snapshots and scores their stored vectors with the champion's library file,
-- or leaves to PL/Python what it cannot answer exactly as PL/Python would. A server that
-- cannot load the module gets stand-ins (blink.score_native always NULL, blink_score_batch
-- in PL/pgSQL over PL/Python): both functions work the same, through PL/Python. Every upgrade
-- chooses again (docs/native.md: install, then `alembic upgrade head`). check_function_bodies on: PostgreSQL loads the module to
-- create the function, so a missing or incompatible one shows here, not in blink_score.
-- blink_score_batch is the C function itself, not a SQL function over it: PostgreSQL does not
-- inline a SQL function whose argument is a sub-select (blink_score_batch(ARRAY(SELECT ...))),
-- and the un-inlined wrapper copied every row once more. Its comment is in 050.
CREATE OR REPLACE FUNCTION blink.define_native_score(module text DEFAULT 'blink_native')
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET check_function_bodies = on
AS $$
DECLARE
    batch_columns constant text := 'user_id text, probability_default double precision, '
        'decision text, risk_band text, model_id bigint, snapshot_id bigint, '
        'snapshot_at timestamptz';
BEGIN
    EXECUTE format('CREATE OR REPLACE FUNCTION blink.score_native(user_id text) '
                   'RETURNS double precision LANGUAGE c STABLE STRICT PARALLEL UNSAFE '
                   'AS %L, %L', module, 'blink_score_native_v2');
    COMMENT ON FUNCTION blink.score_native(text) IS
    'Internal: blink_score in C (blink_native): the champion''s probability for the stored vector of the user''s latest snapshot; NULL when blink.score_user must answer. Called by blink_score.';
    EXECUTE format('CREATE OR REPLACE FUNCTION public.blink_score_batch(user_ids text[]) '
                   'RETURNS TABLE (%s) LANGUAGE c STABLE STRICT PARALLEL UNSAFE AS %L, %L',
                   batch_columns, module, 'blink_score_batch_v2');
    RETURN true;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'blink: blink_score and blink_score_batch call the trees through PL/Python: the module % cannot be loaded here (%)',
        module, SQLERRM
        USING HINT = 'Install blink_native on every server of this cluster (docs/native.md), then run alembic upgrade head.';
    CREATE OR REPLACE FUNCTION blink.score_native(user_id text)
    RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS 'SELECT NULL::pg_catalog.float8';
    COMMENT ON FUNCTION blink.score_native(text) IS
    'Internal: stand-in for blink_native, which this server could not load: always NULL, so blink_score scores through blink.score_user. See blink.define_native_score.';
    -- PL/pgSQL: its body is checked when it runs, after 050 defined the functions it calls.
    EXECUTE format('CREATE OR REPLACE FUNCTION public.blink_score_batch(user_ids text[]) '
                   'RETURNS TABLE (%s) '
                   'LANGUAGE plpgsql STABLE STRICT PARALLEL UNSAFE SECURITY DEFINER '
                   'SET search_path = blink, pg_catalog, pg_temp AS %L',
                   batch_columns, $body$
DECLARE
    ids constant text[] := blink.batch_user_ids(blink_score_batch.user_ids);
BEGIN
    RETURN QUERY
    SELECT u.user_id, u.probability, u.decision, u.band, r.model_id, u.snapshot_id,
           pg_catalog.to_timestamp(u.epoch)
    FROM blink.score_batch_arrays(ids) AS r,
         unnest(ids, r.probabilities, r.decisions, r.bands,
                r.snapshot_ids, r.snapshot_epochs) WITH ORDINALITY
             AS u(user_id, probability, decision, band, snapshot_id, epoch, ord)
    ORDER BY u.ord;
END
$body$);
    RETURN false;
END
$$;
COMMENT ON FUNCTION blink.define_native_score(text) IS
'Defines blink.score_native and public.blink_score_batch: blink_score and blink_score_batch in C from the module (blink_native) when this server can load it, else stand-ins that leave every call to PL/Python. Returns which. Run by every upgrade.';

-- A database upgraded from when blink_score_batch was a SQL function over this half.
DROP FUNCTION IF EXISTS blink.score_batch(text[]);
SELECT blink.define_native_score();

-- blink_score where blink_native cannot answer: a document without a vector for the
-- champion's layout, a library file not written on this server yet, a transaction that
-- reads one snapshot throughout, a user without a snapshot, a server without the module.
-- The lookup is PL/pgSQL (a cached plan, no subtransaction); the scoring is Python. The
-- champion comes as constants folded into that plan (blink.champion_model_id(), redefined
-- at every deployment), so each call reads only the user's snapshot. The document is
-- converted to text only when the vector cannot serve.
CREATE OR REPLACE FUNCTION blink.score_user(user_id text)
RETURNS double precision
LANGUAGE plpgsql STABLE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
DECLARE
    latest_id bigint;
    vector bytea;
    document text;
BEGIN
    SELECT s.id,
           CASE WHEN s.feature_layout = blink.champion_layout() THEN s.feature_vector END,
           CASE WHEN s.feature_vector IS NULL
                     OR s.feature_layout IS DISTINCT FROM blink.champion_layout()
                THEN s.features::text END
    INTO latest_id, vector, document
    FROM blink.latest_snapshot(score_user.user_id) s;
    RETURN blink.score_snapshot(blink.champion_model_id(), score_user.user_id, latest_id,
                                vector, document);
END
$$;
COMMENT ON FUNCTION blink.score_user(text) IS
'Internal: blink_score through PL/pgSQL and PL/Python, for every call blink.score_native leaves (NULL). Called by blink_score.';

-- Inlined into the caller's query (plain SQL: no SECURITY DEFINER, no SET), so a call
-- costs the C function alone when it answers. Both functions it calls are schema-qualified
-- and each is the permission boundary of its own path. A string body, not RETURN: it
-- records no dependency, so the API can be dropped function by function on downgrade.
CREATE OR REPLACE FUNCTION public.blink_score(user_id text)
RETURNS double precision
LANGUAGE sql STABLE PARALLEL UNSAFE
AS $$ SELECT coalesce(blink.score_native(user_id), blink.score_user(user_id)) $$;
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
