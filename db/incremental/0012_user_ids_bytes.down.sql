-- Undo 0012_user_ids_bytes: user ids compare in the database's collation again.
ALTER TABLE blink.unscorable_snapshots ALTER COLUMN user_id TYPE text COLLATE "default";
ALTER TABLE blink.risk_score_audits ALTER COLUMN user_id TYPE text COLLATE "default";
ALTER TABLE blink.repayment_outcomes ALTER COLUMN user_id TYPE text COLLATE "default";
ALTER TABLE blink.feature_store_snapshots ALTER COLUMN user_id TYPE text COLLATE "default";
