-- 0006_categorical: categorical features (text and boolean values) and reason texts per category.
-- Released: never edit (db/incremental/frozen.txt); change state in a new numbered file.

-- Each categorical feature's categories; a category's code is its position in the list, as in
-- the model text's pandas_categorical line (vetting checks the two agree).
-- NULL when every feature is numeric (so a downgrade loses nothing from such models).
ALTER TABLE blink.blink_models ADD COLUMN feature_categories jsonb
    CHECK (jsonb_typeof(feature_categories) = 'object');
COMMENT ON COLUMN blink.blink_models.feature_categories IS
    'Categorical features: {"feature": [category, ...]} (strings or booleans). A value''s code is its position in the list; a value not in the list scores as missing, as in LightGBM. Numeric features are absent; NULL when every feature is numeric.';
GRANT INSERT (feature_categories) ON blink.blink_models TO blink_trainer;

-- A reason text may be specific to one category of a categorical feature (category NULL: any
-- value). 'true' / 'false' name the categories of a boolean feature.
ALTER TABLE blink.reason_codes ADD COLUMN category text CHECK (category <> '');
COMMENT ON COLUMN blink.reason_codes.category IS
    'For a categorical feature: the category this text is for (true/false for booleans); NULL: every value of the feature.';
ALTER TABLE blink.reason_codes DROP CONSTRAINT reason_codes_pkey;
ALTER TABLE blink.reason_codes ADD CONSTRAINT reason_codes_feature_category_key
    UNIQUE NULLS NOT DISTINCT (feature_name, category);
ALTER TABLE blink.reason_codes ADD CONSTRAINT reason_codes_default_any_category
    CHECK (feature_name <> '*' OR category IS NULL);

-- blink_explain gains feature_category (db/idempotent/060_explain.sql).
DROP FUNCTION IF EXISTS public.blink_explain(text);
