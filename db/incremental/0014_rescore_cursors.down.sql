-- Undo 0014_rescore_cursors.
DROP TABLE blink.rescore_cursors;
DROP TRIGGER feature_store_snapshots_rewritten ON blink.feature_store_snapshots;
DROP TRIGGER feature_store_snapshots_written ON blink.feature_store_snapshots;
DROP FUNCTION blink.snapshot_written();
DROP INDEX blink.feature_store_snapshots_written;
ALTER TABLE blink.feature_store_snapshots DROP COLUMN written_xid;
