-- enqueue_due: every active, due target becomes a task — set-based statements per kind (DESIGN.md rule 1),
-- called every minute by the pg_cron job nightshift-enqueue-due, or by anyone from psql.
--
-- Its cost follows what is due, not what is scheduled. Per kind:
--   * the due hints come first: nightshift.schedule_wakeups rows whose run_at has passed, oldest first,
--     at most the batch size (p_limit, else setting 'schedule.batch_size'): one index range scan, so
--     with nothing due a call reads one index page per kind, whatever the number of schedules;
--   * the schedule rows they name are checked (the row decides: active, monitored, next_run_at <= now(),
--     target switches on) and locked FOR UPDATE SKIP LOCKED, so concurrent callers split the work;
--   * one task per locked row, ON CONFLICT DO NOTHING against tasks_one_in_flight: a target whose
--     previous task is still queued or running is skipped (a CronJob's concurrencyPolicy: Forbid);
--   * run_after of the batch is spread evenly over the kind's window (setting 'schedule.stagger.<kind>');
--   * next_run_at of every locked row — skipped ones too — advances to its first slot after now() (a HOT
--     update: no index holds next_run_at), ten missed slots become one run, and a hint is written there;
--   * the hints just read are dropped unless their schedule is still due and was not taken (another
--     caller or a DBA holds its row: it stays for the next call); a due target whose switch is off gets
--     its hint moved to its next slot, so it is not re-read every minute (switching it on brings it
--     back: trigger target_schedules).
-- A batch that hits the limit leaves the rest due, oldest first, for the next call: every call stays
-- bounded, and nothing is skipped or doubled.
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
    v_limit integer;
    v_hint_rows tid[];
    v_hint_ids bigint[];
    v_taken bigint[];
    v_left bigint[];
    v_left_rows tid[];
    v_lookback_days integer;
    v_cost_actions jsonb;
BEGIN
    /* Turn every due schedule row into a task (at most the batch size per kind) and advance its next run. */
    PERFORM nightshift.require_scheduled_kind(p_kind);
    IF p_limit IS NOT NULL AND p_limit < 1 THEN
        RAISE EXCEPTION 'p_limit must be at least 1, got %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- settings through the readers that fall back to a default (with a WARNING naming the key) on a
    -- malformed value: one bad row must not stop scheduling for every kind
    v_limit := coalesce(p_limit, nightshift.setting_integer('schedule.batch_size', 100000));
    -- Commit without waiting for the WAL flush (for the rest of the caller's transaction). A crash right
    -- after the commit can lose this call's work, and only as a whole: the tasks and the advance of
    -- next_run_at together, so the next call finds the same rows due and enqueues them once. The wait
    -- it saves is most of a small call's time on a busy disk (a flush of the pages it touched).
    PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);

    FOREACH v_kind IN ARRAY v_kinds LOOP
        CONTINUE WHEN p_kind IS NOT NULL AND v_kind <> p_kind;
        kind := v_kind;
        enqueued := 0;
        skipped := 0;

        SELECT array_agg(h.hint_row), array_agg(h.schedule_id)
          INTO v_hint_rows, v_hint_ids
          FROM (SELECT w.ctid AS hint_row, w.schedule_id
                  FROM nightshift.schedule_wakeups AS w
                 WHERE w.kind = v_kind AND w.run_at <= now()
                 ORDER BY w.run_at
                 LIMIT v_limit) AS h;
        IF v_hint_rows IS NULL THEN  -- nothing due: the common case, one index probe
            RETURN NEXT;
            CONTINUE;
        END IF;

        v_window := nightshift.setting_interval('schedule.stagger.' || v_kind, interval '0');
        -- enqueue_due writes the hints of the rows it advances itself; the row trigger
        -- schedules_wakeups_update (for a DBA's UPDATE) stays quiet meanwhile
        PERFORM pg_catalog.set_config('nightshift.enqueue_due', 'on', true);

        -- One statement per kind, joined straight to its target tables (the UNION ALL view
        -- schedule_targets made the planner build all of it). The payloads must match the view's:
        -- test_run_now_and_enqueue_due_build_the_same_task checks it. Rows are locked in the order the
        -- index of ids gives them (no ORDER BY: the batch is already the oldest hints); position and size
        -- place each task inside the stagger window, most overdue first. next_run_at is advanced by TID:
        -- the rows are locked by this statement, so their ctid cannot change under us.
        IF v_kind = 'drift-scan' THEN
            WITH due AS (
                SELECT s.id, s.ctid AS row_id, s.next_run_at, s.pipeline_id, s.auto_create_pr,
                       s.notification_channel
                  FROM nightshift.schedules AS s
                 WHERE s.id = ANY (v_hint_ids)
                   AND s.kind = 'drift-scan' AND s.is_active AND s.frequency <> 'UNMONITORED'
                   AND s.next_run_at <= now()
                   FOR UPDATE OF s SKIP LOCKED
            ), advanced AS (
                UPDATE nightshift.schedules AS s
                   SET next_run_at = nightshift.next_run_at(s.frequency, now(), s.pipeline_id)
                 WHERE s.ctid = ANY (ARRAY(SELECT d.row_id FROM due AS d))
                RETURNING s.kind, s.next_run_at, s.id
            ), hinted AS (
                INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_id)
                SELECT a.kind, a.next_run_at, a.id FROM advanced AS a ORDER BY a.next_run_at
            ), inserted AS (
                INSERT INTO nightshift.tasks (kind, subject, payload, run_after, schedule_id)
                SELECT 'drift-scan', 'pipeline/' || d.pipeline_id,
                       jsonb_build_object(
                           'schedule_id', d.id,
                           'pipeline_id', d.pipeline_id,
                           -- the master switches are read only for the few schedules that ask for PRs
                           -- (AND stops at false): no join of every due row to pipelines
                           'auto_create_pr', d.auto_create_pr AND (
                               SELECT r.auto_remediate AND o.auto_remediate
                                 FROM nightshift.pipelines AS p
                                 JOIN nightshift.repositories AS r ON r.id = p.repository_id
                                 JOIN nightshift.organizations AS o ON o.id = r.organization_id
                                WHERE p.id = d.pipeline_id),
                           'notification_channel', d.notification_channel,
                           'scheduled_for', d.next_run_at),
                       now() + v_window * ((row_number() OVER w - 1)::double precision / count(*) OVER ()),
                       d.id
                  FROM due AS d
                WINDOW w AS (ORDER BY d.next_run_at, d.id)
                ON CONFLICT (kind, subject) WHERE status IN ('queued', 'running') DO NOTHING
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM inserted), (SELECT array_agg(d.id) FROM due AS d)
              INTO enqueued, v_taken;

        ELSIF v_kind = 'compliance-scan' THEN
            WITH due AS (
                SELECT s.id, s.ctid AS row_id, s.next_run_at, s.cloud_integration_id,
                       jsonb_build_object(
                           'schedule_id', s.id,
                           'cloud_integration_id', ci.id,
                           'provider', ci.provider,
                           'account_id', ci.account_id,
                           'frameworks', to_jsonb(ci.frameworks),
                           'auto_remediate', s.auto_create_pr AND o.auto_remediate,
                           'notification_channel', s.notification_channel,
                           'scheduled_for', s.next_run_at) AS payload
                  FROM nightshift.schedules AS s
                  JOIN nightshift.cloud_integrations AS ci ON ci.id = s.cloud_integration_id
                  JOIN nightshift.organizations AS o ON o.id = ci.organization_id
                 WHERE s.id = ANY (v_hint_ids)
                   AND s.kind = 'compliance-scan' AND s.is_active AND s.frequency <> 'UNMONITORED'
                   AND s.next_run_at <= now()
                   AND ci.compliance_enabled AND o.compliance_enabled AND ci.deleted_at IS NULL
                   FOR UPDATE OF s SKIP LOCKED
            ), advanced AS (
                UPDATE nightshift.schedules AS s
                   SET next_run_at = nightshift.next_run_at(s.frequency, now(), s.cloud_integration_id)
                 WHERE s.ctid = ANY (ARRAY(SELECT d.row_id FROM due AS d))
                RETURNING s.kind, s.next_run_at, s.id
            ), hinted AS (
                INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_id)
                SELECT a.kind, a.next_run_at, a.id FROM advanced AS a ORDER BY a.next_run_at
            ), inserted AS (
                INSERT INTO nightshift.tasks (kind, subject, payload, run_after, schedule_id)
                SELECT 'compliance-scan', 'cloud_integration/' || d.cloud_integration_id, d.payload,
                       now() + v_window * ((row_number() OVER w - 1)::double precision / count(*) OVER ()),
                       d.id
                  FROM due AS d
                WINDOW w AS (ORDER BY d.next_run_at, d.id)
                ON CONFLICT (kind, subject) WHERE status IN ('queued', 'running') DO NOTHING
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM inserted), (SELECT array_agg(d.id) FROM due AS d)
              INTO enqueued, v_taken;

        ELSIF v_kind = 'cost-analysis' THEN
            v_lookback_days := nightshift.setting_integer('cost.lookback_days', 30);
            v_cost_actions := nightshift.setting_jsonb(
                'cost.actions', '["identify-unused", "rightsizing-recs", "commitment-coverage"]');
            WITH due AS (
                SELECT s.id, s.ctid AS row_id, s.next_run_at, s.organization_id,
                       jsonb_build_object(
                           'schedule_id', s.id,
                           'organization_id', o.id,
                           'lookback_days', v_lookback_days,
                           'actions', v_cost_actions,
                           'auto_create_pr', s.auto_create_pr AND o.auto_remediate,
                           'notification_channel', s.notification_channel,
                           'scheduled_for', s.next_run_at) AS payload
                  FROM nightshift.schedules AS s
                  JOIN nightshift.organizations AS o ON o.id = s.organization_id
                 WHERE s.id = ANY (v_hint_ids)
                   AND s.kind = 'cost-analysis' AND s.is_active AND s.frequency <> 'UNMONITORED'
                   AND s.next_run_at <= now()
                   AND o.cost_optimization_enabled
                   FOR UPDATE OF s SKIP LOCKED
            ), advanced AS (
                UPDATE nightshift.schedules AS s
                   SET next_run_at = nightshift.next_run_at(s.frequency, now(), s.organization_id)
                 WHERE s.ctid = ANY (ARRAY(SELECT d.row_id FROM due AS d))
                RETURNING s.kind, s.next_run_at, s.id
            ), hinted AS (
                INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_id)
                SELECT a.kind, a.next_run_at, a.id FROM advanced AS a ORDER BY a.next_run_at
            ), inserted AS (
                INSERT INTO nightshift.tasks (kind, subject, payload, run_after, schedule_id)
                SELECT 'cost-analysis', 'organization/' || d.organization_id, d.payload,
                       now() + v_window * ((row_number() OVER w - 1)::double precision / count(*) OVER ()),
                       d.id
                  FROM due AS d
                WINDOW w AS (ORDER BY d.next_run_at, d.id)
                ON CONFLICT (kind, subject) WHERE status IN ('queued', 'running') DO NOTHING
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM inserted), (SELECT array_agg(d.id) FROM due AS d)
              INTO enqueued, v_taken;
        ELSE
            -- a kind marked scheduled in task_kinds without a statement here: the other kinds still run
            RAISE WARNING 'enqueue_due cannot build tasks of kind % yet', quote_literal(v_kind)
                USING HINT = 'add its statement to sql/functions/schedule_enqueue_due.sql';
            v_taken := NULL;
        END IF;
        PERFORM pg_catalog.set_config('nightshift.enqueue_due', '', true);
        skipped := coalesce(cardinality(v_taken), 0) - enqueued;

        -- The hints just read: those of the rows taken above go (each has a new hint at its next run).
        -- The others (v_left, usually none) are looked at one by one below.
        WITH hint AS (
            SELECT h.hint_row, h.schedule_id
              FROM unnest(v_hint_rows, v_hint_ids) AS h (hint_row, schedule_id)
        ), taken AS (
            SELECT t.id FROM unnest(v_taken) AS t (id)
        ), consumed AS (
            DELETE FROM nightshift.schedule_wakeups AS w
             WHERE w.ctid = ANY (ARRAY(SELECT hint.hint_row FROM hint JOIN taken ON taken.id = hint.schedule_id))
        )
        SELECT array_agg(hint.hint_row), array_agg(hint.schedule_id) INTO v_left_rows, v_left
          FROM hint
         WHERE NOT EXISTS (SELECT FROM taken WHERE taken.id = hint.schedule_id);

        IF v_left IS NOT NULL THEN
            -- not taken and no longer due (rescheduled later, paused, deleted): the hint is stale; a
            -- schedule that is due again has a hint at its next_run_at already, or needs none
            DELETE FROM nightshift.schedule_wakeups AS w
             WHERE w.ctid = ANY (v_left_rows)
               AND NOT EXISTS (SELECT FROM nightshift.schedules AS s
                                WHERE s.id = w.schedule_id AND s.kind = v_kind AND s.is_active
                                  AND s.frequency <> 'UNMONITORED' AND s.next_run_at <= now());
            -- due, but its target is switched off: looked at again at its next slot, not every minute
            -- (switching the target on puts the hint back: trigger target_schedules)
            WITH off AS (
                SELECT t.schedule_id, t.kind, nightshift.next_run_at(t.frequency, now(), t.target_id) AS run_at
                  FROM nightshift.schedule_targets AS t
                 WHERE t.schedule_id = ANY (v_left) AND t.kind = v_kind AND NOT t.enabled
                   AND t.is_active AND t.frequency <> 'UNMONITORED' AND t.next_run_at <= now()
            ), moved AS (
                DELETE FROM nightshift.schedule_wakeups AS w
                 USING off
                 WHERE w.ctid = ANY (v_left_rows) AND w.schedule_id = off.schedule_id
            )
            INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_id)
            SELECT off.kind, off.run_at, off.schedule_id FROM off;
            -- what is left is due and was not taken because another caller or a DBA holds its row:
            -- its hint stays for the next call
        END IF;
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
