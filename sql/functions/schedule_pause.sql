-- pause / resume: stop and restart a target's scheduled runs without losing its settings.
-- A paused target is never enqueued by enqueue_due (run_now still works). On resume, next_run_at moves to
-- the first slot after now(): slots that passed while paused are skipped, not caught up
-- (trigger schedules_next_run). Pausing or resuming twice is harmless.
--   SELECT * FROM nightshift.pause('cloud_integration/7');
--   SELECT * FROM nightshift.resume('cloud_integration/7');
CREATE OR REPLACE FUNCTION nightshift.set_active(p_target text, p_active boolean)
RETURNS SETOF nightshift.schedules
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- resolved once: in the WHERE clause a volatile function would run for every row
    v_id bigint := nightshift.resolve_schedule(p_target);
BEGIN
    /* Activate or deactivate the target's schedule and return it. */
    RETURN QUERY
    UPDATE nightshift.schedules AS s
       SET is_active = p_active, updated_at = now()
     WHERE s.id = v_id
    RETURNING s.*;
END
$$;

CREATE OR REPLACE FUNCTION nightshift.pause(p_target text)
RETURNS SETOF nightshift.schedules
LANGUAGE sql
VOLATILE
AS $$
    /* Deactivate the target's schedule and return it. */
    SELECT * FROM nightshift.set_active(p_target, false);
$$;

CREATE OR REPLACE FUNCTION nightshift.resume(p_target text)
RETURNS SETOF nightshift.schedules
LANGUAGE sql
VOLATILE
AS $$
    /* Reactivate the target's schedule and return it. */
    SELECT * FROM nightshift.set_active(p_target, true);
$$;

REVOKE EXECUTE ON FUNCTION nightshift.set_active(text, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nightshift.pause(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nightshift.resume(text) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_scheduler') THEN
        GRANT EXECUTE ON FUNCTION nightshift.set_active(text, boolean) TO nightshift_scheduler;
        GRANT EXECUTE ON FUNCTION nightshift.pause(text) TO nightshift_scheduler;
        GRANT EXECUTE ON FUNCTION nightshift.resume(text) TO nightshift_scheduler;
    END IF;
END
$$;
