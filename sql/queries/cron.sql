-- Queries of `nightshift cron` (dispatcher/cron.py). The first two run in the Nightshift database, the
-- others in pg_cron's database (cron.database_name), which may be another database of the same server.

-- name: cron_location --
-- this database and the database pg_cron runs in (NULL when pg_cron is not loaded)
SELECT pg_catalog.current_database() AS database,
       (SELECT ps.setting FROM pg_catalog.pg_settings AS ps WHERE ps.name = 'cron.database_name')
           AS cron_database

-- name: cron_job_specs --
-- the jobs this Nightshift database needs: the one definition shared with install_cron_jobs()
SELECT s.jobname, s.schedule, s.command, s.database
  FROM nightshift.cron_job_specs() AS s
 ORDER BY s.jobname

-- name: cron_schedule --
-- create or update one job (pg_cron keys jobs by name and user); runs as the current user
SELECT cron.schedule_in_database(%(jobname)s, %(schedule)s, %(command)s, %(database)s) AS jobid

-- name: cron_unschedule --
-- remove the current user's jobs with these names; the names actually removed
-- (the jobs are picked first, in a materialized CTE: in one WHERE clause the planner may call the cheap
-- cron.unschedule() before the name test, and unschedule every job on the server)
WITH ours AS MATERIALIZED (
    SELECT j.jobid, j.jobname
      FROM cron.job AS j
     WHERE j.username = current_user
       AND j.jobname = ANY (%(jobnames)s::text[])
)
SELECT o.jobname
  FROM ours AS o
 WHERE cron.unschedule(o.jobid)

-- name: cron_jobs --
-- the installed jobs with these names
SELECT j.jobid, j.jobname, j.schedule, j.command, j.database, j.username, j.active
  FROM cron.job AS j
 WHERE j.jobname = ANY (%(jobnames)s::text[])
 ORDER BY j.jobname

-- name: cron_recent_runs --
-- the last runs of each job, newest first, failures included
SELECT j.jobname, r.status, r.start_time, r.end_time, r.return_message
  FROM cron.job AS j
 CROSS JOIN LATERAL (SELECT d.status, d.start_time, d.end_time, d.return_message
                       FROM cron.job_run_details AS d
                      WHERE d.jobid = j.jobid
                      ORDER BY d.start_time DESC NULLS LAST
                      LIMIT %(runs)s) AS r
 WHERE j.jobname = ANY (%(jobnames)s::text[])
 ORDER BY j.jobname, r.start_time DESC NULLS LAST
