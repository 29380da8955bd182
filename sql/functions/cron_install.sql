-- install_cron_jobs / uninstall_cron_jobs: register and remove this database's pg_cron jobs
-- (nightshift.cron_job_specs) from SQL, when pg_cron lives in this database (cron.database_name).
-- When it lives elsewhere on the server, `nightshift cron install|uninstall` does the same from there.
-- Installing again updates the jobs (pg_cron keys them by name and user), never duplicates them.
-- Jobs run as the user who installs them: install as the owner of the Nightshift schema, or as a user
-- granted nightshift_scheduler (EXECUTE on enqueue_due and run_maintenance).
--   SELECT * FROM nightshift.install_cron_jobs();
--   SELECT * FROM nightshift.uninstall_cron_jobs();
CREATE OR REPLACE FUNCTION nightshift.install_cron_jobs()
RETURNS TABLE (jobname text, jobid bigint, schedule text, database text)
LANGUAGE plpgsql
VOLATILE
AS $$
#variable_conflict use_column
DECLARE
    v_spec record;
BEGIN
    /* Schedule (or update) every job of cron_job_specs() in pg_cron, as the current user. */
    PERFORM nightshift.require_local_cron();
    FOR v_spec IN SELECT * FROM nightshift.cron_job_specs() LOOP
        -- dynamic: the cron schema exists only in pg_cron's database
        EXECUTE 'SELECT cron.schedule_in_database($1, $2, $3, $4)'
           INTO jobid
          USING v_spec.jobname, v_spec.schedule, v_spec.command, v_spec.database;
        jobname := v_spec.jobname;
        schedule := v_spec.schedule;
        database := v_spec.database;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION nightshift.uninstall_cron_jobs()
RETURNS TABLE (jobname text, jobid bigint)
LANGUAGE plpgsql
VOLATILE
AS $$
#variable_conflict use_column
BEGIN
    /* Unschedule exactly this database's Nightshift jobs of the current user; return what was removed. */
    PERFORM nightshift.require_local_cron();
    -- dynamic: the cron schema exists only in pg_cron's database
    -- the jobs are picked in a materialized CTE first: in one WHERE clause the planner may call the cheap
    -- cron.unschedule() before the name test, and unschedule every job on the server
    RETURN QUERY EXECUTE $sql$
        WITH ours AS MATERIALIZED (
            SELECT j.jobname::text AS jobname, j.jobid
              FROM cron.job AS j
             WHERE j.username = current_user
               AND j.jobname IN (SELECT s.jobname FROM nightshift.cron_job_specs() AS s)
        )
        SELECT o.jobname, o.jobid
          FROM ours AS o
         WHERE cron.unschedule(o.jobid)
    $sql$;
END
$$;

-- require_local_cron: a clear error instead of "schema cron does not exist".
CREATE OR REPLACE FUNCTION nightshift.require_local_cron()
RETURNS void
LANGUAGE plpgsql
STABLE
AS $$
BEGIN
    /* Raise unless pg_cron is installed in this database. */
    IF to_regnamespace('cron') IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not in this database (cron.database_name is %)',
            coalesce((SELECT quote_literal(setting) FROM pg_settings WHERE name = 'cron.database_name'),
                     'not set: pg_cron is not loaded')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'run `nightshift cron install`, which schedules the jobs from pg_cron''s database, '
                         'or there: SELECT cron.schedule_in_database(jobname, schedule, command, database) '
                         'for each row of nightshift.cron_job_specs()';
    END IF;
END
$$;
