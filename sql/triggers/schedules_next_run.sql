-- next_run_at follows the schedule, so a DBA reschedules with a plain UPDATE (DESIGN.md rule 2):
--   INSERT without next_run_at   -> the target's next slot after now() (a new DAILY schedule runs at its
--                                   next daily slot, not immediately; use run_now() for a first run)
--   UPDATE ... SET frequency     -> the next slot of the new frequency (NULL for UNMONITORED)
--   UPDATE ... SET is_active     -> on resume, the next slot after now(): slots missed while paused are
--                                   skipped, not caught up
--   UPDATE ... SET next_run_at = NULL on a monitored schedule -> its next slot after now() (NULL would
--                                   mean "never", silently; UNMONITORED is how to say that)
-- An UPDATE that sets next_run_at itself to a time is left alone, so a DBA can still move one run by hand.
CREATE OR REPLACE FUNCTION nightshift.schedules_next_run()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
AS $$
BEGIN
    /* Compute next_run_at of a new or rescheduled schedule row from its frequency and target. */
    IF TG_OP = 'UPDATE' AND NEW.next_run_at IS NOT NULL AND (
           NEW.next_run_at IS DISTINCT FROM OLD.next_run_at
           OR NOT (NEW.frequency IS DISTINCT FROM OLD.frequency OR (NEW.is_active AND NOT OLD.is_active))) THEN
        RETURN NEW;
    END IF;
    NEW.next_run_at := nightshift.next_run_at(
        NEW.frequency, now(), coalesce(NEW.pipeline_id, NEW.cloud_integration_id, NEW.organization_id));
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS schedules_next_run_insert ON nightshift.schedules;
CREATE TRIGGER schedules_next_run_insert
    BEFORE INSERT ON nightshift.schedules
    FOR EACH ROW
    WHEN (NEW.next_run_at IS NULL)  -- bulk loads that set next_run_at never call the function
    EXECUTE FUNCTION nightshift.schedules_next_run();

-- The WHEN clause is evaluated without calling the function: enqueue_due() advancing next_run_at of
-- 100,000 rows (never to NULL, same frequency, same is_active) costs no function call.
DROP TRIGGER IF EXISTS schedules_next_run_update ON nightshift.schedules;
CREATE TRIGGER schedules_next_run_update
    BEFORE UPDATE OF frequency, is_active, next_run_at ON nightshift.schedules
    FOR EACH ROW
    WHEN (NEW.frequency IS DISTINCT FROM OLD.frequency
          OR (NEW.is_active AND NOT OLD.is_active)
          OR (NEW.next_run_at IS NULL AND NEW.frequency <> 'UNMONITORED'))
    EXECUTE FUNCTION nightshift.schedules_next_run();
