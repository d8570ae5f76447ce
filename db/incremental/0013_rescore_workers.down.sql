-- Undo 0013_rescore_workers: nothing to undo here. The functions are blink's API, which a
-- downgrade removes whole before this file runs and an upgrade to head recreates.
SELECT 1;
