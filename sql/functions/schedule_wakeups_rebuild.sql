-- rebuild_schedule_wakeups: recreate every hint enqueue_due reads from the schedules themselves — after a
-- load that bypassed triggers (session_replication_role = replica, a data-only restore), or to drop
-- accumulated stale hints. Safe while pg_cron runs: it holds a SHARE ROW EXCLUSIVE lock on the hints
-- for the rebuild, so enqueue_due waits for it rather than seeing a half-built table.
--   SELECT nightshift.rebuild_schedule_wakeups();   -- the number of schedules the new hints name
CREATE OR REPLACE FUNCTION nightshift.rebuild_schedule_wakeups()
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET work_mem = '256MB'
AS $$
DECLARE
    v_written bigint;
BEGIN
    /* Replace all schedule hints by one per minute of next runs of active, monitored schedules. */
    LOCK TABLE nightshift.schedule_wakeups IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM nightshift.schedule_wakeups;
    -- as the insert trigger groups them (sql/triggers/schedules_wakeups.sql)
    WITH hint AS (
        INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_ids)
        SELECT s.kind, max(s.next_run_at), array_agg(s.id)
          FROM nightshift.schedules AS s
         WHERE s.is_active AND s.frequency <> 'UNMONITORED' AND s.next_run_at IS NOT NULL
         GROUP BY s.kind, pg_catalog.date_trunc('minute', s.next_run_at AT TIME ZONE 'UTC'),
                  s.next_run_at <= now()
        RETURNING cardinality(schedule_ids) AS named
    )
    SELECT coalesce(sum(hint.named), 0) INTO v_written FROM hint;
    RETURN v_written;
END
$$;

REVOKE EXECUTE ON FUNCTION nightshift.rebuild_schedule_wakeups() FROM PUBLIC;
