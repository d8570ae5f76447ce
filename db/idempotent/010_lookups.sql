-- The two rules every query shares: which model is the champion, and which snapshot is a
-- user's latest. Every query in db/, pyfuncs and the trainer reads them through these.
-- LANGUAGE sql, STABLE, no SET, not SECURITY DEFINER: the planner inlines them into the
-- calling query, so they cost nothing (a SET would stop that); names are schema-qualified.

CREATE OR REPLACE FUNCTION blink.champion()
RETURNS SETOF blink.blink_deployments
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT d.* FROM blink.blink_deployments d ORDER BY d.id DESC LIMIT 1
$$;
COMMENT ON FUNCTION blink.champion() IS
'The deployment that made the current champion (its model_id is the champion): the newest row of blink.blink_deployments. No row before the first promotion.';

CREATE OR REPLACE FUNCTION blink.latest_snapshot(user_id text, before timestamptz DEFAULT NULL)
RETURNS SETOF blink.feature_store_snapshots
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT f.* FROM blink.feature_store_snapshots f
    WHERE f.user_id = latest_snapshot.user_id
      AND (latest_snapshot.before IS NULL OR f.snapshot_at < latest_snapshot.before)
    ORDER BY f.snapshot_at DESC, f.id DESC
    LIMIT 1
$$;
COMMENT ON FUNCTION blink.latest_snapshot(text, timestamptz) IS
'A user''s latest snapshot (by snapshot_at, then id), or the latest taken strictly before "before" (the trainer''s point-in-time rule). One index descent.';

CREATE OR REPLACE FUNCTION blink.latest_snapshots()
RETURNS SETOF blink.feature_store_snapshots
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT l.* FROM (SELECT DISTINCT f.user_id FROM blink.feature_store_snapshots f) u
    CROSS JOIN LATERAL blink.latest_snapshot(u.user_id) l
$$;
COMMENT ON FUNCTION blink.latest_snapshots() IS
'Every user''s latest snapshot (blink.latest_snapshot of each user).';
