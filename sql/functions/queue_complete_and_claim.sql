-- complete_and_claim: the daemon's round trip, one statement and one transaction.
-- Completes what finished since the last call (complete_tasks) and claims up to p_limit more
-- (claim_tasks_after). Every row carries the ids completed (stale holders' ids are absent); when
-- nothing is claimed, one row with only `completed` set comes back.
CREATE OR REPLACE FUNCTION nightshift.complete_and_claim(
    p_ids bigint[],
    p_attempts integer[],
    p_worker text,
    p_kinds text[],
    p_limit integer,
    p_lease interval,
    p_after_priority integer,
    p_after_run_after timestamptz,
    p_after_id bigint
) RETURNS TABLE (
    completed bigint[],
    id bigint,
    kind text,
    subject text,
    payload jsonb,
    attempt integer,
    max_attempts integer,
    priority smallint,
    schedule_id bigint,
    locked_until timestamptz,
    run_after timestamptz
)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_completed bigint[] := '{}';
BEGIN
    /* complete the finished (id, attempt) pairs, then claim up to p_limit tasks */
    -- the same statement as complete_tasks, inlined: a nested plpgsql call costs a visible share of
    -- this round trip at concurrency 1
    IF cardinality(p_ids) > 0 THEN
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
        SELECT coalesce(array_agg(done.id), '{}') INTO v_completed FROM done;
    END IF;
    IF p_limit > 0 THEN
        RETURN QUERY
        SELECT v_completed, c.id, c.kind, c.subject, c.payload, c.attempt, c.max_attempts, c.priority,
               c.schedule_id, c.locked_until, c.run_after
          FROM nightshift.claim_tasks_after(p_worker, p_kinds, p_limit, p_lease, p_after_priority,
                                            p_after_run_after, p_after_id) AS c;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    completed := v_completed;
    RETURN NEXT;
END
$$;

-- SECURITY DEFINER: nobody but the roles granted below may call it
REVOKE ALL ON FUNCTION nightshift.complete_and_claim(bigint[], integer[], text, text[], integer, interval,
                                                     integer, timestamptz, bigint) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.complete_and_claim(bigint[], integer[], text, text[], integer,
                                                                interval, integer, timestamptz, bigint)
            TO nightshift_dispatcher;
    END IF;
END
$$;
