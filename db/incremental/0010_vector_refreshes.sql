-- Which deployments' feature vectors are all rebuilt: the scheduled
-- blink_refresh_feature_vectors skips its scan of the snapshots for a deployment listed here.
-- Bookkeeping, not data: a refresh that finds it missing scans once and writes it again.
CREATE TABLE blink.feature_vector_refreshes (
    deployment_id bigint PRIMARY KEY REFERENCES blink.blink_deployments (id),
    completed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE blink.feature_vector_refreshes IS
'Deployments whose layout every stored feature vector was rebuilt for (blink_refresh_feature_vectors); later snapshots get that layout when written.';
