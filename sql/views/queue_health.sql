-- nightshift.queue_tasks_recent: the tasks a queue health check looks at, with their organization:
-- queued or running now, or failed or dead in the last day. A task about a pull request (subject
-- pr/<repository>/<number>) belongs to its repository's organization.
CREATE OR REPLACE VIEW nightshift.queue_tasks_recent WITH (security_invoker = true) AS
SELECT t.organization_id, q.id, q.kind, q.subject, q.status, q.run_after, q.started_at, q.finished_at,
       q.attempt, q.last_error
  FROM nightshift.subjects AS t
  JOIN (SELECT * FROM nightshift.tasks WHERE status IN ('queued', 'running')
        UNION ALL
        SELECT * FROM nightshift.tasks   -- tasks_failed_idx
         WHERE status IN ('failed', 'dead') AND finished_at > now() - interval '1 day') AS q
    ON q.subject = t.subject
UNION ALL
SELECT r.organization_id, q.id, q.kind, q.subject, q.status, q.run_after, q.started_at, q.finished_at,
       q.attempt, q.last_error
  FROM nightshift.repositories AS r
  JOIN (SELECT * FROM nightshift.tasks WHERE status IN ('queued', 'running') AND subject LIKE 'pr/%'
        UNION ALL
        SELECT * FROM nightshift.tasks
         WHERE status IN ('failed', 'dead') AND finished_at > now() - interval '1 day' AND subject LIKE 'pr/%') AS q
    ON nightshift.pr_subject_repository(q.subject) = r.id;

COMMENT ON VIEW nightshift.queue_tasks_recent IS 'tasks queued or running now, or failed or dead in the last day';

-- nightshift.queue_health answers "is the work getting done?": per organization and task kind, what
-- waits and runs now, how long the oldest due task has waited, what finished in the last hour and day
-- (results stored: the scans, read from scans_subject_idx rather than from every task of the day), and
-- what failed or died in the last day.
--   SELECT kind, queued, running, oldest_queued_age, done_last_day, dead_last_day
--     FROM nightshift.queue_health WHERE organization_id = 1;
CREATE OR REPLACE VIEW nightshift.queue_health WITH (security_invoker = true) AS
SELECT organization_id, kind,
       count(*) FILTER (WHERE status = 'queued') AS queued,
       count(*) FILTER (WHERE status = 'queued' AND run_after <= now()) AS queued_due,
       count(*) FILTER (WHERE status = 'running') AS running,
       date_trunc('second', now() - min(run_after) FILTER (WHERE status = 'queued' AND run_after <= now()))
           AS oldest_queued_age,
       count(*) FILTER (WHERE status = 'done' AND finished_at > now() - interval '1 hour') AS done_last_hour,
       count(*) FILTER (WHERE status = 'done') AS done_last_day,
       count(*) FILTER (WHERE status = 'failed') AS failed_last_day,
       count(*) FILTER (WHERE status = 'dead') AS dead_last_day,
       date_trunc('second', avg(finished_at - started_at) FILTER (WHERE status = 'done')) AS mean_run_time
  FROM (SELECT organization_id, kind, status, run_after, started_at, finished_at
          FROM nightshift.queue_tasks_recent
        UNION ALL
        SELECT t.organization_id, s.kind, 'done'::nightshift.task_status, NULL, s.started_at, s.finished_at
          FROM nightshift.subjects AS t
          JOIN nightshift.scans AS s ON s.subject = t.subject AND s.finished_at > now() - interval '1 day') AS q
 GROUP BY organization_id, kind;

COMMENT ON VIEW nightshift.queue_health IS
    'per organization and kind: queued, running, oldest queued age, done/failed/dead in the last day';

-- nightshift.queue_throughput: per organization, kind and hour of the last day, results stored (done)
-- and tasks failed or dead, for charts.
CREATE OR REPLACE VIEW nightshift.queue_throughput WITH (security_invoker = true) AS
SELECT organization_id, kind, date_trunc('hour', finished_at) AS hour,
       count(*) FILTER (WHERE done) AS done,
       count(*) FILTER (WHERE NOT done) AS failed
  FROM (SELECT organization_id, kind, finished_at, false AS done
          FROM nightshift.queue_tasks_recent WHERE finished_at IS NOT NULL
        UNION ALL
        SELECT t.organization_id, s.kind, s.finished_at, true
          FROM nightshift.subjects AS t
          JOIN nightshift.scans AS s ON s.subject = t.subject AND s.finished_at > now() - interval '1 day') AS q
 GROUP BY 1, 2, 3;

COMMENT ON VIEW nightshift.queue_throughput IS 'per organization, kind and hour of the last day: tasks finished';

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_reader') THEN
        GRANT SELECT ON nightshift.queue_tasks_recent, nightshift.queue_health, nightshift.queue_throughput
           TO nightshift_reader;
    END IF;
END
$$;
