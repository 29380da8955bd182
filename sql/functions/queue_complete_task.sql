-- complete_task / complete_tasks: mark tasks done, fenced by their attempt.
-- A write from a stale holder (its lease expired and the task was requeued, re-claimed, cancelled
-- or finished by someone else) matches no row and changes nothing: the caller learns it lost.
CREATE OR REPLACE FUNCTION nightshift.complete_task(p_id bigint, p_attempt integer)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    /* true when the holder of attempt p_attempt completed task p_id; false for a stale holder */
    RETURN cardinality(nightshift.complete_tasks(ARRAY[p_id], ARRAY[p_attempt])) > 0;
END
$$;

-- The batch form: many (id, attempt) pairs in one statement (complete_and_claim runs the same UPDATE).
CREATE OR REPLACE FUNCTION nightshift.complete_tasks(p_ids bigint[], p_attempts integer[])
RETURNS bigint[]
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_done bigint[];
BEGIN
    /* complete each (id, attempt) pair still held; return the ids completed (stale ones are absent) */
    WITH done AS (
        UPDATE nightshift.tasks AS t
           SET status = 'done',
               locked_until = NULL,
               finished_at = now()
          FROM unnest(p_ids, p_attempts) AS u(id, attempt)
         WHERE t.id = u.id
           AND t.attempt = u.attempt
           AND t.status = 'running'
        RETURNING t.id
    )
    SELECT coalesce(array_agg(done.id), '{}') INTO v_done FROM done;
    RETURN v_done;
END
$$;

-- SECURITY DEFINER: nobody but the roles granted below may call it
REVOKE ALL ON FUNCTION nightshift.complete_task(bigint, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION nightshift.complete_tasks(bigint[], integer[]) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.complete_task(bigint, integer) TO nightshift_dispatcher;
        GRANT EXECUTE ON FUNCTION nightshift.complete_tasks(bigint[], integer[]) TO nightshift_dispatcher;
    END IF;
END
$$;
