-- enqueue_due: every active, due target becomes a task — one set-based statement per kind (DESIGN.md
-- rule 1), called every minute by the pg_cron job nightshift-enqueue-due, or by anyone from psql.
--
-- Per kind, one statement:
--   * locks the due schedule rows (active, monitored, next_run_at <= now(), target switches on) with
--     FOR UPDATE SKIP LOCKED, so concurrent callers split the work instead of waiting or doubling it;
--   * inserts one task per row, ON CONFLICT DO NOTHING against tasks_one_in_flight: a target whose previous
--     task is still queued or running is skipped (a CronJob's concurrencyPolicy: Forbid);
--   * spreads run_after of the batch evenly over the kind's window (setting 'schedule.stagger.<kind>'), so
--     a dispatcher fleet does not hit one cloud API with hundreds of scans in the same second;
--   * advances next_run_at of every locked row — skipped ones too — to its first slot after now(): ten
--     missed slots (pg_cron down) become one run, and a skipped run is not retried before the next slot.
-- Returns one row per kind: tasks enqueued, and due targets skipped because a task was in flight.
CREATE OR REPLACE FUNCTION nightshift.enqueue_due(p_kind text DEFAULT NULL, p_limit integer DEFAULT NULL)
RETURNS TABLE (kind text, enqueued integer, skipped integer)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_kinds constant text[] := ARRAY['drift-scan', 'compliance-scan', 'cost-analysis'];
    v_kind text;
    v_window interval;
    v_due integer;
BEGIN
    /* Turn every due schedule row into a task (at most p_limit per kind) and advance its next run. */
    IF p_kind IS NOT NULL AND NOT p_kind = ANY (v_kinds) THEN
        RAISE EXCEPTION 'unknown scheduled kind %', quote_literal(p_kind)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'the scheduled kinds are ' || array_to_string(v_kinds, ', ');
    END IF;
    IF p_limit IS NOT NULL AND p_limit < 1 THEN
        RAISE EXCEPTION 'p_limit must be at least 1, got %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    FOREACH v_kind IN ARRAY v_kinds LOOP
        CONTINUE WHEN p_kind IS NOT NULL AND v_kind <> p_kind;
        v_window := coalesce((SELECT st.value FROM nightshift.settings AS st
                               WHERE st.key = 'schedule.stagger.' || v_kind)::interval, interval '0');

        WITH due AS (
            SELECT s.id, s.next_run_at
              FROM nightshift.schedules AS s
             WHERE s.kind = v_kind
               AND s.is_active
               AND s.frequency <> 'UNMONITORED'
               AND s.next_run_at <= now()
               AND EXISTS (SELECT FROM nightshift.schedule_targets AS t
                            WHERE t.schedule_id = s.id AND t.kind = v_kind AND t.enabled)
             ORDER BY s.next_run_at, s.id
             LIMIT p_limit
               FOR UPDATE OF s SKIP LOCKED
        ), batch AS (
            -- most overdue first; position / size places each task inside the stagger window
            SELECT t.kind, t.subject, t.schedule_id, t.payload, due.next_run_at,
                   row_number() OVER (ORDER BY due.next_run_at, due.id) - 1 AS position,
                   count(*) OVER () AS size
              FROM due
              JOIN nightshift.schedule_targets AS t ON t.schedule_id = due.id AND t.kind = v_kind
        ), inserted AS (
            INSERT INTO nightshift.tasks (kind, subject, payload, run_after, schedule_id)
            SELECT b.kind, b.subject,
                   b.payload || jsonb_build_object('scheduled_for', b.next_run_at),
                   now() + v_window * (b.position::double precision / b.size),
                   b.schedule_id
              FROM batch AS b
            ON CONFLICT (kind, subject) WHERE status IN ('queued', 'running') DO NOTHING
            RETURNING 1
        ), advanced AS (
            UPDATE nightshift.schedules AS s
               SET next_run_at = nightshift.next_run_at(
                       s.frequency, now(), coalesce(s.pipeline_id, s.cloud_integration_id, s.organization_id))
              FROM due
             WHERE s.id = due.id
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM advanced)
          INTO enqueued, v_due;

        kind := v_kind;
        skipped := v_due - enqueued;
        RETURN NEXT;
    END LOOP;
END
$$;

REVOKE EXECUTE ON FUNCTION nightshift.enqueue_due(text, integer) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_scheduler') THEN
        GRANT EXECUTE ON FUNCTION nightshift.enqueue_due(text, integer) TO nightshift_scheduler;
    END IF;
END
$$;
