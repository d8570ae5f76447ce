-- Undo 0006_categorical. Models with categorical features cannot be scored before 0006; the
-- per-category reason rows go with their column.
DELETE FROM blink.reason_codes WHERE category IS NOT NULL;
ALTER TABLE blink.reason_codes DROP CONSTRAINT reason_codes_default_any_category;
ALTER TABLE blink.reason_codes DROP CONSTRAINT reason_codes_feature_category_key;
ALTER TABLE blink.reason_codes DROP COLUMN category;
ALTER TABLE blink.reason_codes ADD CONSTRAINT reason_codes_pkey PRIMARY KEY (feature_name);
REVOKE INSERT (feature_categories) ON blink.blink_models FROM blink_trainer;
ALTER TABLE blink.blink_models DROP COLUMN feature_categories;
