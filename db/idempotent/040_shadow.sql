-- Challengers scored beside the champion by rescoring: blink_shadow_add, blink_shadow_remove.

CREATE OR REPLACE FUNCTION public.blink_shadow_add(model_id bigint, reason text DEFAULT 'shadow scoring')
RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM blink.blink_models m WHERE m.id = blink_shadow_add.model_id) THEN
        RAISE EXCEPTION 'blink: no model with id % in blink.blink_models', blink_shadow_add.model_id
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM blink.vet_model(blink_shadow_add.model_id);  -- rescoring runs only vetted models
    INSERT INTO blink.blink_shadow_models (model_id, reason)
    VALUES (blink_shadow_add.model_id, blink_shadow_add.reason)
    ON CONFLICT DO NOTHING;
    RETURN FOUND;
END $$;
COMMENT ON FUNCTION public.blink_shadow_add(bigint, text) IS
'Vet a model and mark it as shadow: rescoring also audits its scores (source shadow) without changing any decision. Returns false when it already was.';

CREATE OR REPLACE FUNCTION public.blink_shadow_remove(model_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = blink, pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM blink.blink_shadow_models s WHERE s.model_id = blink_shadow_remove.model_id;
    RETURN FOUND;
END $$;
COMMENT ON FUNCTION public.blink_shadow_remove(bigint) IS
'Stop shadow scoring of a model (its audits stay). Returns false when it was not a shadow.';
