-- 0005_trust: code the server runs is built by the server; bad rows are quarantined;
-- only blink_promote attaches a review to a deployment.
-- Released: never edit (db/incremental/frozen.txt); change state in a new numbered file.

-- The library blink executes for a model: built by the server itself from the model text, in
-- a separate process that also parsed and checked that text (pyfuncs.vet). The trainer's own
-- compiled_lib in blink.blink_models is never loaded.
CREATE TABLE blink.vetted_models (
    model_id            bigint PRIMARY KEY REFERENCES blink.blink_models (id),
    compiled_lib        bytea NOT NULL,
    compiled_lib_sha256 text NOT NULL CHECK (compiled_lib_sha256 ~ '^[0-9a-f]{64}$'),
    compiled_platform   text NOT NULL,
    model_text_sha256   text NOT NULL CHECK (model_text_sha256 ~ '^[0-9a-f]{64}$'),
    parity_max_abs_diff double precision NOT NULL CHECK (parity_max_abs_diff >= 0),
    library_versions    jsonb NOT NULL CHECK (jsonb_typeof(library_versions) = 'object'),
    vetted_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    vetted_by           text NOT NULL DEFAULT session_user
);
COMMENT ON TABLE blink.vetted_models IS
    'Models blink has vetted: model text parsed and compiled by the server in a separate process, compiled library checked against LightGBM. Only these libraries are ever executed. Written by blink_promote and blink_shadow_add only.';
CREATE TRIGGER vetted_models_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
    ON blink.vetted_models FOR EACH STATEMENT EXECUTE FUNCTION blink.refuse_change();
GRANT SELECT (model_id, compiled_lib_sha256, compiled_platform, model_text_sha256,
    parity_max_abs_diff, library_versions, vetted_at, vetted_by)
    ON blink.vetted_models TO blink_trainer;

-- Snapshots a rescoring run could not score, with the reason: recorded once per model,
-- skipped by later runs, visible to monitoring. A new snapshot of the user is scored as usual.
CREATE TABLE blink.unscorable_snapshots (
    snapshot_id bigint NOT NULL,
    model_id    bigint NOT NULL REFERENCES blink.blink_models (id),
    user_id     text NOT NULL,
    error       text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (snapshot_id, model_id)
);
COMMENT ON TABLE blink.unscorable_snapshots IS
    'Quarantine: snapshots rescoring could not score (the error names the feature), once per model. Append-only.';
CREATE INDEX unscorable_snapshots_recorded ON blink.unscorable_snapshots (recorded_at);
CREATE TRIGGER unscorable_snapshots_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
    ON blink.unscorable_snapshots FOR EACH STATEMENT EXECUTE FUNCTION blink.refuse_change();
GRANT SELECT ON blink.unscorable_snapshots TO blink_trainer;

-- A review that names a deployment is written by blink_promote in the promotion's own
-- transaction; the trainer writes only reviews that changed nothing (refused, evaluated).
REVOKE INSERT (deployment_id) ON blink.blink_promotion_reviews FROM blink_trainer;
-- blink_promote gains its review argument (db/idempotent/030_deploy.sql).
DROP FUNCTION IF EXISTS public.blink_promote(bigint, text);
