-- Model deployment API: promotion and rollback. Safe to apply again.

CREATE OR REPLACE FUNCTION public.blink_promote(model_id bigint, reason text DEFAULT 'manual promotion')
RETURNS blink.blink_deployments
LANGUAGE plpython3u VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
from pyfuncs import api
return api.promote(plpy, GD, model_id, reason)
$$;
COMMENT ON FUNCTION public.blink_promote(bigint, text) IS
'Make a model of blink.blink_models the champion after loading it and scoring a test row. Appends to blink.blink_deployments; open sessions score with it from their next statement after commit.';

CREATE OR REPLACE FUNCTION public.blink_rollback(reason text DEFAULT 'manual rollback')
RETURNS blink.blink_deployments
LANGUAGE plpython3u VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
from pyfuncs import api
return api.rollback(plpy, GD, reason)
$$;
COMMENT ON FUNCTION public.blink_rollback(text) IS
'Return to the champion that preceded the current one (the deployment history is a stack: promotions push, rollbacks pop). Appends to blink.blink_deployments.';

REVOKE ALL ON FUNCTION public.blink_promote(bigint, text), public.blink_rollback(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.blink_promote(bigint, text), public.blink_rollback(text) TO blink_trainer;
