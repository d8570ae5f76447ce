-- blink_score reads the champion as two constants folded into its cached plan
-- (blink.champion_model_id(), blink.champion_layout(): db/idempotent/010_lookups.sql).
-- This trigger redefines them after every deployment, inside the deploying transaction: an
-- aborted promotion leaves them as they were, and the commit invalidates every session's
-- cached plans that folded them, so the next statement scores with the new champion.
CREATE FUNCTION blink.champion_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM blink.define_champion_constants();
    RETURN NULL;
END $$;
COMMENT ON FUNCTION blink.champion_changed() IS
'Trigger: redefines the champion constants (blink.define_champion_constants) after a deployment.';
CREATE TRIGGER blink_deployments_champion AFTER INSERT ON blink.blink_deployments
    FOR EACH ROW EXECUTE FUNCTION blink.champion_changed();
-- ALWAYS: a shard receives deployments from the model home by logical replication, whose
-- apply worker fires only triggers enabled ALWAYS (or REPLICA).
ALTER TABLE blink.blink_deployments ENABLE ALWAYS TRIGGER blink_deployments_champion;
