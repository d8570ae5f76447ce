-- blink_rescore_pending can split the users among workers, one session each
-- (worker, workers), and blink_schedule installs one job per worker (rescore_workers): both
-- gain arguments, so their old signatures go here and db/idempotent/070_rescore.sql and
-- 080_schedule.sql create the new ones at the end of this upgrade. pg_cron's jobs call them
-- by name with named arguments, which the new signatures still take.
DROP FUNCTION IF EXISTS public.blink_rescore_pending(integer, double precision, integer);
DROP FUNCTION IF EXISTS public.blink_schedule(text, integer, double precision, interval, text);
