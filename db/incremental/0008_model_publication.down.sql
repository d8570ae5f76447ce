-- Undo 0008_model_publication.
ALTER TABLE blink.reason_codes REPLICA IDENTITY DEFAULT;
