-- Undo 0002_trainer.
DROP TABLE blink.blink_promotion_reviews;
DROP TRIGGER blink_models_check_artifacts ON blink.blink_models;
DROP FUNCTION blink.check_model_artifacts();
ALTER TABLE blink.blink_models
    DROP CONSTRAINT blink_models_treelite_hashed,
    DROP COLUMN report_html,
    DROP COLUMN treelite_model_sha256,
    DROP COLUMN treelite_model,
    DROP COLUMN model_text_sha256;
DROP TABLE blink.repayment_outcomes;
