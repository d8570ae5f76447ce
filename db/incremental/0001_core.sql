-- 0001_core: schema blink, roles, feature store, models, deployments, audits, guards.
-- Released: never edit (db/incremental/frozen.txt); change state in a new numbered file.

CREATE EXTENSION IF NOT EXISTS plpython3u;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'blink_app') THEN
        CREATE ROLE blink_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'blink_trainer') THEN
        CREATE ROLE blink_trainer NOLOGIN;
    END IF;
END $$;
COMMENT ON ROLE blink_app IS 'blink: may call the scoring functions and read risk_score_audits';
COMMENT ON ROLE blink_trainer IS 'blink: may read training data, insert models and promote them';

CREATE SCHEMA blink;
COMMENT ON SCHEMA blink IS 'blink: in-database credit-risk scoring (tables; the API is in public)';

CREATE TABLE blink.feature_store_snapshots (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     text NOT NULL CHECK (user_id <> ''),
    snapshot_at timestamptz NOT NULL DEFAULT now(),
    features    jsonb NOT NULL CHECK (jsonb_typeof(features) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- "Latest snapshot of user X" is one descent of this index.
CREATE INDEX feature_store_snapshots_user_latest
    ON blink.feature_store_snapshots (user_id, snapshot_at DESC, id DESC);
COMMENT ON TABLE blink.feature_store_snapshots IS
    'Feature documents per user over time; blink scores the latest one (by snapshot_at, then id).';

CREATE TABLE blink.blink_models (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version              text NOT NULL UNIQUE CHECK (version <> ''),
    created_at           timestamptz NOT NULL DEFAULT now(),
    created_by           text NOT NULL DEFAULT session_user,
    feature_names        text[] NOT NULL CHECK (cardinality(feature_names) > 0),
    model_text           text NOT NULL,
    compiled_lib         bytea NOT NULL,
    compiled_lib_sha256  text NOT NULL CHECK (compiled_lib_sha256 ~ '^[0-9a-f]{64}$'),
    compiled_platform    text NOT NULL,
    decision_threshold   double precision NOT NULL CHECK (decision_threshold > 0 AND decision_threshold < 1),
    risk_bands           jsonb NOT NULL DEFAULT '[{"band": "A", "max_probability": 0.05},
                                                   {"band": "B", "max_probability": 0.10},
                                                   {"band": "C", "max_probability": 0.20},
                                                   {"band": "D", "max_probability": 0.35},
                                                   {"band": "E", "max_probability": 1.0}]'
                         CHECK (jsonb_typeof(risk_bands) = 'array' AND jsonb_array_length(risk_bands) > 0),
    metrics              jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metrics) = 'object'),
    params               jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    library_versions     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(library_versions) = 'object')
);
COMMENT ON TABLE blink.blink_models IS
    'Trained models and their artifacts. Rows are immutable; which one is live is blink.blink_deployments.';
COMMENT ON COLUMN blink.blink_models.compiled_lib IS
    'TL2cgen-compiled shared library; loaded only after its sha256 matches compiled_lib_sha256.';
COMMENT ON COLUMN blink.blink_models.compiled_platform IS
    'Where compiled_lib was built (machine-os-libc); elsewhere blink falls back to model_text.';

CREATE TABLE blink.blink_deployments (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id        bigint NOT NULL REFERENCES blink.blink_models (id),
    action          text NOT NULL CHECK (action IN ('promote', 'rollback')),
    reason          text NOT NULL CHECK (reason <> ''),
    rollback_to_id  bigint REFERENCES blink.blink_deployments (id),
    deployed_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    deployed_by     text NOT NULL DEFAULT session_user
);
COMMENT ON TABLE blink.blink_deployments IS
    'Append-only history: the newest row names the champion; rollback_to_id is where a rollback from it returns.';

CREATE TABLE blink.risk_score_audits (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id             text NOT NULL,
    snapshot_id         bigint NOT NULL,
    snapshot_at         timestamptz NOT NULL,
    model_id            bigint NOT NULL REFERENCES blink.blink_models (id),
    probability_default double precision NOT NULL
                        CHECK (probability_default >= 0 AND probability_default <= 1),
    decision            text NOT NULL CHECK (decision IN ('approved', 'declined')),
    risk_band           text NOT NULL,
    features            jsonb NOT NULL,
    reasons             jsonb NOT NULL DEFAULT '[]',
    source              text NOT NULL CHECK (source IN ('cron', 'on-demand', 'shadow')),
    scored_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (snapshot_id, model_id)
);
CREATE INDEX risk_score_audits_user ON blink.risk_score_audits (user_id, scored_at DESC);
COMMENT ON TABLE blink.risk_score_audits IS
    'Append-only audit of every decision: inputs, model, probability, decision and reason codes.';

-- Integrity guards: models and history are never rewritten.
CREATE FUNCTION blink.refuse_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'blink: rows of %.% are immutable (% refused)', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Insert a new row instead; promote or roll back with blink_promote()/blink_rollback().';
END $$;
COMMENT ON FUNCTION blink.refuse_change() IS 'Trigger: refuses UPDATE/DELETE/TRUNCATE on append-only tables.';

CREATE FUNCTION blink.check_model_row() RETURNS trigger
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

CREATE TRIGGER blink_models_check BEFORE INSERT ON blink.blink_models
    FOR EACH ROW EXECUTE FUNCTION blink.check_model_row();
-- Statement-level, so they fire even when no row matches (and on TRUNCATE).
CREATE TRIGGER blink_models_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON blink.blink_models
    FOR EACH STATEMENT EXECUTE FUNCTION blink.refuse_change();
CREATE TRIGGER blink_deployments_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
    ON blink.blink_deployments FOR EACH STATEMENT EXECUTE FUNCTION blink.refuse_change();
CREATE TRIGGER risk_score_audits_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
    ON blink.risk_score_audits FOR EACH STATEMENT EXECUTE FUNCTION blink.refuse_change();

-- Privileges. Scoring runs as the functions' owner, so blink_app needs no table access.
REVOKE ALL ON SCHEMA blink FROM PUBLIC;
GRANT USAGE ON SCHEMA blink TO blink_app, blink_trainer;
GRANT SELECT ON blink.risk_score_audits TO blink_app;
GRANT SELECT ON blink.feature_store_snapshots, blink.blink_models, blink.blink_deployments,
    blink.risk_score_audits TO blink_trainer;
GRANT INSERT (version, feature_names, model_text, compiled_lib, compiled_lib_sha256,
    compiled_platform, decision_threshold, risk_bands, metrics, params, library_versions)
    ON blink.blink_models TO blink_trainer;
