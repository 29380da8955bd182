-- fail_task: record a failed attempt, fenced by its attempt number, and decide what happens next.
--   retryable and attempts left  -> queued again after retry_delay(attempt) (backoff + jitter)
--   retryable, no attempts left  -> dead
--   not retryable (p_retry false) -> failed
-- Every attempt's error is kept in `errors` (and the latest in `last_error`).
CREATE OR REPLACE FUNCTION nightshift.fail_task(
    p_id bigint,
    p_attempt integer,
    p_error text,
    p_retry boolean DEFAULT true
) RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_status nightshift.task_status;
BEGIN
    /* the task's new status, or NULL when p_attempt is not the running attempt (a stale holder) */
    UPDATE nightshift.tasks AS t
       SET status = CASE
                        WHEN NOT p_retry THEN 'failed'
                        WHEN t.attempt >= t.max_attempts THEN 'dead'
                        ELSE 'queued'
                    END::nightshift.task_status,
           run_after = CASE
                           WHEN p_retry AND t.attempt < t.max_attempts
                               THEN now() + nightshift.retry_delay(t.attempt)
                           ELSE t.run_after
                       END,
           last_error = p_error,
           errors = t.errors || jsonb_build_array(jsonb_build_object(
               'attempt', t.attempt, 'worker', t.locked_by, 'at', now(), 'error', p_error)),
           locked_until = NULL,
           finished_at = CASE WHEN p_retry AND t.attempt < t.max_attempts THEN NULL ELSE now() END
     WHERE t.id = p_id
       AND t.attempt = p_attempt
       AND t.status = 'running'
    RETURNING t.status INTO v_status;
    RETURN v_status::text;
END
$$;

-- SECURITY DEFINER: nobody but the roles granted below may call it
REVOKE ALL ON FUNCTION nightshift.fail_task(bigint, integer, text, boolean) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.fail_task(bigint, integer, text, boolean)
            TO nightshift_dispatcher;
    END IF;
END
$$;
