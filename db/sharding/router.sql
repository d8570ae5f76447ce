-- The router: the application API of blink (same names and signatures as on one server)
-- as PL/Proxy functions that run on the shard owning each user, the partition map they
-- route by, and blink.shard_status. No blink tables or models live here.
-- Applied by `blink shards setup` (trainer/sharding.py); safe to run again.
--
-- Routing: partition = hashtext(user_id) & 15 (PL/Proxy masks the hash with the partition
-- count, which must be a power of two). blink_router.partitions maps each of the 16
-- partitions to a shard; moving a partition is an UPDATE there (plus moving its users'
-- rows), never a rehash.

CREATE EXTENSION IF NOT EXISTS plproxy;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'blink_app') THEN
        CREATE ROLE blink_app NOLOGIN;  -- as on the shards (the migration creates it there)
    END IF;
END $$;
-- blink_router (map and routed calls), plproxy (PL/Proxy looks its cluster functions up
-- there), blink (the status view). A schema another role made first is refused: its owner
-- could replace what the router runs.
DO $$
DECLARE
    s text;
BEGIN
    FOREACH s IN ARRAY ARRAY['blink_router', 'plproxy', 'blink'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_namespace n WHERE n.nspname = s) THEN
            EXECUTE format('CREATE SCHEMA %I', s);
        ELSIF (SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = s)
              <> (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
            RAISE EXCEPTION 'blink: schema % exists and belongs to another role; refusing to install the router into it', s;
        END IF;
    END LOOP;
END $$;
REVOKE ALL ON SCHEMA blink_router, plproxy, blink FROM PUBLIC;
GRANT USAGE ON SCHEMA blink_router, plproxy, blink TO blink_app;

-- The tables, made once (the schema's owner check above makes them ours).
DO $do$
BEGIN
    IF pg_catalog.to_regclass('blink_router.shards') IS NULL THEN
        CREATE TABLE blink_router.shards (
            name    text PRIMARY KEY CHECK (name ~ '^[a-z0-9_-]+$'),
            connstr text NOT NULL CHECK (connstr <> '')
        );
        COMMENT ON TABLE blink_router.shards IS
        'Shard databases by name: libpq connection string (reachable from the router server; no password: use ~/.pgpass of the server user).';

        CREATE TABLE blink_router.partitions (
            partition integer PRIMARY KEY CHECK (partition BETWEEN 0 AND 15),
            shard     text NOT NULL REFERENCES blink_router.shards (name)
        );
        COMMENT ON TABLE blink_router.partitions IS
        'The partition map, the source of truth for routing: user u lives in partition hashtext(u) & 15, on this shard.';

        CREATE TABLE blink_router.model_home (
            only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
            connstr  text NOT NULL CHECK (connstr <> '')
        );
        COMMENT ON TABLE blink_router.model_home IS
        'The model home (where the trainer writes and promotes; shards subscribe to it): its connection string from the router.';

        CREATE TABLE blink_router.config_version (
            only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
            version  integer NOT NULL
        );
        INSERT INTO blink_router.config_version VALUES (true, 1) ON CONFLICT DO NOTHING;
    END IF;
END $do$;

-- PL/Proxy re-reads the cluster when the version goes up: any change of the map bumps it.
CREATE OR REPLACE FUNCTION blink_router.bump_config_version() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE blink_router.config_version SET version = version + 1;
    RETURN NULL;
END
$$;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['shards', 'partitions', 'model_home'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS bump_config_version ON blink_router.%I', t);
        EXECUTE format('CREATE TRIGGER bump_config_version AFTER INSERT OR UPDATE OR DELETE '
                       'OR TRUNCATE ON blink_router.%I FOR EACH STATEMENT EXECUTE FUNCTION '
                       'blink_router.bump_config_version()', t);
    END LOOP;
END $$;

-- PL/Proxy's cluster configuration API, read from the tables above. Two clusters:
-- blink_shards (16 partitions) and blink_home (one partition: the model home).
CREATE OR REPLACE FUNCTION plproxy.get_cluster_version(cluster_name text)
RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT v.version FROM blink_router.config_version v $$;

CREATE OR REPLACE FUNCTION plproxy.get_cluster_partitions(cluster_name text)
RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    mapped integer;
BEGIN
    IF cluster_name = 'blink_shards' THEN
        SELECT count(*) INTO mapped FROM blink_router.partitions;
        IF mapped <> 16 THEN
            RAISE EXCEPTION 'blink: the partition map has % of 16 partitions', mapped
                USING HINT = 'Run blink shards setup, or map every partition in blink_router.partitions.';
        END IF;
        RETURN QUERY SELECT s.connstr FROM blink_router.partitions p
                     JOIN blink_router.shards s ON s.name = p.shard ORDER BY p.partition;
    ELSIF cluster_name = 'blink_home' THEN
        RETURN QUERY SELECT h.connstr FROM blink_router.model_home h;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'blink: no model home configured (blink_router.model_home)';
        END IF;
    ELSE
        RAISE EXCEPTION 'blink: unknown PL/Proxy cluster %', cluster_name;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION plproxy.get_cluster_config(cluster_name text, OUT key text, OUT val text)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT 'connection_lifetime', '3600' $$;  -- reconnect hourly (a moved partition, a restart)

-- Where a user lives, for errors and for operators.
CREATE OR REPLACE FUNCTION blink_router.partition_of(user_id text)
RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT pg_catalog.hashtext(user_id) & 15 $$;

CREATE OR REPLACE FUNCTION blink_router.unreachable(what text, detail text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    shard_name text;
BEGIN
    IF what IS NOT NULL THEN
        SELECT p.shard INTO shard_name FROM blink_router.partitions p
        WHERE p.partition = blink_router.partition_of(what);
        RAISE EXCEPTION 'blink: shard % (partition % of 16, which holds user %) is unreachable',
            shard_name, blink_router.partition_of(what), what
            USING ERRCODE = 'connection_failure', DETAIL = detail,
                  HINT = 'Users on other shards are unaffected; SELECT * FROM blink.shard_status shows which shards answer.';
    END IF;
    RAISE EXCEPTION 'blink: a shard is unreachable'
        USING ERRCODE = 'connection_failure', DETAIL = detail,
              HINT = 'SELECT * FROM blink.shard_status shows which shards answer.';
END
$$;

-- PL/Proxy's own connection errors are internal_error with this text; remote errors keep
-- the shard's SQLSTATE and pass through untouched.
CREATE OR REPLACE FUNCTION blink_router.is_connection_error(message text)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT message LIKE '%PQconnect%' OR message LIKE '%connection to server%'
             OR message LIKE '%server closed the connection%' $$;

-- --- the routed calls (PL/Proxy) -----------------------------------------------------------

CREATE OR REPLACE FUNCTION blink_router.score(p_user_id text)
RETURNS double precision
LANGUAGE plproxy AS $$
    CLUSTER 'blink_shards';
    RUN ON hashtext(p_user_id);
    SELECT public.blink_score(p_user_id);
$$;

CREATE OR REPLACE FUNCTION blink_router.decide(p_user_id text)
RETURNS TABLE (user_id text, probability_default double precision, decision text,
               risk_band text, model_id bigint, model_version text, snapshot_id bigint,
               snapshot_at timestamptz)
LANGUAGE plproxy AS $$
    CLUSTER 'blink_shards';
    RUN ON hashtext(p_user_id);
    SELECT * FROM public.blink_decide(p_user_id);
$$;

CREATE OR REPLACE FUNCTION blink_router.explain(p_user_id text)
RETURNS TABLE (rank integer, reason_code text, reason_text text, feature_name text,
               feature_value double precision, feature_category text,
               shap_value double precision, probability_default double precision,
               decision text, model_id bigint, snapshot_id bigint, source text,
               scored_at timestamptz)
LANGUAGE plproxy AS $$
    CLUSTER 'blink_shards';
    RUN ON hashtext(p_user_id);
    SELECT * FROM public.blink_explain(p_user_id);
$$;

-- SPLIT sends each shard only the elements it owns (ids are distinct and not NULL here).
CREATE OR REPLACE FUNCTION blink_router.score_batch(p_user_ids text[])
RETURNS TABLE (user_id text, probability_default double precision, decision text,
               risk_band text, model_id bigint, snapshot_id bigint, snapshot_at timestamptz)
LANGUAGE plproxy AS $$
    CLUSTER 'blink_shards';
    SPLIT p_user_ids;
    RUN ON hashtext(p_user_ids);
    SELECT * FROM public.blink_score_batch(p_user_ids);
$$;

-- Not about a user: the model home answers (it holds the champion of record).
CREATE OR REPLACE FUNCTION blink_router.score_features(p_features jsonb)
RETURNS double precision
LANGUAGE plproxy AS $$
    CLUSTER 'blink_home';
    RUN ON 0;
    SELECT public.blink_score_features(p_features);
$$;

CREATE OR REPLACE FUNCTION blink_router.home_champion()
RETURNS TABLE (model_id bigint, version text, deployed_at timestamptz, deployed_by text,
               action text, reason text)
LANGUAGE plproxy AS $$
    CLUSTER 'blink_home';
    RUN ON 0;
    SELECT * FROM public.blink_champion();
$$;

CREATE OR REPLACE FUNCTION blink_router.shard_state(p_connstr text)
RETURNS TABLE (champion_model_id bigint, champion_deployment_id bigint,
               subscription_enabled boolean, subscription_running boolean,
               last_received_at timestamptz)
LANGUAGE plproxy AS $$
    CONNECT p_connstr;
    SELECT * FROM blink.shard_state();
$$;

-- --- the API: same names and signatures as on one server ------------------------------------
-- They run as the caller (not SECURITY DEFINER): PL/Proxy connects to the shard as the same
-- role, so the shard's own grants (blink_app) decide what it may call. Each guard turns
-- PL/Proxy's connection error into one naming the shard and partition.

CREATE OR REPLACE FUNCTION public.blink_score(user_id text)
RETURNS double precision
LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN blink_router.score(user_id);
EXCEPTION WHEN internal_error THEN
    IF NOT blink_router.is_connection_error(SQLERRM) THEN RAISE; END IF;
    PERFORM blink_router.unreachable(user_id, SQLERRM);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION blink_router.decide_guarded(p_user_id text)
RETURNS TABLE (user_id text, probability_default double precision, decision text,
               risk_band text, model_id bigint, model_version text, snapshot_id bigint,
               snapshot_at timestamptz)
LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY SELECT * FROM blink_router.decide(p_user_id);
EXCEPTION WHEN internal_error THEN
    IF NOT blink_router.is_connection_error(SQLERRM) THEN RAISE; END IF;
    PERFORM blink_router.unreachable(p_user_id, SQLERRM);
END
$$;

CREATE OR REPLACE FUNCTION public.blink_decide(user_id text)
RETURNS TABLE (user_id text, probability_default double precision, decision text,
               risk_band text, model_id bigint, model_version text, snapshot_id bigint,
               snapshot_at timestamptz)
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM blink_router.decide_guarded($1) $$;

CREATE OR REPLACE FUNCTION blink_router.explain_guarded(p_user_id text)
RETURNS TABLE (rank integer, reason_code text, reason_text text, feature_name text,
               feature_value double precision, feature_category text,
               shap_value double precision, probability_default double precision,
               decision text, model_id bigint, snapshot_id bigint, source text,
               scored_at timestamptz)
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY SELECT * FROM blink_router.explain(p_user_id);
EXCEPTION WHEN internal_error THEN
    IF NOT blink_router.is_connection_error(SQLERRM) THEN RAISE; END IF;
    PERFORM blink_router.unreachable(p_user_id, SQLERRM);
END
$$;

CREATE OR REPLACE FUNCTION public.blink_explain(user_id text)
RETURNS TABLE (rank integer, reason_code text, reason_text text, feature_name text,
               feature_value double precision, feature_category text,
               shap_value double precision, probability_default double precision,
               decision text, model_id bigint, snapshot_id bigint, source text,
               scored_at timestamptz)
LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM blink_router.explain_guarded($1) $$;

CREATE OR REPLACE FUNCTION public.blink_score_features(features jsonb)
RETURNS double precision
LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN blink_router.score_features(features);
EXCEPTION WHEN internal_error THEN
    IF NOT blink_router.is_connection_error(SQLERRM) THEN RAISE; END IF;
    RAISE EXCEPTION 'blink: the model home is unreachable (blink_score_features runs there)'
        USING ERRCODE = 'connection_failure', DETAIL = SQLERRM;
END
$$;

CREATE OR REPLACE FUNCTION public.blink_champion()
RETURNS TABLE (model_id bigint, version text, deployed_at timestamptz, deployed_by text,
               action text, reason text)
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM blink_router.home_champion() $$;

-- The batch: each distinct id goes once to its shard; rows come back in the caller's order,
-- one per element (duplicates repeated, NULL elements as rows without a score), as on one
-- server.
CREATE OR REPLACE FUNCTION blink_router.score_batch_ordered(p_user_ids text[])
RETURNS TABLE (user_id text, probability_default double precision, decision text,
               risk_band text, model_id bigint, snapshot_id bigint, snapshot_at timestamptz)
LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    ids text[];
BEGIN
    IF cardinality(p_user_ids) > 100000 THEN  -- the shards' own limit (blink.batch_user_ids)
        RAISE EXCEPTION 'blink_score_batch takes at most 100000 user ids per call, got %',
            cardinality(p_user_ids)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Split the array into several calls.';
    END IF;
    ids := ARRAY(SELECT DISTINCT u FROM unnest(p_user_ids) u WHERE u IS NOT NULL);
    RETURN QUERY
    WITH r AS MATERIALIZED (SELECT * FROM blink_router.score_batch(ids))
    SELECT u.id, r.probability_default, r.decision, r.risk_band,
           coalesce(r.model_id, (SELECT max(r2.model_id) FROM r r2)), r.snapshot_id,
           r.snapshot_at
    FROM unnest(p_user_ids) WITH ORDINALITY AS u(id, ord)
    LEFT JOIN r ON r.user_id = u.id
    ORDER BY u.ord;
EXCEPTION WHEN internal_error THEN
    IF NOT blink_router.is_connection_error(SQLERRM) THEN RAISE; END IF;
    PERFORM blink_router.unreachable(NULL, SQLERRM);
END
$$;

CREATE OR REPLACE FUNCTION public.blink_score_batch(user_ids text[])
RETURNS TABLE (user_id text, probability_default double precision, decision text,
               risk_band text, model_id bigint, snapshot_id bigint, snapshot_at timestamptz)
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM blink_router.score_batch_ordered($1) $$;

-- --- status -----------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION blink_router.shard_status()
RETURNS TABLE (shard text, partitions integer[], reachable boolean,
               champion_model_id bigint, home_champion_model_id bigint, lagging boolean,
               subscription_enabled boolean, subscription_running boolean,
               last_received_at timestamptz, error text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    s record;
    st record;
    home_id bigint;
BEGIN
    BEGIN
        SELECT c.model_id INTO home_id FROM blink_router.home_champion() c;
    EXCEPTION WHEN internal_error THEN
        home_id := NULL;  -- the home is down: nothing to compare with
    END;
    FOR s IN SELECT sh.name, sh.connstr,
                    ARRAY(SELECT p.partition FROM blink_router.partitions p
                          WHERE p.shard = sh.name ORDER BY p.partition) AS parts
             FROM blink_router.shards sh ORDER BY sh.name
    LOOP
        shard := s.name;
        partitions := s.parts;
        home_champion_model_id := home_id;
        BEGIN
            SELECT * INTO st FROM blink_router.shard_state(s.connstr);
            reachable := true;
            champion_model_id := st.champion_model_id;
            subscription_enabled := st.subscription_enabled;
            subscription_running := st.subscription_running;
            last_received_at := st.last_received_at;
            error := NULL;
        EXCEPTION WHEN OTHERS THEN
            reachable := false;
            champion_model_id := NULL;
            subscription_enabled := NULL;
            subscription_running := NULL;
            last_received_at := NULL;
            error := SQLERRM;
        END;
        lagging := reachable AND champion_model_id IS DISTINCT FROM home_id;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE OR REPLACE VIEW blink.shard_status AS SELECT * FROM blink_router.shard_status();
COMMENT ON VIEW blink.shard_status IS
'One row per shard: the partitions it holds, whether it answers, its champion against the model home''s (lagging: they differ), its subscription to the model home, and the error if it does not answer.';

-- Privileges: applications call the API and read the status; nothing else.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
             WHERE p.pronamespace IN ('blink_router'::regnamespace, 'plproxy'::regnamespace)
                OR p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'blink\_%'
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END $$;
GRANT EXECUTE ON FUNCTION public.blink_score(text), public.blink_score_features(jsonb),
    public.blink_decide(text), public.blink_champion(), public.blink_explain(text),
    public.blink_score_batch(text[])
    TO blink_app;
-- ... and the routed calls and guards they make as the caller.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
             WHERE p.pronamespace = 'blink_router'::regnamespace
               AND p.proname NOT IN ('bump_config_version', 'shard_state')  -- CONNECT: owner only
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO blink_app', f);
    END LOOP;
END $$;
-- PL/Proxy reads its cluster as the calling role.
GRANT EXECUTE ON FUNCTION plproxy.get_cluster_version(text),
    plproxy.get_cluster_partitions(text), plproxy.get_cluster_config(text)
    TO blink_app;
GRANT SELECT ON blink.shard_status TO blink_app;
