-- Undo 0010_vector_refreshes.
DROP TABLE blink.feature_vector_refreshes;
