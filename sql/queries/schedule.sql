-- Queries of `nightshift schedule` (dispatcher/scheduling.py). Each calls the SQL API a DBA uses in psql.

-- name: schedule_list --
-- every schedule with its target, soonest next run first
SELECT t.kind, t.subject, t.frequency::text AS frequency, t.is_active, t.enabled, t.next_run_at
  FROM nightshift.schedule_targets AS t
 WHERE (%(kind)s::text IS NULL OR t.kind = %(kind)s::text)
 ORDER BY t.next_run_at NULLS LAST, t.kind, t.subject

-- name: schedule_set_frequency --
-- set a target's frequency (creating a pipeline's drift schedule); the schedule row after the change
SELECT s.kind, s.frequency::text AS frequency, s.is_active, s.next_run_at
  FROM nightshift.set_frequency(%(target)s, %(frequency)s) AS s

-- name: schedule_pause --
-- stop a target's scheduled runs
SELECT s.kind, s.frequency::text AS frequency, s.is_active, s.next_run_at
  FROM nightshift.pause(%(target)s) AS s

-- name: schedule_resume --
-- restart a target's scheduled runs at its next slot
SELECT s.kind, s.frequency::text AS frequency, s.is_active, s.next_run_at
  FROM nightshift.resume(%(target)s) AS s

-- name: schedule_run_now --
-- enqueue a target's task now; NULL when one is already queued or running
SELECT nightshift.run_now(%(target)s) AS task_id

-- name: schedule_upcoming --
-- the forecast of enqueue_due for the next interval
SELECT u.run_at, u.kind, u.subject, u.frequency::text AS frequency, u.overdue
  FROM nightshift.upcoming_runs(%(within)s::interval, %(kind)s::text, %(limit)s::integer) AS u

-- name: schedule_enqueue_due --
-- what the pg_cron job does every minute, on demand
SELECT e.kind, e.enqueued, e.skipped
  FROM nightshift.enqueue_due(%(kind)s::text, %(limit)s::integer) AS e
