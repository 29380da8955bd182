-- The hints enqueue_due() reads (table nightshift.schedule_wakeups): every active, monitored schedule
-- is named by one (schedule_ids) whose run_at is at or before its next_run_at, or in the same minute.
-- enqueue_due writes them for the rows it advances; these triggers write them for everything else that
-- sets a next run:
--   INSERT of schedules (one statement-level insert, so a bulk load of a million rows is one statement)
--   UPDATE of next_run_at, frequency, is_active or kind by anyone but enqueue_due: a DBA's reschedule,
--   set_frequency, resume
-- A hint is only a place to look: the schedule row decides, so a stale hint (the row was rescheduled
-- later, paused, deleted) costs one check when it comes due and is then dropped. Nothing removes hints
-- on DELETE or TRUNCATE of schedules for that reason.
-- Loads that bypass triggers (session_replication_role = replica, pg_restore of data only) must call
-- nightshift.rebuild_schedule_wakeups() afterwards, or their schedules never come due.
CREATE OR REPLACE FUNCTION nightshift.schedules_wakeups_insert()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    /* One hint per minute of next runs among the inserted schedules that can come due. */
    -- at the latest next run of each minute (a call during that minute may leave the earlier ones to the
    -- next minute's call); those already due apart, so that they are due at once
    INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_ids)
    SELECT n.kind, max(n.next_run_at), array_agg(n.id)
      FROM new_rows AS n
     WHERE n.is_active AND n.frequency <> 'UNMONITORED' AND n.next_run_at IS NOT NULL
     GROUP BY n.kind, pg_catalog.date_trunc('minute', n.next_run_at AT TIME ZONE 'UTC'),
              n.next_run_at <= now();
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION nightshift.schedules_wakeups_update()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    /* A hint at the rescheduled row's new next_run_at. */
    INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_ids)
    VALUES (NEW.kind, NEW.next_run_at, ARRAY[NEW.id]);
    RETURN NULL;
END
$$;

REVOKE EXECUTE ON FUNCTION nightshift.schedules_wakeups_insert() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nightshift.schedules_wakeups_update() FROM PUBLIC;

DROP TRIGGER IF EXISTS schedules_wakeups_insert ON nightshift.schedules;
CREATE TRIGGER schedules_wakeups_insert
    AFTER INSERT ON nightshift.schedules
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nightshift.schedules_wakeups_insert();

-- Per row, filtered by WHEN (evaluated without calling the function): enqueue_due's own advance of
-- 100,000 rows (it sets nightshift.enqueue_due for the duration of its statement) and updates that
-- leave the next run alone cost nothing here.
DROP TRIGGER IF EXISTS schedules_wakeups_update ON nightshift.schedules;
CREATE TRIGGER schedules_wakeups_update
    AFTER UPDATE OF next_run_at, frequency, is_active, kind ON nightshift.schedules
    FOR EACH ROW
    WHEN (NEW.is_active AND NEW.frequency <> 'UNMONITORED' AND NEW.next_run_at IS NOT NULL
          AND (NEW.next_run_at IS DISTINCT FROM OLD.next_run_at OR NOT OLD.is_active
               OR OLD.frequency = 'UNMONITORED' OR NEW.kind IS DISTINCT FROM OLD.kind)
          AND pg_catalog.current_setting('nightshift.enqueue_due', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION nightshift.schedules_wakeups_update();
