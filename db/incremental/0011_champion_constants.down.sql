-- Undo 0011_champion_constants.
DROP TRIGGER blink_deployments_champion ON blink.blink_deployments;
DROP FUNCTION blink.champion_changed();
