-- Undo 0009_feature_vectors.
DROP TRIGGER feature_store_snapshots_vector ON blink.feature_store_snapshots;
DROP FUNCTION blink.fill_feature_vector();
ALTER TABLE blink.feature_store_snapshots DROP COLUMN feature_vector, DROP COLUMN feature_layout;
DROP TRIGGER blink_deployments_layout ON blink.blink_deployments;
DROP FUNCTION blink.fill_deployment_layout();
ALTER TABLE blink.blink_deployments DROP COLUMN feature_layout;
