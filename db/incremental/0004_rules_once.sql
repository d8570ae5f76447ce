-- 0004_rules_once: each rule in one place.
-- Released: never edit (db/incremental/frozen.txt); change state in a new numbered file.

-- Audits written by a rescoring run, scheduled or called by hand, say 'rescore'. Rows written
-- before this revision keep 'cron' (audits are append-only).
ALTER TABLE blink.risk_score_audits DROP CONSTRAINT risk_score_audits_source_check;
ALTER TABLE blink.risk_score_audits ADD CONSTRAINT risk_score_audits_source_check
    CHECK (source IN ('rescore', 'on-demand', 'shadow', 'cron'));
COMMENT ON COLUMN blink.risk_score_audits.source IS
    'Who wrote the audit: rescore (a rescoring run), on-demand (blink_explain), shadow (a challenger scored by a rescoring run); cron on rows written before migration 0004.';

-- A new model row is checked by pyfuncs (pyfuncs.model_row), the same code that loads it:
-- artifact hashes, distinct feature names, threshold, risk bands (NULL: blink's default
-- bands, stored in the row so a model's bands never change after insert).
ALTER TABLE blink.blink_models ALTER COLUMN risk_bands DROP DEFAULT;
DROP TRIGGER blink_models_check_artifacts ON blink.blink_models;
DROP FUNCTION blink.check_model_artifacts();
CREATE OR REPLACE FUNCTION blink.check_model_row() RETURNS trigger
LANGUAGE plpython3u SET search_path = pg_catalog, pg_temp AS $$
from pyfuncs import api
return api.check_model_row(plpy, GD, TD)
$$;
COMMENT ON FUNCTION blink.check_model_row() IS
    'Trigger: checks a new model row (artifact hashes, feature names, threshold, risk bands) and fills the default risk bands.';

-- The reason text of features without a row of their own ('*') always exists, so pyfuncs
-- needs no copy of it.
CREATE FUNCTION blink.keep_default_reason() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' OR OLD.feature_name = '*' AND (TG_OP = 'DELETE' OR NEW.feature_name <> '*') THEN
        RAISE EXCEPTION 'blink: the default reason (feature_name ''*'') of blink.reason_codes cannot be removed'
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'Edit its code and reason_text instead.';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END $$;
COMMENT ON FUNCTION blink.keep_default_reason() IS
    'Trigger: the ''*'' row of blink.reason_codes (text of features without a row) may be edited, never removed.';
CREATE TRIGGER reason_codes_keep_default BEFORE UPDATE OR DELETE ON blink.reason_codes
    FOR EACH ROW EXECUTE FUNCTION blink.keep_default_reason();
CREATE TRIGGER reason_codes_keep_default_truncate BEFORE TRUNCATE ON blink.reason_codes
    FOR EACH STATEMENT EXECUTE FUNCTION blink.keep_default_reason();
INSERT INTO blink.reason_codes (feature_name, code, reason_text)
VALUES ('*', 'RC99', 'Other information in the account data')
ON CONFLICT DO NOTHING;
