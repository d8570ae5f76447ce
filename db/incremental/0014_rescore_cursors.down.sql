-- Undo 0014_rescore_cursors.
DROP TABLE blink.rescore_cursors;
DROP TRIGGER feature_store_snapshots_rewritten ON blink.feature_store_snapshots;
DROP TRIGGER feature_store_snapshots_written ON blink.feature_store_snapshots;
DROP FUNCTION blink.snapshot_written();
DROP TRIGGER feature_store_snapshots_deleted ON blink.feature_store_snapshots;
DROP FUNCTION blink.snapshots_deleted();
DROP TRIGGER feature_store_snapshots_vector ON blink.feature_store_snapshots;
CREATE TRIGGER feature_store_snapshots_vector BEFORE INSERT OR UPDATE
    ON blink.feature_store_snapshots FOR EACH ROW EXECUTE FUNCTION blink.fill_feature_vector();
DROP INDEX blink.feature_store_snapshots_written;
ALTER TABLE blink.feature_store_snapshots DROP COLUMN written_xid;
