-- cancel_task / retry_task: the operator's levers (`nightshift tasks cancel|retry`).
-- Cancelling a running task fences its holder off: the holder's heartbeat no longer extends the
-- lease, so the dispatcher stops the run, and its completion changes nothing.
CREATE OR REPLACE FUNCTION nightshift.cancel_task(p_id bigint)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    /* cancel a queued or running task; false when it is already finished (or unknown) */
    UPDATE nightshift.tasks
       SET status = 'cancelled',
           locked_until = NULL,
           finished_at = now()
     WHERE id = p_id
       AND status IN ('queued', 'running');
    RETURN FOUND;
END
$$;

-- A dead, failed or cancelled task runs again. `attempt` never goes back (it is the fencing token),
-- so the task gets one more attempt than it has used: max_attempts grows when needed.
CREATE OR REPLACE FUNCTION nightshift.retry_task(p_id bigint)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    /* queue a dead, failed or cancelled task again now; false when it is in another state */
    UPDATE nightshift.tasks
       SET status = 'queued',
           run_after = now(),
           max_attempts = greatest(max_attempts, attempt + 1),
           locked_until = NULL,
           finished_at = NULL
     WHERE id = p_id
       AND status IN ('dead', 'failed', 'cancelled');
    RETURN FOUND;
EXCEPTION WHEN unique_violation THEN
    -- rule 3: a newer task for the same kind and subject is queued or running
    RAISE EXCEPTION 'task % cannot be retried: another task for the same kind and subject is in flight',
        p_id USING ERRCODE = 'unique_violation';
END
$$;

DO $$
BEGIN
    -- operators, not dispatchers: granted to the owner role only (superusers and the owner may call)
    REVOKE ALL ON FUNCTION nightshift.cancel_task(bigint) FROM PUBLIC;
    REVOKE ALL ON FUNCTION nightshift.retry_task(bigint) FROM PUBLIC;
END
$$;
