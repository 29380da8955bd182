-- retry_notification: the operator's lever (`nightshift notify retry ID`). A failed or dead outbox row
-- is pending again now, with its attempts counted from zero, and the senders are woken.
CREATE OR REPLACE FUNCTION nightshift.retry_notification(p_id bigint)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    /* queue a failed or dead notification again; false when it is in another state (or unknown) */
    UPDATE nightshift.notifications
       SET status = 'pending', attempts = 0, next_attempt_at = now(), locked_until = NULL
     WHERE id = p_id AND status IN ('failed', 'dead');
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pg_notify('nightshift_notifications', jsonb_build_object('count', 1, 'retry', p_id)::text);
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION nightshift.retry_notification(bigint) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.retry_notification(bigint) TO nightshift_dispatcher;
    END IF;
END
$$;
