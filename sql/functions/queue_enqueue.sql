-- enqueue: add one task, unless one for the same kind and subject is already in flight (rule 3).
-- Used by `nightshift enqueue`, the HTTP intake and anything else that is not a schedule. The insert
-- fires the tasks NOTIFY trigger, which wakes idle dispatchers.
CREATE OR REPLACE FUNCTION nightshift.enqueue(
    p_kind text,
    p_subject text,
    p_payload jsonb DEFAULT '{}',
    p_priority integer DEFAULT 0,
    p_run_after timestamptz DEFAULT NULL,  -- NULL: now
    p_max_attempts integer DEFAULT 3
) RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    /* the new task's id, or NULL when a task for (p_kind, p_subject) is already queued or running */
    INSERT INTO nightshift.tasks (kind, subject, payload, priority, run_after, max_attempts)
    VALUES (p_kind, p_subject, coalesce(p_payload, '{}'), p_priority, coalesce(p_run_after, now()),
            p_max_attempts)
    ON CONFLICT (kind, subject) WHERE status IN ('queued', 'running') DO NOTHING
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

-- SECURITY DEFINER: nobody but the roles granted below may call it
REVOKE ALL ON FUNCTION nightshift.enqueue(text, text, jsonb, integer, timestamptz, integer) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.enqueue(text, text, jsonb, integer, timestamptz, integer)
            TO nightshift_dispatcher;
    END IF;
END
$$;
