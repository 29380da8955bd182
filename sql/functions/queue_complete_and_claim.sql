-- complete_and_claim: the daemon's round trip, one statement and one transaction.
-- Completes what finished since the last call (as complete_tasks) and claims up to p_limit more (as
-- claim_tasks_after: the same order, fencing, lease and attempt + 1). Every row carries the ids
-- completed (stale holders' ids are absent); when nothing is claimed, one row with only `completed`
-- set comes back.
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
-- trip's rate. The statement below is written so that its generic plan is the right one for every
-- argument: the claimed rows are found by id (= ANY), never joined with an estimated row count.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_limit integer := greatest(coalesce(p_limit, 0), 0);
BEGIN
    /* complete the finished (id, attempt) pairs, then claim up to p_limit tasks */
    -- One statement: the completion of complete_tasks and the claim of claim_tasks_after (a keyset
    -- scan from the given position, then from the queue head for what is missing) inlined, because
    -- nested plpgsql calls and their materialised results cost a visible share of this round trip.
    -- All parts share one snapshot, so the head scan must skip what the keyset scan just locked.
    RETURN QUERY
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
    ), after_position AS (
        SELECT q.id
          FROM nightshift.tasks AS q
         WHERE p_after_id IS NOT NULL
           AND q.status = 'queued'
           AND q.priority = p_after_priority
           AND (q.run_after, q.id) > (p_after_run_after, p_after_id)
           AND q.run_after <= now()
           AND (p_kinds IS NULL OR q.kind = ANY (p_kinds))
         ORDER BY q.priority DESC, q.run_after, q.id
         LIMIT v_limit
           FOR UPDATE SKIP LOCKED
    ), from_head AS (
        SELECT q.id
          FROM nightshift.tasks AS q
         WHERE q.status = 'queued'
           AND q.run_after <= now()
           AND (p_kinds IS NULL OR q.kind = ANY (p_kinds))
           AND q.id <> ALL (ARRAY(SELECT a.id FROM after_position AS a))
         ORDER BY q.priority DESC, q.run_after, q.id
         LIMIT v_limit - (SELECT count(*) FROM after_position)  -- 0 when the keyset scan found them all
           FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE nightshift.tasks AS t
           SET status = 'running',
               attempt = t.attempt + 1,
               locked_by = p_worker,
               locked_until = now() + p_lease,
               started_at = now()
         WHERE t.id = ANY (ARRAY(SELECT a.id FROM after_position AS a
                                 UNION ALL
                                 SELECT h.id FROM from_head AS h))
        RETURNING t.id, t.kind, t.subject, t.payload, t.attempt, t.max_attempts, t.priority, t.schedule_id,
                  t.locked_until, t.run_after
    )
    SELECT d.completed, c.id, c.kind, c.subject, c.payload, c.attempt, c.max_attempts, c.priority,
           c.schedule_id, c.locked_until, c.run_after
      FROM (SELECT coalesce(array_agg(done.id), '{}') AS completed FROM done) AS d
      LEFT JOIN claimed AS c ON true;  -- nothing claimed: one row that only reports the completions
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
