-- 0008_model_publication: every table a shard receives from the model home by logical
-- replication needs a replica identity so that UPDATE and DELETE at the home replicate
-- (docs/scale-out.md, "Sharding by user"). The others have primary keys; reason_codes is
-- identified by its unique, NOT NULL code.
ALTER TABLE blink.reason_codes REPLICA IDENTITY USING INDEX reason_codes_code_key;
