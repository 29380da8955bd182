-- rebuild_schedule_wakeups: recreate every hint enqueue_due reads from the schedules themselves — after a
-- load that bypassed triggers (session_replication_role = replica, a data-only restore), or to drop
-- accumulated stale hints. Safe while pg_cron runs: it holds a SHARE ROW EXCLUSIVE lock on the hints
-- for the rebuild, so enqueue_due waits for it rather than seeing a half-built table.
--   SELECT nightshift.rebuild_schedule_wakeups();   -- the number of hints written
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
    /* Replace all schedule hints by one per active, monitored schedule, at its next_run_at. */
    LOCK TABLE nightshift.schedule_wakeups IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM nightshift.schedule_wakeups;
    INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_id)
    SELECT s.kind, s.next_run_at, s.id
      FROM nightshift.schedules AS s
     WHERE s.is_active AND s.frequency <> 'UNMONITORED' AND s.next_run_at IS NOT NULL
     -- in index order: ten million hints fill the index page after page instead of at random
     ORDER BY s.kind, s.next_run_at;
    GET DIAGNOSTICS v_written = ROW_COUNT;
    RETURN v_written;
END
$$;

REVOKE EXECUTE ON FUNCTION nightshift.rebuild_schedule_wakeups() FROM PUBLIC;
