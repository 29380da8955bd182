-- Named queries of the task queue, run by dispatcher/store.py (one query per store method).
-- Every query calls a function of sql/functions/queue_*.sql: a DBA does the same from psql.
-- Blocks are headed `-- name: <name> --` and a one-line description; the loader is dispatcher/queries.py.

-- name: task_complete_and_claim --
-- Complete the finished tasks and claim the next ones in one statement. The daemon sends it twice per
-- round trip, pipelined: a claim (no ids), then the completions (limit 0), each its own transaction.
SELECT completed, id, kind, subject, payload, attempt, max_attempts, priority, schedule_id, locked_until,
       run_after
  FROM nightshift.complete_and_claim(%(ids)s::bigint[], %(attempts)s::int[], %(worker)s::text,
                                     %(kinds)s::text[], %(limit)s::int, %(lease)s::interval,
                                     %(after_priority)s::int, %(after_run_after)s::timestamptz,
                                     %(after_id)s::bigint)

-- name: task_fail --
-- Record a failed attempt; returns the new status, NULL for a stale holder.
SELECT nightshift.fail_task(%(id)s::bigint, %(attempt)s::int, %(error)s::text, %(retry)s::boolean) AS status

-- name: task_release_many --
-- Give running tasks back to the queue at shutdown, without spending an attempt.
SELECT nightshift.release_tasks(%(ids)s::bigint[], %(attempts)s::int[], %(reason)s::text) AS released

-- name: task_heartbeat --
-- Extend the leases this worker still holds; returns their ids.
SELECT nightshift.heartbeat(%(ids)s::bigint[], %(worker)s::text, %(attempts)s::int[], %(lease)s::interval) AS extended

-- name: task_requeue_expired --
-- Requeue (or bury) running tasks whose lease has expired.
SELECT nightshift.requeue_expired() AS requeued

-- name: task_enqueue --
-- Add a task unless one for the same kind and subject is in flight; returns its id or NULL.
SELECT nightshift.enqueue(%(kind)s::text, %(subject)s::text, %(payload)s::jsonb, %(priority)s::int,
                          %(run_after)s::timestamptz, %(max_attempts)s::int) AS id

-- name: task_cancel --
-- Cancel a queued or running task.
SELECT nightshift.cancel_task(%(id)s::bigint) AS cancelled

-- name: task_retry --
-- Queue a dead, failed or cancelled task again.
SELECT nightshift.retry_task(%(id)s::bigint) AS retried

-- name: task_get --
-- One task with its whole history of errors.
SELECT id, kind, subject, payload, status::text AS status, priority, run_after, attempt, max_attempts,
       locked_by, locked_until, last_error, errors, schedule_id, created_at, started_at, finished_at,
       summary
  FROM nightshift.tasks
 WHERE id = %(id)s::bigint

-- name: task_list --
-- The most recent tasks, optionally of one status and kind.
SELECT id, kind, subject, payload, status::text AS status, priority, run_after, attempt, max_attempts,
       locked_by, locked_until, last_error, errors, schedule_id, created_at, started_at, finished_at,
       summary
  FROM nightshift.tasks
 WHERE (%(status)s::text IS NULL OR status::text = %(status)s::text)
   AND (%(kind)s::text IS NULL OR kind = %(kind)s::text)
 ORDER BY id DESC
 LIMIT %(limit)s::int

-- name: queue_stats --
-- Depth, running count and oldest due queued age per kind.
SELECT kind, queued, running, oldest_queued_seconds FROM nightshift.queue_stats()

-- name: task_targets --
-- The rows describing a task's subject, for agents that ask for them.
SELECT nightshift.task_targets(%(subject)s::text) AS targets

-- name: result_record --
-- Store any agent's result (summary, scan, findings, outbox rows) and complete the task, in one transaction.
SELECT r.stored, r.scan_id FROM nightshift.record_result(%(task_id)s::bigint, %(attempt)s::int, %(result)s::jsonb) AS r
