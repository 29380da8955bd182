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
-- the row estimates of a due batch are rough; JIT compiling for them cost more than the statement itself
SET jit = off
-- a catch-up batch of 100,000 rows sorts and hashes in memory instead of spilling to temp files
SET work_mem = '64MB'
AS $$
#variable_conflict use_column
DECLARE
    v_kinds constant text[] := nightshift.scheduled_kinds();
    v_kind text;
    v_window interval;
    v_due integer;
    -- settings through the readers that fall back to a default (with a WARNING naming the key) on a
    -- malformed value: one bad row must not stop scheduling for every kind
    v_lookback_days integer := nightshift.setting_integer('cost.lookback_days', 30);
    v_cost_actions jsonb := nightshift.setting_jsonb(
        'cost.actions', '["identify-unused", "rightsizing-recs", "commitment-coverage"]');
BEGIN
    /* Turn every due schedule row into a task (at most p_limit per kind) and advance its next run. */
    PERFORM nightshift.require_scheduled_kind(p_kind);
    IF p_limit IS NOT NULL AND p_limit < 1 THEN
        RAISE EXCEPTION 'p_limit must be at least 1, got %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    FOREACH v_kind IN ARRAY v_kinds LOOP
        CONTINUE WHEN p_kind IS NOT NULL AND v_kind <> p_kind;
        v_window := nightshift.setting_interval('schedule.stagger.' || v_kind, interval '0');

        -- Each kind's due rows come from its own CTE, joined straight to its target tables and locked there;
        -- the CTEs of the other kinds are switched off by their v_kind test. (Reading the UNION ALL view
        -- schedule_targets here instead made the planner build the whole view: 10x slower at 1M rows.)
        -- The payloads must match the view's: test_run_now_and_enqueue_due_build_the_same_task checks it.
        WITH due_drift AS (
            SELECT s.id, s.ctid, s.next_run_at, 'pipeline/' || s.pipeline_id AS subject,
                   jsonb_build_object(
                       'schedule_id', s.id,
                       'pipeline_id', s.pipeline_id,
                       'auto_create_pr', s.auto_create_pr AND r.auto_remediate AND o.auto_remediate,
                       'notification_channel', s.notification_channel) AS payload
              FROM nightshift.schedules AS s
              JOIN nightshift.pipelines AS p ON p.id = s.pipeline_id
              JOIN nightshift.repositories AS r ON r.id = p.repository_id
              JOIN nightshift.organizations AS o ON o.id = r.organization_id
             WHERE v_kind = 'drift-scan'
               AND s.kind = 'drift-scan' AND s.is_active AND s.frequency <> 'UNMONITORED'
               AND s.next_run_at <= now()
             ORDER BY s.next_run_at, s.id
             LIMIT p_limit
               FOR UPDATE OF s SKIP LOCKED
        ), due_compliance AS (
            SELECT s.id, s.ctid, s.next_run_at, 'cloud_integration/' || s.cloud_integration_id AS subject,
                   jsonb_build_object(
                       'schedule_id', s.id,
                       'cloud_integration_id', ci.id,
                       'provider', ci.provider,
                       'account_id', ci.account_id,
                       'frameworks', to_jsonb(ci.frameworks),
                       'auto_remediate', s.auto_create_pr AND o.auto_remediate,
                       'notification_channel', s.notification_channel) AS payload
              FROM nightshift.schedules AS s
              JOIN nightshift.cloud_integrations AS ci ON ci.id = s.cloud_integration_id
              JOIN nightshift.organizations AS o ON o.id = ci.organization_id
             WHERE v_kind = 'compliance-scan'
               AND s.kind = 'compliance-scan' AND s.is_active AND s.frequency <> 'UNMONITORED'
               AND s.next_run_at <= now()
               AND ci.compliance_enabled AND o.compliance_enabled AND ci.deleted_at IS NULL
             ORDER BY s.next_run_at, s.id
             LIMIT p_limit
               FOR UPDATE OF s SKIP LOCKED
        ), due_cost AS (
            SELECT s.id, s.ctid, s.next_run_at, 'organization/' || s.organization_id AS subject,
                   jsonb_build_object(
                       'schedule_id', s.id,
                       'organization_id', o.id,
                       'lookback_days', v_lookback_days,
                       'actions', v_cost_actions,
                       'auto_create_pr', s.auto_create_pr AND o.auto_remediate,
                       'notification_channel', s.notification_channel) AS payload
              FROM nightshift.schedules AS s
              JOIN nightshift.organizations AS o ON o.id = s.organization_id
             WHERE v_kind = 'cost-analysis'
               AND s.kind = 'cost-analysis' AND s.is_active AND s.frequency <> 'UNMONITORED'
               AND s.next_run_at <= now()
               AND o.cost_optimization_enabled
             ORDER BY s.next_run_at, s.id
             LIMIT p_limit
               FOR UPDATE OF s SKIP LOCKED
        ), due AS (
            SELECT * FROM due_drift
            UNION ALL SELECT * FROM due_compliance
            UNION ALL SELECT * FROM due_cost
        ), batch AS (
            -- most overdue first; position / size places each task inside the stagger window
            SELECT due.*,
                   row_number() OVER (ORDER BY due.next_run_at, due.id) - 1 AS position,
                   count(*) OVER () AS size
              FROM due
        ), inserted AS (
            INSERT INTO nightshift.tasks (kind, subject, payload, run_after, schedule_id)
            SELECT v_kind, b.subject,
                   b.payload || jsonb_build_object('scheduled_for', b.next_run_at),
                   now() + v_window * (b.position::double precision / b.size),
                   b.id
              FROM batch AS b
            ON CONFLICT (kind, subject) WHERE status IN ('queued', 'running') DO NOTHING
            RETURNING 1
        ), advanced AS (
            UPDATE nightshift.schedules AS s
               SET next_run_at = nightshift.next_run_at(
                       s.frequency, now(), coalesce(s.pipeline_id, s.cloud_integration_id, s.organization_id))
             -- by TID: the rows are locked by this statement, so their ctid cannot change under us;
             -- a TID scan of the array reads just those rows (a join on ctid hashed the whole table)
             WHERE s.ctid = ANY (ARRAY(SELECT due.ctid FROM due))
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
