-- Undo 0004_rules_once. Audits written with source 'rescore' stay (audits are append-only);
-- the old check is added NOT VALID so they do not stop the downgrade.
DROP TRIGGER reason_codes_keep_default ON blink.reason_codes;
DROP TRIGGER reason_codes_keep_default_truncate ON blink.reason_codes;
DROP FUNCTION blink.keep_default_reason();
ALTER TABLE blink.risk_score_audits DROP CONSTRAINT risk_score_audits_source_check;
ALTER TABLE blink.risk_score_audits ADD CONSTRAINT risk_score_audits_source_check
    CHECK (source IN ('cron', 'on-demand', 'shadow')) NOT VALID;
COMMENT ON COLUMN blink.risk_score_audits.source IS NULL;
ALTER TABLE blink.blink_models ALTER COLUMN risk_bands SET DEFAULT
    '[{"band": "A", "max_probability": 0.05}, {"band": "B", "max_probability": 0.10},
      {"band": "C", "max_probability": 0.20}, {"band": "D", "max_probability": 0.35},
      {"band": "E", "max_probability": 1.0}]';
CREATE OR REPLACE FUNCTION blink.check_model_row() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    computed text := encode(sha256(NEW.compiled_lib), 'hex');
BEGIN
    IF NEW.compiled_lib_sha256 IS DISTINCT FROM computed THEN
        RAISE EXCEPTION 'blink: compiled_lib_sha256 % does not match the sha256 of compiled_lib (%)',
            NEW.compiled_lib_sha256, computed USING ERRCODE = 'data_corrupted';
    END IF;
    IF cardinality(NEW.feature_names) <> (SELECT count(DISTINCT f) FROM unnest(NEW.feature_names) f) THEN
        RAISE EXCEPTION 'blink: feature_names must be distinct, got %', NEW.feature_names
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION blink.check_model_row() IS 'Trigger: verifies the artifact hash and feature names of a new model.';
CREATE FUNCTION blink.check_model_artifacts() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.model_text_sha256 IS NOT NULL
       AND NEW.model_text_sha256 <> encode(sha256(convert_to(NEW.model_text, 'UTF8')), 'hex') THEN
        RAISE EXCEPTION 'blink: model_text_sha256 does not match the sha256 of model_text'
            USING ERRCODE = 'data_corrupted';
    END IF;
    IF NEW.treelite_model IS NOT NULL
       AND NEW.treelite_model_sha256 <> encode(sha256(NEW.treelite_model), 'hex') THEN
        RAISE EXCEPTION 'blink: treelite_model_sha256 does not match the sha256 of treelite_model'
            USING ERRCODE = 'data_corrupted';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION blink.check_model_artifacts() IS
    'Trigger: verifies the hashes of the trainer''s extra artifacts of a new model.';
CREATE TRIGGER blink_models_check_artifacts BEFORE INSERT ON blink.blink_models
    FOR EACH ROW EXECUTE FUNCTION blink.check_model_artifacts();
