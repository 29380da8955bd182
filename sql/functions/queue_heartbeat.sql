-- heartbeat: a worker extends the leases of the tasks it is still running.
-- Only rows it still holds (running, same attempt, locked by it) are extended; an id missing from
-- the result tells the worker it has lost that task (requeued after its lease, or cancelled), and
-- the daemon stops the run.
CREATE OR REPLACE FUNCTION nightshift.heartbeat(
    p_ids bigint[],
    p_worker text,
    p_attempts integer[],
    p_lease interval DEFAULT NULL  -- NULL: settings 'queue.lease_seconds' (default 60)
) RETURNS bigint[]
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_lease interval := p_lease;
    v_extended bigint[];
BEGIN
    /* extend the leases p_worker still holds; return their ids */
    IF v_lease IS NULL THEN
        SELECT make_interval(secs => coalesce(max(value::double precision), 60))
          INTO v_lease
          FROM nightshift.settings
         WHERE key = 'queue.lease_seconds';
    END IF;
    WITH extended AS (
        UPDATE nightshift.tasks AS t
           SET locked_until = now() + v_lease
          FROM unnest(p_ids, p_attempts) AS u(id, attempt)
         WHERE t.id = u.id
           AND t.attempt = u.attempt
           AND t.status = 'running'
           AND t.locked_by = p_worker
        RETURNING t.id
    )
    SELECT coalesce(array_agg(extended.id), '{}') INTO v_extended FROM extended;
    RETURN v_extended;
END
$$;

-- SECURITY DEFINER: nobody but the roles granted below may call it
REVOKE ALL ON FUNCTION nightshift.heartbeat(bigint[], text, integer[], interval) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.heartbeat(bigint[], text, integer[], interval)
            TO nightshift_dispatcher;
    END IF;
END
$$;
