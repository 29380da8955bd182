-- upcoming_runs: a forecast of what enqueue_due will enqueue within p_within from now, one row per run,
-- per kind and target, in time order. An overdue target shows once, at now() (it runs at the next
-- enqueue_due, once, however late it is). Paused, UNMONITORED and switched-off targets never appear.
-- The forecast cannot know about in-flight tasks: a target still busy at its slot is skipped then.
--   SELECT * FROM nightshift.upcoming_runs('24 hours');
--   SELECT kind, count(*) FROM nightshift.upcoming_runs('7 days') GROUP BY kind;
CREATE OR REPLACE FUNCTION nightshift.upcoming_runs(p_within interval DEFAULT '24 hours', p_kind text DEFAULT NULL)
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
BEGIN
    /* Every scheduled run between now() and now() + p_within, earliest first. */
    IF p_within IS NULL OR p_within < interval '0' THEN
        RAISE EXCEPTION 'p_within must be a positive interval, got %', quote_nullable(p_within)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'for example upcoming_runs(''24 hours'')';
    END IF;
    PERFORM nightshift.require_scheduled_kind(p_kind);

    RETURN QUERY
    WITH RECURSIVE runs AS (
        SELECT greatest(t.next_run_at, now()) AS run_at, t.kind, t.subject, t.schedule_id, t.frequency,
               t.target_id, t.next_run_at <= now() AS overdue
          FROM nightshift.schedule_targets AS t
         WHERE t.is_active AND t.enabled AND t.frequency <> 'UNMONITORED'
           AND t.next_run_at <= now() + p_within
           AND (p_kind IS NULL OR t.kind = p_kind)
        UNION ALL
        -- after each run enqueue_due advances to the first slot after it
        SELECT nightshift.next_run_at(r.frequency, r.run_at, r.target_id), r.kind, r.subject, r.schedule_id,
               r.frequency, r.target_id, false
          FROM runs AS r
         WHERE nightshift.next_run_at(r.frequency, r.run_at, r.target_id) <= now() + p_within
    )
    SELECT r.run_at, r.kind, r.subject, r.schedule_id, r.frequency, r.overdue
      FROM runs AS r
     ORDER BY r.run_at, r.kind, r.subject;
END
$$;

REVOKE EXECUTE ON FUNCTION nightshift.upcoming_runs(interval, text) FROM PUBLIC;
DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['nightshift_scheduler', 'nightshift_reader'] LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION nightshift.upcoming_runs(interval, text) TO %I', v_role);
        END IF;
    END LOOP;
END
$$;
