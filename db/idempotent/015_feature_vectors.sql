-- How a feature document becomes the stored vector (blink.fill_feature_vector, on write).
-- The same rules as pyfuncs.features, for the values SQL converts exactly; any other value
-- makes the vector NULL, so the snapshot is read through pyfuncs.features (and its error).
-- LANGUAGE sql without SET so they inline; every name is schema-qualified.

-- A model's feature layout: its feature names in order and its categories. Models with the
-- same layout (a weekly retrain on the same features and categories) read the same vectors.
-- LANGUAGE sql without SET so it inlines; every name is schema-qualified.
CREATE OR REPLACE FUNCTION blink.feature_layout(names text[], categories jsonb)
RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.md5(pg_catalog.array_to_json(names)::pg_catalog.text OPERATOR(pg_catalog.||) '/'
                          OPERATOR(pg_catalog.||) coalesce(categories::pg_catalog.text, 'null'))::pg_catalog.uuid
$$;
COMMENT ON FUNCTION blink.feature_layout(text[], jsonb) IS
'The identity of a feature layout (feature names in order, categories): equal for models that read the same feature vector.';

-- A jsonb feature value as float8, NULL when missing or when SQL cannot convert it exactly
-- (not a number, or beyond +-1e300 / below 1e-300 in magnitude: pyfuncs converts those rows).
-- No SET search_path here on purpose: it would stop the planner from inlining the function,
-- which runs once per feature value; every name is schema-qualified instead.
CREATE OR REPLACE FUNCTION blink.feature_number(value jsonb)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN pg_catalog.jsonb_typeof(value) = 'number' THEN
        CASE WHEN pg_catalog.abs(value::pg_catalog.numeric) BETWEEN 1e-300 AND 1e300
                  OR value::pg_catalog.numeric = 0
             THEN value::pg_catalog.float8 END
    END
$$;
COMMENT ON FUNCTION blink.feature_number(jsonb) IS
'A feature value of a snapshot as float8 for the stored vectors and batch scoring; NULL when missing or not convertible in SQL (the batch path then converts that snapshot in Python, like blink_score).';

-- One feature's value: NaN when null or absent; a number as float8 (NULL beyond what
-- blink.feature_number converts); a category's code (its position in the model's list,
-- NaN when unseen, as in Python); NULL for a value of the wrong type.
CREATE OR REPLACE FUNCTION blink.feature_cell(value jsonb, categories jsonb)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN value IS NULL OR pg_catalog.jsonb_typeof(value) OPERATOR(pg_catalog.=) 'null'
            THEN 'NaN'::pg_catalog.float8
        WHEN categories IS NULL THEN blink.feature_number(value)
        WHEN pg_catalog.jsonb_typeof(value) OPERATOR(pg_catalog.=) ANY ('{string,boolean}')
            THEN coalesce((SELECT (e.ord OPERATOR(pg_catalog.-) 1)::pg_catalog.float8
                           FROM pg_catalog.jsonb_array_elements(categories)
                                WITH ORDINALITY AS e(label, ord)
                           WHERE e.label OPERATOR(pg_catalog.=) value),
                          'NaN'::pg_catalog.float8)
    END
$$;
COMMENT ON FUNCTION blink.feature_cell(jsonb, jsonb) IS
'A feature value as the model reads it (NaN missing, category code), NULL when SQL cannot convert it (see pyfuncs.features).';

CREATE OR REPLACE FUNCTION blink.feature_vector(features jsonb, names text[], categories jsonb)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN pg_catalog.bool_and(c.value IS NOT NULL)
                THEN pg_catalog.string_agg(pg_catalog.float8send(c.value), ''::pg_catalog.bytea
                                           ORDER BY n.ord) END
    FROM pg_catalog.unnest(names) WITH ORDINALITY AS n(name, ord)
    CROSS JOIN LATERAL (
        SELECT blink.feature_cell(features OPERATOR(pg_catalog.->) n.name,
                                  categories OPERATOR(pg_catalog.->) n.name) AS value) c
$$;
COMMENT ON FUNCTION blink.feature_vector(jsonb, text[], jsonb) IS
'A feature document as packed big-endian float8s in the order of names (categories: {feature: [labels]}); NULL when a value needs Python.';

-- Snapshots written before their champion's layout existed (before the first promotion, or
-- before a champion with other features or categories) are scored from JSON until rebuilt.
CREATE OR REPLACE FUNCTION public.blink_refresh_feature_vectors(max_rows integer DEFAULT 100000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deployment bigint;
    layout uuid;
    rebuilt bigint;
BEGIN
    IF max_rows < 1 THEN
        RAISE EXCEPTION 'blink: max_rows must be positive, got %', max_rows
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT c.id, c.feature_layout INTO deployment, layout FROM blink.champion() c;
    IF layout IS NULL THEN
        RETURN 0;  -- no champion (or one deployed before layouts existed): nothing to build
    END IF;
    -- Done for this deployment: new snapshots get its layout when written, so skip the scan
    -- (the scheduled job calls this every few minutes).
    IF EXISTS (SELECT FROM blink.feature_vector_refreshes r WHERE r.deployment_id = deployment) THEN
        RETURN 0;
    END IF;
    -- Any update rebuilds the row's vector (blink.fill_feature_vector); newest rows first.
    UPDATE blink.feature_store_snapshots s SET feature_layout = NULL
    WHERE s.id IN (SELECT f.id FROM blink.feature_store_snapshots f
                   WHERE f.feature_layout IS DISTINCT FROM layout
                   ORDER BY f.id DESC LIMIT max_rows);
    GET DIAGNOSTICS rebuilt = ROW_COUNT;
    IF rebuilt < max_rows THEN
        INSERT INTO blink.feature_vector_refreshes (deployment_id) VALUES (deployment)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN rebuilt;
END $$;
COMMENT ON FUNCTION public.blink_refresh_feature_vectors(integer) IS
'Rebuild up to max_rows stored feature vectors not built for the champion''s feature layout (newest first); returns how many. blink_schedule runs it every few minutes; after a promotion to a model with other features or categories, snapshots not yet rebuilt score from JSON (same scores, slower). Once a run finds fewer than max_rows, later runs for the same champion return 0 without scanning.';
