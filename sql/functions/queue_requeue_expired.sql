-- requeue_expired: give back the tasks of workers that died (or stalled) holding them.
-- A running task whose lease ran out goes back to queued, or to dead when it has used all its
-- attempts; the expiry is recorded as that attempt's error. The holder, should it come back, is
-- fenced off by the attempt number. Run by maintenance and by every dispatcher on its poll timer;
-- SKIP LOCKED lets them all run it at once.
CREATE OR REPLACE FUNCTION nightshift.requeue_expired()
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count integer;
BEGIN
    /* requeue (or bury) every running task whose lease has expired; return how many */
    UPDATE nightshift.tasks AS t
       SET status = CASE WHEN t.attempt >= t.max_attempts THEN 'dead' ELSE 'queued' END
                    ::nightshift.task_status,
           run_after = now(),
           last_error = format('lease expired (worker %s)', t.locked_by),
           errors = t.errors || jsonb_build_array(jsonb_build_object(
               'attempt', t.attempt, 'worker', t.locked_by, 'at', now(),
               'error', format('lease expired at %s (worker %s)', t.locked_until, t.locked_by))),
           locked_until = NULL,
           finished_at = CASE WHEN t.attempt >= t.max_attempts THEN now() END
      FROM (SELECT e.id
              FROM nightshift.tasks AS e
             WHERE e.status = 'running'
               AND e.locked_until < now()
               FOR UPDATE SKIP LOCKED) AS expired
     WHERE t.id = expired.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

-- SECURITY DEFINER: nobody but the roles granted below may call it
REVOKE ALL ON FUNCTION nightshift.requeue_expired() FROM PUBLIC;

DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['nightshift_dispatcher', 'nightshift_scheduler'] LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION nightshift.requeue_expired() TO %I', v_role);
        END IF;
    END LOOP;
END
$$;
