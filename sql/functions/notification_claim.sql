-- claim_notifications: hand up to p_limit due outbox rows to one sender, in one statement, with a
-- lease (DESIGN.md rule 4, as claim_tasks does for tasks). SKIP LOCKED lets several senders claim at
-- once; each claim increments `attempts`, the fencing token the sender's mark_notifications_sent /
-- fail_notifications must name, so a sender whose lease expired changes nothing when it comes back.
--
-- Due: pending with next_attempt_at passed (digest rows wait for the end of their period, see the
-- notifications_schedule trigger). p_skip_channels: channels the sender is holding back (rate limit,
-- a 429's Retry-After); their rows stay pending and are sent grouped once the channel is free.
-- Longest due first, so one channel's burst is sent together and in order.
CREATE OR REPLACE FUNCTION nightshift.claim_notifications(
    p_worker text,
    p_limit integer,
    p_lease interval,
    p_skip_channels text[] DEFAULT '{}'
) RETURNS SETOF nightshift.notifications
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    /* requeue rows whose sender's lease expired, then claim the next due rows for p_worker */
    PERFORM nightshift.requeue_expired_notifications();
    RETURN QUERY
    UPDATE nightshift.notifications AS n
       SET status = 'sending',
           attempts = n.attempts + 1,
           locked_by = p_worker,
           locked_until = now() + p_lease
      FROM (SELECT q.id
              FROM nightshift.notifications AS q
             WHERE q.status = 'pending'
               AND q.next_attempt_at <= now()
               AND q.channel <> ALL (coalesce(p_skip_channels, '{}'))
             -- notifications_pending_idx order: the claim reads pending rows only, never the sent
             -- ones that pile up below them in id order
             ORDER BY q.next_attempt_at, q.id
             LIMIT p_limit
               FOR UPDATE SKIP LOCKED) AS picked
     WHERE n.id = picked.id
    RETURNING n.*;
END
$$;

-- requeue_expired_notifications: rows whose sender died (or stalled past its lease) between claim and
-- mark go back to pending, or to dead when out of attempts. A sender that crashed after the endpoint
-- accepted a message but before marking it sent causes that message to be sent again: delivery is
-- at-least-once, with at most one duplicate per lease expiry.
CREATE OR REPLACE FUNCTION nightshift.requeue_expired_notifications()
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_max integer := coalesce((SELECT value::integer FROM nightshift.settings
                                WHERE key = 'notifications.max_attempts'), 10);
    v_count integer;
BEGIN
    /* pending again (or dead) every sending row whose lease has expired; returns how many */
    UPDATE nightshift.notifications AS n
       SET status = CASE WHEN n.attempts >= v_max THEN 'dead' ELSE 'pending' END::nightshift.notification_status,
           last_error = 'the sender ' || coalesce(n.locked_by, '?') || ' lost its lease (attempt '
                        || n.attempts || ')',
           next_attempt_at = now(),
           locked_until = NULL
      FROM (SELECT q.id FROM nightshift.notifications AS q
             WHERE q.status = 'sending' AND q.locked_until < now()
               FOR UPDATE SKIP LOCKED) AS expired
     WHERE n.id = expired.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

REVOKE ALL ON FUNCTION nightshift.claim_notifications(text, integer, interval, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION nightshift.requeue_expired_notifications() FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.claim_notifications(text, integer, interval, text[])
            TO nightshift_dispatcher;
        GRANT EXECUTE ON FUNCTION nightshift.requeue_expired_notifications() TO nightshift_dispatcher;
    END IF;
END
$$;
