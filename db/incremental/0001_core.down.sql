-- Undo 0001_core. Nothing cascades: an object of yours that depends on these stops the downgrade.
DROP TABLE blink.risk_score_audits;
DROP TABLE blink.blink_deployments;
DROP TABLE blink.blink_models;
DROP TABLE blink.feature_store_snapshots;
DROP FUNCTION blink.refuse_change();
DROP FUNCTION blink.check_model_row();
DROP SCHEMA blink;
-- Roles are cluster-wide: drop them only when no other database still uses them.
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['blink_app', 'blink_trainer'] LOOP
        BEGIN
            EXECUTE format('DROP ROLE IF EXISTS %I', r);
        EXCEPTION WHEN SQLSTATE '2BP01' THEN
            RAISE NOTICE 'blink: role % kept: other databases still use it', r;
        END;
    END LOOP;
END $$;
