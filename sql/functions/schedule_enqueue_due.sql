-- enqueue_due: every active, due target becomes a task — set-based statements per kind (DESIGN.md rule 1),
-- called every minute by the pg_cron job nightshift-enqueue-due, or by anyone from psql.
--
-- Its cost follows what is due, not what is scheduled. Per kind:
--   * the due hints come first: nightshift.schedule_wakeups rows whose run_at has passed, oldest first,
--     locked FOR UPDATE SKIP LOCKED (concurrent callers take different ones), cut after the batch size
--     (p_limit, else setting 'schedule.batch_size') of schedules they name: one index range scan, so with
--     nothing due a call reads one index page per kind, whatever the number of schedules;
--   * the schedule rows they name are checked (the row decides: active, monitored, next_run_at <= now(),
--     target switches on) and locked FOR UPDATE SKIP LOCKED, so a DBA's held rows are not waited for;
--   * one task per locked row whose target has no task queued or running (a CronJob's concurrencyPolicy:
--     Forbid): a plain INSERT after an anti-join, ON CONFLICT DO NOTHING only when a concurrent enqueue
--     of the same target makes it fail;
--   * run_after of the batch is spread evenly over the kind's window (setting 'schedule.stagger.<kind>');
--   * next_run_at of every locked row — skipped ones too — advances to its first slot after now() (a HOT
--     update: no index holds next_run_at), ten missed slots become one run, and one hint per minute of
--     new next runs names them all (about 1,440 rows for a day's worth, not one row per schedule);
--   * the hints just read are dropped; the schedules they named that are still due and were not taken
--     (another caller or a DBA holds the row) get a hint for the next call; a due target whose switch is
--     off gets one at its next slot, so it is not re-read every minute (switching it on brings it
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
    v_rest_ids bigint[];
    v_rest_at timestamptz;
    v_taken bigint[];
    v_subjects text[];
    v_payloads jsonb[];
    v_count integer;
    v_left bigint[];
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

        -- The due hints, oldest first, locked (concurrent callers take different ones) and cut after
        -- v_limit schedules: the rest of the hint cut through (v_rest_ids) goes back for the next call.
        WITH hint AS (
            SELECT w.ctid AS hint_row, w.run_at, w.schedule_ids
              FROM nightshift.schedule_wakeups AS w
             WHERE w.kind = v_kind AND w.run_at <= now()
             ORDER BY w.run_at
             LIMIT v_limit
               FOR UPDATE SKIP LOCKED
        ), counted AS (
            SELECT h.hint_row, h.run_at, h.schedule_ids,
                   coalesce(sum(cardinality(h.schedule_ids)) OVER (
                       ORDER BY h.run_at, h.hint_row ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                       0) AS before
              FROM hint AS h
        ), named AS (
            SELECT m.id, c.run_at, c.before + m.position > v_limit AS rest
              FROM counted AS c, unnest(c.schedule_ids) WITH ORDINALITY AS m (id, position)
             WHERE c.before < v_limit
        )
        SELECT (SELECT array_agg(c.hint_row) FROM counted AS c WHERE c.before < v_limit),
               array_agg(n.id) FILTER (WHERE NOT n.rest),
               array_agg(n.id) FILTER (WHERE n.rest), min(n.run_at) FILTER (WHERE n.rest)
          INTO v_hint_rows, v_hint_ids, v_rest_ids, v_rest_at
          FROM named AS n;
        IF v_hint_rows IS NULL THEN  -- nothing due: the common case, one index probe
            RETURN NEXT;
            CONTINUE;
        END IF;

        v_window := nightshift.setting_interval('schedule.stagger.' || v_kind, interval '0');
        -- enqueue_due writes the hints of the rows it advances itself; the row trigger
        -- schedules_wakeups_update (for a DBA's UPDATE) stays quiet meanwhile
        PERFORM pg_catalog.set_config('nightshift.enqueue_due', 'on', true);

        -- One statement per kind, joined straight to its target tables (the UNION ALL view
        -- schedule_targets made the planner build all of it): it locks the due rows, advances them,
        -- writes their new hints and hands the tasks (id, subject, payload, most overdue first) to the
        -- insert below, which all kinds share. The payloads must match the view's:
        -- test_run_now_and_enqueue_due_build_the_same_task checks it. Rows are locked in the order the
        -- scan finds them (no ORDER BY: the batch is already the oldest hints). next_run_at is advanced
        -- by TID: the rows are locked by this statement, so their ctid cannot change under us.
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
                INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_ids)
                SELECT a.kind, max(a.next_run_at), array_agg(a.id)
                  FROM advanced AS a
                 GROUP BY a.kind, pg_catalog.date_trunc('minute', a.next_run_at AT TIME ZONE 'UTC')
            )
            SELECT array_agg(d.id), array_agg(d.subject), array_agg(d.payload)
              INTO v_taken, v_subjects, v_payloads
              FROM (SELECT d.id, 'pipeline/' || d.pipeline_id AS subject,
                           jsonb_build_object(
                               'schedule_id', d.id,
                               'pipeline_id', d.pipeline_id,
                               -- the master switches are read only for the few schedules that ask for
                               -- PRs (AND stops at false): no join of every due row to pipelines
                               'auto_create_pr', d.auto_create_pr AND (
                                   SELECT r.auto_remediate AND o.auto_remediate
                                     FROM nightshift.pipelines AS p
                                     JOIN nightshift.repositories AS r ON r.id = p.repository_id
                                     JOIN nightshift.organizations AS o ON o.id = r.organization_id
                                    WHERE p.id = d.pipeline_id),
                               'notification_channel', d.notification_channel,
                               'scheduled_for', d.next_run_at) AS payload
                      FROM due AS d
                     ORDER BY d.next_run_at, d.id) AS d;

        ELSIF v_kind = 'compliance-scan' THEN
            WITH due AS (
                SELECT s.id, s.ctid AS row_id, s.next_run_at,
                       'cloud_integration/' || s.cloud_integration_id AS subject,
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
                INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_ids)
                SELECT a.kind, max(a.next_run_at), array_agg(a.id)
                  FROM advanced AS a
                 GROUP BY a.kind, pg_catalog.date_trunc('minute', a.next_run_at AT TIME ZONE 'UTC')
            )
            SELECT array_agg(d.id), array_agg(d.subject), array_agg(d.payload)
              INTO v_taken, v_subjects, v_payloads
              FROM (SELECT d.id, d.subject, d.payload FROM due AS d ORDER BY d.next_run_at, d.id) AS d;

        ELSIF v_kind = 'cost-analysis' THEN
            v_lookback_days := nightshift.setting_integer('cost.lookback_days', 30);
            v_cost_actions := nightshift.setting_jsonb(
                'cost.actions', '["identify-unused", "rightsizing-recs", "commitment-coverage"]');
            WITH due AS (
                SELECT s.id, s.ctid AS row_id, s.next_run_at,
                       'organization/' || s.organization_id AS subject,
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
                INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_ids)
                SELECT a.kind, max(a.next_run_at), array_agg(a.id)
                  FROM advanced AS a
                 GROUP BY a.kind, pg_catalog.date_trunc('minute', a.next_run_at AT TIME ZONE 'UTC')
            )
            SELECT array_agg(d.id), array_agg(d.subject), array_agg(d.payload)
              INTO v_taken, v_subjects, v_payloads
              FROM (SELECT d.id, d.subject, d.payload FROM due AS d ORDER BY d.next_run_at, d.id) AS d;
        ELSE
            -- a kind marked scheduled in task_kinds without a statement here: the other kinds still run
            RAISE WARNING 'enqueue_due cannot build tasks of kind % yet', quote_literal(v_kind)
                USING HINT = 'add its statement to sql/functions/schedule_enqueue_due.sql';
            v_taken := NULL;
        END IF;
        PERFORM pg_catalog.set_config('nightshift.enqueue_due', '', true);

        -- One task per locked row whose target has none in flight, most overdue first. A plain INSERT
        -- after an anti-join against the tasks in flight: ON CONFLICT DO NOTHING made every row a
        -- speculative insertion (a lock, a second index probe and a confirmation record each), a quarter
        -- of the insert's time. A task of the same target committed between the anti-join and the
        -- insert (run_now, enqueue, a webhook) raises unique_violation: the insert alone is then
        -- repeated with ON CONFLICT DO NOTHING (the locks and the advance above stay).
        IF v_taken IS NOT NULL THEN
            v_count := cardinality(v_taken);
            BEGIN
                INSERT INTO nightshift.tasks (kind, subject, payload, run_after, schedule_id)
                SELECT v_kind, t.subject, t.payload,
                       now() + v_window * ((t.position - 1)::double precision / v_count), t.id
                  FROM unnest(v_taken, v_subjects, v_payloads) WITH ORDINALITY
                       AS t (id, subject, payload, position)
                 -- one hash of the kind's tasks in flight (read once, through the partial index
                 -- tasks_one_in_flight), probed per row: never a scan per row, whatever the statistics
                 -- of the table this statement is filling say
                 WHERE t.subject NOT IN (SELECT q.subject FROM nightshift.tasks AS q
                                          WHERE q.kind = v_kind AND q.status IN ('queued', 'running'));
                GET DIAGNOSTICS enqueued = ROW_COUNT;
            EXCEPTION WHEN unique_violation THEN
                INSERT INTO nightshift.tasks (kind, subject, payload, run_after, schedule_id)
                SELECT v_kind, t.subject, t.payload,
                       now() + v_window * ((t.position - 1)::double precision / v_count), t.id
                  FROM unnest(v_taken, v_subjects, v_payloads) WITH ORDINALITY
                       AS t (id, subject, payload, position)
                ON CONFLICT (kind, subject) WHERE status IN ('queued', 'running') DO NOTHING;
                GET DIAGNOSTICS enqueued = ROW_COUNT;
            END;
        END IF;
        skipped := coalesce(cardinality(v_taken), 0) - enqueued;

        -- The hints just read go: the rows taken have new ones at their next runs. The rest of a hint
        -- cut through by the batch size goes back as it was; the schedules named but not taken
        -- (v_left, usually none) are looked at below.
        DELETE FROM nightshift.schedule_wakeups AS w WHERE w.ctid = ANY (v_hint_rows);
        IF v_rest_ids IS NOT NULL THEN
            INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_ids)
            VALUES (v_kind, v_rest_at, v_rest_ids);
        END IF;
        v_left := NULL;
        IF cardinality(v_hint_ids) > coalesce(cardinality(v_taken), 0) THEN
            v_left := ARRAY(SELECT h.id FROM unnest(v_hint_ids) AS h (id)
                            EXCEPT SELECT t.id FROM unnest(v_taken) AS t (id));
        END IF;
        IF cardinality(v_left) > 0 THEN
            -- not taken and no longer due (rescheduled later, paused, deleted): the hint was stale, and
            -- a schedule that is due again has a hint at its next_run_at already, or needs none.
            -- Due, but another caller or a DBA holds its row: looked at again at the next call.
            -- Due, but its target is switched off: looked at again at its next slot, not every minute
            -- (switching the target on puts a hint back: trigger target_schedules).
            INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_ids)
            SELECT v_kind, max(l.run_at), array_agg(l.schedule_id)
              FROM (SELECT t.schedule_id,
                           CASE WHEN t.enabled THEN t.next_run_at
                                ELSE nightshift.next_run_at(t.frequency, now(), t.target_id) END AS run_at
                      FROM nightshift.schedule_targets AS t
                     WHERE t.schedule_id = ANY (v_left) AND t.kind = v_kind
                       AND t.is_active AND t.frequency <> 'UNMONITORED' AND t.next_run_at <= now()) AS l
             GROUP BY pg_catalog.date_trunc('minute', l.run_at AT TIME ZONE 'UTC'), l.run_at <= now();
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
