-- release_tasks: a dispatcher that is shutting down gives its unfinished tasks back.
-- Not a failure of the task: it is queued again at once, and since `attempt` (the fencing token)
-- never goes back, max_attempts grows by one so the interrupted attempt is not spent.
CREATE OR REPLACE FUNCTION nightshift.release_tasks(p_ids bigint[], p_attempts integer[], p_reason text)
RETURNS bigint[]
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_released bigint[];
BEGIN
    /* requeue each (id, attempt) pair still held; return the ids released */
    WITH released AS (
        UPDATE nightshift.tasks AS t
           SET status = 'queued',
               run_after = now(),
               max_attempts = t.max_attempts + 1,
               last_error = p_reason,
               errors = t.errors || jsonb_build_array(jsonb_build_object(
                   'attempt', t.attempt, 'worker', t.locked_by, 'at', now(), 'error', p_reason)),
               locked_until = NULL
          FROM unnest(p_ids, p_attempts) AS u(id, attempt)
         WHERE t.id = u.id
           AND t.attempt = u.attempt
           AND t.status = 'running'
        RETURNING t.id
    )
    SELECT coalesce(array_agg(released.id), '{}') INTO v_released FROM released;
    RETURN v_released;
END
$$;

-- SECURITY DEFINER: nobody but the roles granted below may call it
REVOKE ALL ON FUNCTION nightshift.release_tasks(bigint[], integer[], text) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.release_tasks(bigint[], integer[], text) TO nightshift_dispatcher;
    END IF;
END
$$;
