-- A shard: a normal blink database (alembic install) holding some users' snapshots, audits
-- and outcomes, which receives the model tables from the model home by logical replication.
-- Applied by `blink shards setup` (trainer/sharding.py) before it subscribes; safe to run
-- again.

-- Shard-local writes to the replicated tables are refused: a model, deployment or shadow
-- made on one shard would exist nowhere else and the next row from the home would collide
-- with its id. The apply worker runs with session_replication_role = replica, so these
-- (ordinary, "origin") triggers do not fire for rows arriving from the home.
CREATE OR REPLACE FUNCTION blink.refuse_on_shard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'blink: % on % refused: this database is a shard, models are written and promoted at the model home',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'read_only_sql_transaction',
              HINT = 'Run blink_promote, blink_rollback, blink_shadow_add and the trainer against the model home; logical replication brings the rows here.';
END
$$;
COMMENT ON FUNCTION blink.refuse_on_shard() IS
'Shards only (db/sharding/shard.sql): refuses local writes to the tables the model home publishes.';

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['blink_models', 'vetted_models', 'blink_deployments',
                             'blink_promotion_reviews', 'blink_shadow_models', 'reason_codes']
    LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS shard_refuse_local_write ON blink.%I', t);
        EXECUTE format('CREATE TRIGGER shard_refuse_local_write BEFORE INSERT OR UPDATE OR DELETE '
                       'OR TRUNCATE ON blink.%I FOR EACH STATEMENT EXECUTE FUNCTION '
                       'blink.refuse_on_shard()', t);
    END LOOP;
END $$;

-- What the router's blink.shard_status shows of this shard: its champion and how its
-- subscription to the model home is doing.
CREATE OR REPLACE FUNCTION blink.shard_state(
    OUT champion_model_id bigint,
    OUT champion_deployment_id bigint,
    OUT subscription_enabled boolean,
    OUT subscription_running boolean,
    OUT last_received_at timestamptz
)
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
    SELECT (SELECT c.model_id FROM blink.champion() c),
           (SELECT c.id FROM blink.champion() c),
           (SELECT s.subenabled FROM pg_catalog.pg_subscription s
            WHERE s.subname = 'blink_models' AND s.subdbid = (
                SELECT d.oid FROM pg_catalog.pg_database d
                WHERE d.datname = pg_catalog.current_database())),
           EXISTS (SELECT FROM pg_catalog.pg_stat_subscription w
                   WHERE w.subname = 'blink_models' AND w.pid IS NOT NULL),
           (SELECT max(w.last_msg_receipt_time) FROM pg_catalog.pg_stat_subscription w
            WHERE w.subname = 'blink_models')
$$;
COMMENT ON FUNCTION blink.shard_state() IS
'Shards only: this shard''s champion, its subscription to the model home (enabled, apply worker running, last message). The router''s blink.shard_status calls it.';
REVOKE ALL ON FUNCTION blink.shard_state() FROM PUBLIC;
REVOKE ALL ON FUNCTION blink.refuse_on_shard() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION blink.shard_state() TO blink_app;
