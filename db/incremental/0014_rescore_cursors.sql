-- 0014_rescore_cursors: a rescoring run finds its pending users among the snapshots written
-- since the last complete run, not among every user (docs/rescoring.md, "Finding the
-- pending users").

-- The transaction that wrote the row: set on INSERT (by the default, or by the trigger below
-- if a writer set it), on an UPDATE that moves the row to another user or time, and on the
-- row that becomes a user's latest when the latest is deleted. Rows written before this
-- migration keep NULL: the first run of each model reads every user anyway. Added without
-- a default, then given one, so the table is not rewritten.
ALTER TABLE blink.feature_store_snapshots ADD COLUMN written_xid xid8;
ALTER TABLE blink.feature_store_snapshots ALTER COLUMN written_xid SET DEFAULT pg_current_xact_id();
COMMENT ON COLUMN blink.feature_store_snapshots.written_xid IS
    'blink''s: the transaction that wrote the row (on INSERT, on an UPDATE of user_id or snapshot_at, and on a user''s new latest row when a DELETE removed the latest). Rescoring reads the rows written since its last complete run through it.';
CREATE INDEX feature_store_snapshots_written
    ON blink.feature_store_snapshots (written_xid) WHERE written_xid IS NOT NULL;

CREATE FUNCTION blink.snapshot_written() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.written_xid := pg_current_xact_id();
    RETURN NEW;
END $$;
COMMENT ON FUNCTION blink.snapshot_written() IS
    'Trigger: written_xid is the transaction writing the row, whatever a writer put there.';
-- Each fires only when needed: on INSERT when a writer set written_xid itself (a copy of
-- another table's rows, NULL or another server's); on UPDATE when the row moves to another
-- user or time, or its written_xid is set. A refresh of the stored vectors (an UPDATE of
-- feature_vector) fires neither.
CREATE TRIGGER feature_store_snapshots_written BEFORE INSERT ON blink.feature_store_snapshots
    FOR EACH ROW WHEN (NEW.written_xid IS DISTINCT FROM pg_current_xact_id())
    EXECUTE FUNCTION blink.snapshot_written();
CREATE TRIGGER feature_store_snapshots_rewritten
    BEFORE UPDATE OF user_id, snapshot_at, written_xid ON blink.feature_store_snapshots
    FOR EACH ROW WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id
                       OR OLD.snapshot_at IS DISTINCT FROM NEW.snapshot_at
                       OR OLD.written_xid IS DISTINCT FROM NEW.written_xid)
    EXECUTE FUNCTION blink.snapshot_written();

-- The stored vector is rebuilt when what it is built from is written (0009 rebuilt it on
-- any UPDATE): so marking a row written (written_xid), or moving it to another user or
-- time, does not rebuild it. A refresh still does (it sets feature_layout), and so does an
-- UPDATE that sets the document or the vector itself.
DROP TRIGGER feature_store_snapshots_vector ON blink.feature_store_snapshots;
CREATE TRIGGER feature_store_snapshots_vector
    BEFORE INSERT OR UPDATE OF features, feature_vector, feature_layout
    ON blink.feature_store_snapshots FOR EACH ROW EXECUTE FUNCTION blink.fill_feature_vector();

-- A deleted snapshot that was its user's latest makes an older one the latest again: that
-- one counts as written now, so the next run rescores the user. Once per statement, over
-- the newest deleted row of each user; a purge of old rows (never the latest) writes
-- nothing. SECURITY DEFINER: a role that may delete snapshots need not update them.
CREATE FUNCTION blink.snapshots_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE blink.feature_store_snapshots s SET written_xid = pg_current_xact_id()
    FROM (SELECT DISTINCT ON (g.user_id) g.user_id, g.snapshot_at, g.id FROM gone g
          ORDER BY g.user_id, g.snapshot_at DESC, g.id DESC) d
    CROSS JOIN LATERAL blink.latest_snapshot(d.user_id) l
    WHERE s.id = l.id AND (d.snapshot_at, d.id) > (l.snapshot_at, l.id);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION blink.snapshots_deleted() IS
    'Trigger: when a user''s latest snapshot is deleted, the new latest counts as written now (written_xid).';
CREATE TRIGGER feature_store_snapshots_deleted AFTER DELETE ON blink.feature_store_snapshots
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
    EXECUTE FUNCTION blink.snapshots_deleted();

-- Per model and share of the users (worker of workers): every snapshot written by a
-- transaction older than written_before has been looked at by a complete run. Transaction
-- ids are one server's (and its standbys'): a cursor of another cluster (restored from a
-- dump) is not used, see cluster_id.
CREATE TABLE blink.rescore_cursors (
    model_id       bigint NOT NULL REFERENCES blink.blink_models (id),
    workers        integer NOT NULL CHECK (workers >= 1),
    worker         integer NOT NULL CHECK (worker >= 0 AND worker < workers),
    written_before xid8 NOT NULL,
    completed_at   timestamptz NOT NULL,
    swept_at       timestamptz NOT NULL,
    cluster_id     bigint NOT NULL,
    PRIMARY KEY (model_id, workers, worker)
);
COMMENT ON TABLE blink.rescore_cursors IS
    'Where rescoring goes on from, per model and share: snapshots written by transactions before written_before were looked at by the complete run of completed_at (now() - completed_at: how far behind rescoring is); swept_at is its last run over every user; cluster_id the server''s system identifier. Delete rows to make the next runs read every user.';
