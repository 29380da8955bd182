-- cron_job_specs: the pg_cron jobs Nightshift needs, as data — the one definition that both
-- install_cron_jobs() (pg_cron in this database) and `nightshift cron install` (pg_cron in another
-- database of the same server) schedule with cron.schedule_in_database.
--
--   nightshift-enqueue-due          every minute      SELECT * FROM nightshift.enqueue_due()
--   nightshift-maintenance          every five min.   SELECT nightshift.run_maintenance()
--   nightshift-purge-cron-history   hourly, only when pg_cron lives in another database: run there, it
--                                   deletes Nightshift's old cron.job_run_details rows (maintenance cannot
--                                   reach that database)
--
-- pg_cron job names are unique per (jobname, username) across the whole server, so when this database is
-- not cron.database_name the names get '@<this database>' appended: two Nightshift databases on one server
-- keep separate jobs. Schedules come from the settings 'cron.enqueue_due.schedule' and
-- 'cron.maintenance.schedule'; `database` is where each job runs.
CREATE OR REPLACE FUNCTION nightshift.cron_job_specs()
RETURNS TABLE (jobname text, schedule text, command text, database text)
LANGUAGE sql
STABLE
AS $$
    /* The name, schedule, command and database of each of this database's pg_cron jobs. */
    -- pg_settings, not current_setting(): it lists cron.database_name only when pg_cron is loaded
    WITH place AS (
        SELECT pg_catalog.current_database() AS here,
               (SELECT ps.setting FROM pg_catalog.pg_settings AS ps
                 WHERE ps.name = 'cron.database_name') AS cron_database
    ), naming AS (
        SELECT p.here, p.cron_database,
               CASE WHEN p.cron_database = p.here THEN '' ELSE '@' || p.here END AS suffix
          FROM place AS p
    )
    SELECT 'nightshift-enqueue-due' || n.suffix,
           coalesce((SELECT st.value FROM nightshift.settings AS st
                      WHERE st.key = 'cron.enqueue_due.schedule'), '* * * * *'),
           'SELECT * FROM nightshift.enqueue_due()',
           n.here::text
      FROM naming AS n
    UNION ALL
    SELECT 'nightshift-maintenance' || n.suffix,
           coalesce((SELECT st.value FROM nightshift.settings AS st
                      WHERE st.key = 'cron.maintenance.schedule'), '*/5 * * * *'),
           'SELECT nightshift.run_maintenance()',
           n.here::text
      FROM naming AS n
    UNION ALL
    SELECT 'nightshift-purge-cron-history' || n.suffix,
           '17 * * * *',
           pg_catalog.format(
               'DELETE FROM cron.job_run_details WHERE runid IN (SELECT d.runid FROM cron.job_run_details d '
               'JOIN cron.job j ON j.jobid = d.jobid WHERE j.jobname LIKE %L '
               'AND coalesce(d.end_time, d.start_time) < now() - interval %L)',
               'nightshift-%',
               coalesce((SELECT st.value FROM nightshift.settings AS st
                          WHERE st.key = 'retention.cron_run_details'), '7 days')),
           n.cron_database
      FROM naming AS n
     WHERE n.cron_database IS DISTINCT FROM n.here
$$;
