-- Undo 0005_trust. The previous blink_promote(bigint, text) comes back with the API at head.
GRANT INSERT (deployment_id) ON blink.blink_promotion_reviews TO blink_trainer;
DROP TABLE blink.unscorable_snapshots;
DROP TABLE blink.vetted_models;
