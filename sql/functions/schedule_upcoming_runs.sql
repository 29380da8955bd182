-- upcoming_runs: a forecast of what enqueue_due will enqueue within p_within from now, one row per run,
-- per kind and target, in time order. An overdue target shows once, at now() (it runs at the next
-- enqueue_due, once, however late it is). Paused, UNMONITORED and switched-off targets never appear.
-- The forecast cannot know about in-flight tasks: a target still busy at its slot is skipped then.
--   SELECT * FROM nightshift.upcoming_runs('24 hours');
--   SELECT kind, count(*) FROM nightshift.upcoming_runs('7 days') GROUP BY kind;
--
-- Bounded, because a forecast must not fill the disk (`--within 100000y` once wrote 21 GB of temporary
-- files): p_within must be more than 0 and at most 366 days, and at most p_limit rows (default 10,000)
-- come back, the earliest ones. The runs are generated over a horizon that starts at one hour and
-- doubles until it holds p_limit runs or reaches p_within, so the work stays near p_limit rows however
-- many targets there are.
DROP FUNCTION IF EXISTS nightshift.upcoming_runs(interval, text);
CREATE OR REPLACE FUNCTION nightshift.upcoming_runs(
    p_within interval DEFAULT '24 hours',
    p_kind text DEFAULT NULL,
    p_limit integer DEFAULT 10000
)
RETURNS TABLE (
    run_at timestamptz,
    kind text,
    subject text,
    schedule_id bigint,
    frequency nightshift.frequency,
    overdue boolean
)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_max_window constant interval := interval '366 days';
    v_end timestamptz;  -- now() + p_within, once p_within is known to be sane
    v_horizon timestamptz;
BEGIN
    /* Every scheduled run between now() and now() + p_within, earliest first, at most p_limit. */
    IF p_within IS NULL OR p_within <= interval '0' THEN
        RAISE EXCEPTION 'p_within must be a positive interval, got %', quote_nullable(p_within)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'for example upcoming_runs(''24 hours'')';
    END IF;
    IF p_within > v_max_window THEN
        RAISE EXCEPTION 'p_within must be at most %, got %', v_max_window, p_within
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'a forecast further out than a year says nothing a year does not';
    END IF;
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'p_limit must be at least 1, got %', quote_nullable(p_limit)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM nightshift.require_scheduled_kind(p_kind);
    v_end := now() + p_within;

    -- widen the horizon until it holds p_limit runs (or is p_within): each pass counts what the last
    -- would return, so the final pass generates about 2 * p_limit runs at most, not months of them
    v_horizon := least(v_end, now() + interval '1 hour');
    LOOP
        EXIT WHEN v_horizon >= v_end
               OR (SELECT count(*) FROM nightshift.upcoming_runs_until(v_horizon, p_kind)) >= p_limit;
        v_horizon := least(v_end, now() + 2 * (v_horizon - now()));
    END LOOP;

    RETURN QUERY
    SELECT r.run_at, r.kind, r.subject, r.schedule_id, r.frequency, r.overdue
      FROM nightshift.upcoming_runs_until(v_horizon, p_kind) AS r
     ORDER BY r.run_at, r.kind, r.subject
     LIMIT p_limit;
END
$$;

-- internal: every run between now() and p_until (upcoming_runs bounds p_until before calling it)
CREATE OR REPLACE FUNCTION nightshift.upcoming_runs_until(p_until timestamptz, p_kind text)
RETURNS TABLE (
    run_at timestamptz,
    kind text,
    subject text,
    schedule_id bigint,
    frequency nightshift.frequency,
    overdue boolean
)
LANGUAGE sql
STABLE
AS $$
    /* every scheduled run from now() to p_until, unordered */
    WITH RECURSIVE runs AS (
        SELECT greatest(t.next_run_at, now()) AS run_at, t.kind, t.subject, t.schedule_id, t.frequency,
               t.target_id, t.next_run_at <= now() AS overdue
          FROM nightshift.schedule_targets AS t
         WHERE t.is_active AND t.enabled AND t.frequency <> 'UNMONITORED'
           AND t.next_run_at <= p_until
           AND (p_kind IS NULL OR t.kind = p_kind)
        UNION ALL
        -- after each run enqueue_due advances to the first slot after it
        SELECT nightshift.next_run_at(r.frequency, r.run_at, r.target_id), r.kind, r.subject, r.schedule_id,
               r.frequency, r.target_id, false
          FROM runs AS r
         WHERE nightshift.next_run_at(r.frequency, r.run_at, r.target_id) <= p_until
    )
    SELECT r.run_at, r.kind, r.subject, r.schedule_id, r.frequency, r.overdue
      FROM runs AS r
$$;

REVOKE EXECUTE ON FUNCTION nightshift.upcoming_runs_until(timestamptz, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nightshift.upcoming_runs(interval, text, integer) FROM PUBLIC;
DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['nightshift_scheduler'] LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION nightshift.upcoming_runs(interval, text, integer) TO %I', v_role);
        END IF;
    END LOOP;
    -- not the reader's: it counts every organization's rows (the reader has the views)
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_reader') THEN
        REVOKE EXECUTE ON FUNCTION nightshift.upcoming_runs(interval, text, integer) FROM nightshift_reader;
    END IF;
END
$$;
