-- scheduled_kinds: the task kinds that schedules can name and enqueue_due enqueues, from the
-- task_kinds table (the one place that lists them).
--   SELECT nightshift.scheduled_kinds();   -- {drift-scan,compliance-scan,cost-analysis}
CREATE OR REPLACE FUNCTION nightshift.scheduled_kinds()
RETURNS text[]
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    /* every kind with scheduled = true, the narrowest target first (pipelines, integrations, organizations) */
    SELECT coalesce(array_agg(k.kind ORDER BY array_position(
                        ARRAY['pipeline', 'cloud_integration', 'organization'], k.target_type), k.kind),
                    '{}')
      FROM nightshift.task_kinds AS k
     WHERE k.scheduled
$$;

-- require_scheduled_kind: raise invalid_parameter_value, naming the valid kinds, unless p_kind is
-- NULL (meaning every kind) or a scheduled kind.
CREATE OR REPLACE FUNCTION nightshift.require_scheduled_kind(p_kind text)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_kinds text[] := nightshift.scheduled_kinds();
BEGIN
    /* refuse a kind that nothing schedules */
    IF p_kind IS NOT NULL AND NOT p_kind = ANY (v_kinds) THEN
        RAISE EXCEPTION 'unknown scheduled kind %', quote_literal(p_kind)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'the scheduled kinds are ' || array_to_string(v_kinds, ', ');
    END IF;
END
$$;
