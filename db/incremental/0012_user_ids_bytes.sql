-- User ids compare byte by byte (COLLATE "C"), wherever blink stores one. An id is an opaque
-- key, never natural-language text: its order needs no locale, and the database's locale
-- made every comparison of ids a strcoll() call. Those comparisons were ~9% of a
-- blink_score_batch and every index lookup of a user descends ~20 of them
-- (docs/benchmarks.md, "User ids compare as bytes"). Equality is unchanged (every
-- deterministic collation compares equal strings equal), so no id stops matching; only
-- ORDER BY user_id now sorts by bytes.
--
-- Changing a column's collation keeps the table's rows in place and rebuilds the indexes
-- on it: on a large blink.risk_score_audits this takes a while, under the ACCESS EXCLUSIVE
-- lock ALTER TABLE holds (docs/architecture.md, "SQL: two layers").
--
-- blink.current_decisions reads risk_score_audits.user_id, which PostgreSQL will not
-- retype under a view; it is blink's API view, recreated with its grants at the end of
-- this upgrade (db/idempotent/070_rescore.sql, 900_privileges.sql).
DROP VIEW IF EXISTS blink.current_decisions;
ALTER TABLE blink.feature_store_snapshots ALTER COLUMN user_id TYPE text COLLATE "C";
ALTER TABLE blink.repayment_outcomes ALTER COLUMN user_id TYPE text COLLATE "C";
ALTER TABLE blink.risk_score_audits ALTER COLUMN user_id TYPE text COLLATE "C";
ALTER TABLE blink.unscorable_snapshots ALTER COLUMN user_id TYPE text COLLATE "C";
