-- set_frequency: how often a target runs. 'UNMONITORED' stops scheduled runs (run_now still works).
-- Creates the schedule row of a pipeline that has none, so this is also how a pipeline gets drift scans.
-- next_run_at moves to the first slot of the new frequency (trigger schedules_next_run); setting the
-- same frequency again changes nothing.
--   SELECT * FROM nightshift.set_frequency('pipeline/42', 'HOURLY');
CREATE OR REPLACE FUNCTION nightshift.set_frequency(p_target text, p_frequency text)
RETURNS SETOF nightshift.schedules
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_valid text[] := enum_range(NULL::nightshift.frequency)::text[];
    v_id bigint;
BEGIN
    /* Set the target's frequency (creating its schedule if needed) and return the schedule row. */
    -- checked before touching the target, so a typo never creates a schedule row
    IF p_frequency IS NULL OR NOT upper(p_frequency) = ANY (v_valid) THEN
        RAISE EXCEPTION 'unknown frequency %', quote_nullable(p_frequency)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'the frequencies are ' || array_to_string(v_valid, ', ');
    END IF;
    v_id := nightshift.resolve_schedule(p_target, true);
    RETURN QUERY
    UPDATE nightshift.schedules AS s
       SET frequency = upper(p_frequency)::nightshift.frequency,
           updated_at = CASE WHEN s.frequency::text = upper(p_frequency) THEN s.updated_at ELSE now() END
     WHERE s.id = v_id
    RETURNING s.*;
END
$$;

REVOKE EXECUTE ON FUNCTION nightshift.set_frequency(text, text) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_scheduler') THEN
        GRANT EXECUTE ON FUNCTION nightshift.set_frequency(text, text) TO nightshift_scheduler;
    END IF;
END
$$;
