-- Typed feature vectors beside the JSON documents (issue 12): blink_score and the batch
-- queries read a snapshot's features as packed float8s when the vector was built for the
-- champion's feature layout, and parse the JSON document otherwise (same scores, slower).

ALTER TABLE blink.blink_deployments ADD COLUMN feature_layout uuid;
COMMENT ON COLUMN blink.blink_deployments.feature_layout IS
'blink.feature_layout of the deployed model (filled on insert): which stored feature vectors it reads.';
-- Deployments made before this revision keep no layout: their champion's snapshots score
-- from JSON (same scores) until the next promotion, as the trigger below fills it.
CREATE FUNCTION blink.fill_deployment_layout() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT blink.feature_layout(m.feature_names, m.feature_categories) INTO NEW.feature_layout
    FROM blink.blink_models m WHERE m.id = NEW.model_id;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION blink.fill_deployment_layout() IS
'Trigger: records the deployed model''s feature layout in its blink_deployments row.';
-- A replica (shard) keeps the value the model home computed: the trigger does not fire there.
CREATE TRIGGER blink_deployments_layout BEFORE INSERT ON blink.blink_deployments
    FOR EACH ROW EXECUTE FUNCTION blink.fill_deployment_layout();

ALTER TABLE blink.feature_store_snapshots
    ADD COLUMN feature_vector bytea,
    ADD COLUMN feature_layout uuid;
COMMENT ON COLUMN blink.feature_store_snapshots.feature_vector IS
'The features as the champion reads them, filled on every insert and update: big-endian float8s (float8send) in the model''s order, NaN missing, category codes for categorical features. NULL when a value needs Python''s conversion (or its error).';
COMMENT ON COLUMN blink.feature_store_snapshots.feature_layout IS
'blink.feature_layout the vector was built for (the champion''s at the time); NULL before any champion.';

-- SECURITY DEFINER: writers of snapshots need not read the model table. Any write rebuilds
-- the vector, so a vector never disagrees with its document.
CREATE FUNCTION blink.fill_feature_vector() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    layout uuid;
    names text[];
    categories jsonb;
BEGIN
    SELECT c.feature_layout, m.feature_names, m.feature_categories INTO layout, names, categories
    FROM blink.champion() c JOIN blink.blink_models m ON m.id = c.model_id;
    NEW.feature_layout := layout;
    NEW.feature_vector := CASE WHEN layout IS NOT NULL
                               THEN blink.feature_vector(NEW.features, names, categories) END;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION blink.fill_feature_vector() IS
'Trigger: builds a snapshot''s feature vector for the champion''s layout (blink.feature_vector).';
CREATE TRIGGER feature_store_snapshots_vector BEFORE INSERT OR UPDATE
    ON blink.feature_store_snapshots FOR EACH ROW EXECUTE FUNCTION blink.fill_feature_vector();

-- blink_score's internal half now takes the stored vector (db/idempotent/020_score.sql).
DROP FUNCTION IF EXISTS blink.score_snapshot(bigint, text, bigint, text);
