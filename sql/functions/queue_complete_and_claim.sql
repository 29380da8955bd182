-- complete_and_claim: the daemon's round trip, one call and one transaction.
-- Completes what finished since the last call (as complete_tasks) and claims up to p_limit more (as
-- claim_tasks_after: the same order, fencing, lease and attempt + 1), in one transaction. Every row
-- carries the ids completed (stale holders' ids are absent); when nothing is claimed, one row with
-- only `completed` set comes back.
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
-- A custom plan is made anew at every call (the parameters change every time, and with p_limit unknown
-- the generic plan looks dearer than it is): planning cost more than running it, and halved the round
-- trip's rate. Each statement below is written so that its generic plan is the right one for every
-- argument: the claimed rows are found by id (= ANY), never joined with an estimated row count.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_limit integer := greatest(coalesce(p_limit, 0), 0);
    v_done bigint[] := '{}';
    v_claimed bigint := 0;
BEGIN
    /* complete the finished (id, attempt) pairs, then claim up to p_limit tasks */
    -- Small statements, each run only when needed, rather than one statement with every case in it:
    -- the executor starts every node of a plan at every call, and that start-up was about a quarter
    -- of this function's time (perf); with pgbench, this form is 20 % faster at batch 16, 5 % at 1.
    -- The statements of complete_tasks and claim_tasks_after are repeated rather than called: a
    -- nested SECURITY DEFINER call (its settings saved and restored, its own plan looked up) cost a
    -- visible share of this round trip; tests/test_queue_sql.py checks that both claim the same tasks.

    -- 1. the completions, as complete_tasks
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
        SELECT coalesce(array_agg(done.id), '{}') INTO v_done FROM done;
    END IF;

    -- 2. the claim, as claim_tasks_after: first from the position after the last claimed task (same
    -- priority), so the entries of tasks claimed since the last vacuum are not walked again. Each
    -- claimed row: attempt + 1 (the fencing token), under a lease. One statement (the rows locked
    -- by its sub-select, then updated): with pgbench, 5 % faster at batch 1 than two.
    IF v_limit > 0 AND p_after_id IS NOT NULL THEN
        RETURN QUERY
        UPDATE nightshift.tasks AS t
           SET status = 'running',
               attempt = t.attempt + 1,
               locked_by = p_worker,
               locked_until = now() + p_lease,
               started_at = now()
         WHERE t.id = ANY (ARRAY(
                   SELECT q.id
                     FROM nightshift.tasks AS q
                    WHERE q.status = 'queued'
                      AND q.priority = p_after_priority
                      AND (q.run_after, q.id) > (p_after_run_after, p_after_id)
                      AND q.run_after <= now()
                      AND (p_kinds IS NULL OR q.kind = ANY (p_kinds))
                    ORDER BY q.priority DESC, q.run_after, q.id
                    LIMIT v_limit
                      FOR UPDATE SKIP LOCKED))
        RETURNING v_done, t.id, t.kind, t.subject, t.payload, t.attempt, t.max_attempts, t.priority,
                  t.schedule_id, t.locked_until, t.run_after;
        GET DIAGNOSTICS v_claimed = ROW_COUNT;
    END IF;
    -- ... then from the head of the queue for what is missing (a higher priority, an earlier
    -- run_after, a task retried or requeued behind the position). The rows claimed just above are
    -- 'running' now, so this cannot take them again.
    IF v_claimed < v_limit THEN
        RETURN QUERY
        UPDATE nightshift.tasks AS t
           SET status = 'running',
               attempt = t.attempt + 1,
               locked_by = p_worker,
               locked_until = now() + p_lease,
               started_at = now()
         WHERE t.id = ANY (ARRAY(
                   SELECT q.id
                     FROM nightshift.tasks AS q
                    WHERE q.status = 'queued'
                      AND q.run_after <= now()
                      AND (p_kinds IS NULL OR q.kind = ANY (p_kinds))
                    ORDER BY q.priority DESC, q.run_after, q.id
                    LIMIT v_limit - v_claimed
                      FOR UPDATE SKIP LOCKED))
        RETURNING v_done, t.id, t.kind, t.subject, t.payload, t.attempt, t.max_attempts, t.priority,
                  t.schedule_id, t.locked_until, t.run_after;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;

    IF v_claimed = 0 THEN
        completed := v_done;  -- nothing claimed: one row that only reports the completions
        RETURN NEXT;
    END IF;
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
