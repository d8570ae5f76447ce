-- The model home: a normal blink database where the trainer writes and promotes. It
-- publishes what the scoring functions read to pick and load the champion, so every shard
-- holds the same models, libraries, deployments, shadows and reason texts (same ids).
-- Applied by `blink shards setup` (trainer/sharding.py); safe to run again.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_publication WHERE pubname = 'blink_models') THEN
        CREATE PUBLICATION blink_models FOR TABLE
            blink.blink_models, blink.vetted_models, blink.blink_deployments,
            blink.blink_promotion_reviews, blink.blink_shadow_models, blink.reason_codes;
    END IF;
END $$;
