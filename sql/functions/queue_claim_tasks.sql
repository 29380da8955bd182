-- claim_tasks: hand up to p_limit due tasks to one worker, in one statement (DESIGN.md rule 4).
-- Highest priority first, then oldest run_after. SKIP LOCKED lets any number of dispatchers claim
-- at once without waiting on each other; each claim increments `attempt`, the fencing token every
-- later write by this worker must name.
CREATE OR REPLACE FUNCTION nightshift.claim_tasks(
    p_worker text,
    p_kinds text[],      -- NULL: any kind
    p_limit integer,
    p_lease interval
) RETURNS SETOF nightshift.tasks
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    /* claim the next due tasks for p_worker with a lease of p_lease */
    -- plpgsql (not a SQL function) so the plan is cached per session, for callers that claim in a loop.
    RETURN QUERY
    UPDATE nightshift.tasks AS t
       SET status = 'running',
           attempt = t.attempt + 1,
           locked_by = p_worker,
           locked_until = now() + p_lease,
           started_at = now()
      FROM (SELECT q.id
              FROM nightshift.tasks AS q
             WHERE q.status = 'queued'
               AND q.run_after <= now()
               AND (p_kinds IS NULL OR q.kind = ANY (p_kinds))
             ORDER BY q.priority DESC, q.run_after, q.id
             LIMIT p_limit
               FOR UPDATE SKIP LOCKED) AS picked
     WHERE t.id = picked.id
    RETURNING t.*;
END
$$;

-- claim_tasks_after: the same claim started at a keyset position (the daemon's complete_and_claim
-- claims the same way, and a test checks that both claim the same tasks).
-- Claimed rows leave dead entries at the head of tasks_claim_idx until VACUUM removes them; a claim
-- that starts at the head walks all of them, and a busy queue slows down by half within seconds.
-- A dispatcher passes the position (priority, run_after, id) of the last task it claimed, and the
-- scan starts there. What could sort before that position (a task inserted with a higher priority
-- or an older run_after, a claim rolled back) is found by the plain claim_tasks, which this
-- function falls back to when the rest of the priority level is empty, and which dispatchers use
-- after every NOTIFY and poll tick.
CREATE OR REPLACE FUNCTION nightshift.claim_tasks_after(
    p_worker text,
    p_kinds text[],
    p_limit integer,
    p_lease interval,
    p_after_priority integer,       -- all three NULL: claim from the head, as claim_tasks
    p_after_run_after timestamptz,
    p_after_id bigint
) RETURNS SETOF nightshift.tasks
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_claimed integer := 0;
BEGIN
    /* claim up to p_limit due tasks, scanning from after the given claim-order position */
    IF p_after_id IS NOT NULL THEN
        RETURN QUERY
        UPDATE nightshift.tasks AS t
           SET status = 'running',
               attempt = t.attempt + 1,
               locked_by = p_worker,
               locked_until = now() + p_lease,
               started_at = now()
          FROM (SELECT q.id
                  FROM nightshift.tasks AS q
                 WHERE q.status = 'queued'
                   AND q.priority = p_after_priority
                   AND (q.run_after, q.id) > (p_after_run_after, p_after_id)
                   AND q.run_after <= now()
                   AND (p_kinds IS NULL OR q.kind = ANY (p_kinds))
                 ORDER BY q.priority DESC, q.run_after, q.id
                 LIMIT p_limit
                   FOR UPDATE SKIP LOCKED) AS picked
         WHERE t.id = picked.id
        RETURNING t.*;
        GET DIAGNOSTICS v_claimed = ROW_COUNT;
        IF v_claimed >= p_limit THEN
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT * FROM nightshift.claim_tasks(p_worker, p_kinds, p_limit - v_claimed, p_lease);
END
$$;

-- SECURITY DEFINER: nobody but the roles granted below may call it
REVOKE ALL ON FUNCTION nightshift.claim_tasks(text, text[], integer, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION nightshift.claim_tasks_after(text, text[], integer, interval, integer, timestamptz, bigint)
    FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.claim_tasks(text, text[], integer, interval)
            TO nightshift_dispatcher;
        GRANT EXECUTE ON FUNCTION
            nightshift.claim_tasks_after(text, text[], integer, interval, integer, timestamptz, bigint)
            TO nightshift_dispatcher;
    END IF;
END
$$;
