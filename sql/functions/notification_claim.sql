-- claim_notifications: hand up to p_limit due outbox rows to one sender, in one call, with a lease
-- (DESIGN.md rule 4, as claim_tasks does for tasks). SKIP LOCKED lets several senders claim at once;
-- each claim increments `attempts`, the fencing token the sender's mark_notifications_sent /
-- fail_notifications must name, so a sender whose lease expired changes nothing when it comes back.
--
-- Due: pending with next_attempt_at passed (digest rows wait for the end of their period, see the
-- notifications_schedule trigger). Longest due first, so one channel's burst is sent together and in
-- order.
--
-- The rate limit is in the database, so it holds across senders on several machines: a channel
-- (a notification_channels row) is skipped while it is held (held_until: its min_interval after
-- the last send, a 429's Retry-After) or while another sender holds its lease (locked_until: that
-- sender is sending rows it claimed). A claim that takes rows of a channel takes the channel's lease
-- too, with the same length as the rows'; marking the rows (mark_notifications_sent,
-- fail_notifications, release_notifications) ends it and starts the hold. So at most one sender sends
-- to a channel at a time, and never sooner than min_interval after the previous message: whatever
-- arrives meanwhile waits and goes out grouped. Rows naming no channel row (the log default, a typo)
-- have no limit to keep and are claimed as they come (the sender fails the typos).
-- p_skip_channels: channels the sender itself holds back or is still sending to.
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
DECLARE
    v_busy text[];
    v_ids bigint[];
    v_names text[];
    v_known text[];
    v_free text[];
BEGIN
    /* requeue rows whose sender's lease expired, then claim due rows of free channels for p_worker */
    PERFORM nightshift.requeue_expired_notifications();

    -- channels that may not be sent to now (held, or leased to a sender), and those the caller skips
    v_busy := ARRAY(SELECT c.name FROM nightshift.notification_channels AS c
                     WHERE c.held_until > now() OR c.locked_until > now())
              || coalesce(p_skip_channels, '{}');

    -- the due rows of the other channels, locked (SKIP LOCKED: another sender's claim takes others)
    SELECT array_agg(q.id), array_agg(DISTINCT q.channel)
      INTO v_ids, v_names
      FROM (SELECT r.id, r.channel
              FROM nightshift.notifications AS r
             WHERE r.status = 'pending'
               AND r.next_attempt_at <= now()
               AND r.channel <> ALL (v_busy)
             -- notifications_pending_idx order: the claim reads pending rows only, never the sent
             -- ones that pile up below them in id order
             ORDER BY r.next_attempt_at, r.id
             LIMIT p_limit
               FOR UPDATE SKIP LOCKED) AS q;
    IF v_ids IS NULL THEN
        RETURN;
    END IF;

    -- their channels' rows, locked for this claim and still free: another sender's claim may have
    -- taken one since v_busy was read (it is skipped, or seen taken once that claim committed)
    v_known := ARRAY(SELECT c.name FROM nightshift.notification_channels AS c WHERE c.name = ANY (v_names));
    v_free := ARRAY(SELECT c.name FROM nightshift.notification_channels AS c
                     WHERE c.name = ANY (v_names)
                       AND (c.held_until IS NULL OR c.held_until <= now())
                       AND (c.locked_until IS NULL OR c.locked_until <= now())
                       FOR UPDATE SKIP LOCKED);
    UPDATE nightshift.notification_channels AS c
       SET locked_by = p_worker, locked_until = now() + p_lease
     WHERE c.name = ANY (v_free);

    RETURN QUERY
    UPDATE nightshift.notifications AS n
       SET status = 'sending',
           attempts = n.attempts + 1,
           locked_by = p_worker,
           locked_until = now() + p_lease
     WHERE n.id = ANY (v_ids)
       AND (n.channel = ANY (v_free) OR n.channel <> ALL (v_known))
    RETURNING n.*;
END
$$;

-- release_notification_channels(names, worker, hold, at_least): the end of p_worker's lease on
-- channels it sent to, called by the mark functions (notification_complete.sql) in their transaction.
-- A channel is released once none of its rows is still being sent by p_worker (a grouped message's
-- rows that failed to render are marked before the message is sent), and held from now for p_hold
-- (NULL: its min_interval; a 429's Retry-After), at least p_at_least.
CREATE OR REPLACE FUNCTION nightshift.release_notification_channels(
    p_names text[],
    p_worker text,
    p_hold interval DEFAULT NULL,
    p_at_least interval DEFAULT '0'
) RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    /* unlock the channels p_worker has finished sending to, and start their hold */
    UPDATE nightshift.notification_channels AS c
       SET locked_by = NULL,
           locked_until = NULL,
           held_until = greatest(c.held_until,
                                 now() + greatest(coalesce(p_hold, c.min_interval), p_at_least))
     WHERE c.name = ANY (p_names)
       AND c.locked_by IS NOT DISTINCT FROM p_worker
       AND c.name NOT IN (SELECT s.channel FROM nightshift.notifications AS s
                           WHERE s.status = 'sending' AND s.locked_by = p_worker
                             AND s.channel = ANY (p_names));
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
REVOKE ALL ON FUNCTION nightshift.release_notification_channels(text[], text, interval, interval) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.claim_notifications(text, integer, interval, text[])
            TO nightshift_dispatcher;
        GRANT EXECUTE ON FUNCTION nightshift.requeue_expired_notifications() TO nightshift_dispatcher;
        GRANT EXECUTE ON FUNCTION nightshift.release_notification_channels(text[], text, interval, interval)
            TO nightshift_dispatcher;
    END IF;
END
$$;
