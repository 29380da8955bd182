-- The sender's writes after a delivery attempt, each fenced by the claim's `attempts` (rows that were
-- re-claimed meanwhile are left alone) and batched with arrays: one grouped message is many rows.
--
-- enable_nestloop = off: the statistics of notifications never see 'sending' rows (they are sending
-- for a moment), so the cached plan of these updates walks the lease index expecting one row and
-- rescans the unnest of the arrays for each: 2,000 sending rows and a batch of 400 took seconds
-- (bench/bench_notify.py). A hash join of the arrays with the rows found by id is linear.
--
-- mark_notifications_sent(ids, attempts, responses, message_ids): delivered. One element per row, so
-- one call (one commit) marks the rows of many messages: the sender batches the sends that finished
-- while its previous mark was running. `message_id` ties the rows that went out as one message (the
-- sender passes the smallest id of each; NULL: the smallest of p_ids); `responses` keeps what the
-- endpoint answered (capped).
CREATE OR REPLACE FUNCTION nightshift.mark_notifications_sent(
    p_ids bigint[],
    p_attempts integer[],
    p_responses text[],
    p_message_ids bigint[] DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_nestloop = off  -- see below
AS $$
DECLARE
    v_count integer;
    v_channels text[];
    v_workers text[];
BEGIN
    /* mark the claimed rows sent; returns how many this holder still held */
    WITH marked AS (
        UPDATE nightshift.notifications AS n
           SET status = 'sent',
               sent_at = now(),
               locked_until = NULL,
               last_error = NULL,
               response = left(u.response, 500),
               message_id = coalesce(u.message_id, (SELECT min(i) FROM unnest(p_ids) AS i))
          FROM unnest(p_ids, p_attempts, p_responses, p_message_ids) AS u(id, attempt, response, message_id)
         WHERE n.id = ANY (p_ids)
           AND n.id = u.id
           AND n.attempts = u.attempt AND n.status = 'sending'
        RETURNING n.channel, n.locked_by)
    SELECT count(*)::integer, array_agg(m.channel), array_agg(m.locked_by)
      INTO v_count, v_channels, v_workers
      FROM marked AS m;
    -- the channels sent to are free again after their min_interval (claim_notifications)
    PERFORM nightshift.release_notification_channels(array_agg(DISTINCT u.channel), u.worker)
       FROM unnest(v_channels, v_workers) AS u(channel, worker)
      GROUP BY u.worker;
    RETURN v_count;
END
$$;

-- fail_notifications(ids, attempts, error, retry, retry_after, response): a delivery that did not
-- succeed. p_retry false (a 404 channel_not_found, a 410, a malformed URL, a template that does not
-- render): 'failed' at once, no retry. Otherwise pending again after p_retry_after (a 429's
-- Retry-After) or the backoff, or 'dead' once 'notifications.max_attempts' (default 10) are spent.
-- Failed and dead rows are listed by nightshift.notifications_undelivered and go again with
-- retry_notification. Returns each row's new status.
CREATE OR REPLACE FUNCTION nightshift.fail_notifications(
    p_ids bigint[],
    p_attempts integer[],
    p_error text,
    p_retry boolean,
    p_retry_after interval DEFAULT NULL,
    p_response text DEFAULT NULL
) RETURNS TABLE (id bigint, status nightshift.notification_status)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_nestloop = off  -- see below
AS $$
DECLARE
    v_max integer := coalesce((SELECT value::integer FROM nightshift.settings
                                WHERE key = 'notifications.max_attempts'), 10);
    v_ids bigint[];
    v_statuses nightshift.notification_status[];
    v_channels text[];
    v_workers text[];
BEGIN
    /* record a failed delivery of the claimed rows: retry later, failed or dead */
    WITH failed AS (
        UPDATE nightshift.notifications AS n
           SET status = CASE WHEN NOT p_retry THEN 'failed'
                             WHEN n.attempts >= v_max THEN 'dead'
                             ELSE 'pending' END::nightshift.notification_status,
               next_attempt_at = CASE WHEN p_retry AND n.attempts < v_max
                                      THEN now() + coalesce(p_retry_after,
                                                            nightshift.notification_retry_delay(n.attempts))
                                      ELSE n.next_attempt_at END,
               last_error = left(p_error, 2000),
               response = left(p_response, 500),
               locked_until = NULL
          FROM unnest(p_ids, p_attempts) AS u(id, attempt)
         WHERE n.id = ANY (p_ids)
           AND n.id = u.id
           AND n.attempts = u.attempt AND n.status = 'sending'
        RETURNING n.id, n.status, n.channel, n.locked_by)
    SELECT array_agg(f.id), array_agg(f.status), array_agg(f.channel), array_agg(f.locked_by)
      INTO v_ids, v_statuses, v_channels, v_workers
      FROM failed AS f;
    -- the channel is free again: after a 429's Retry-After, or (other retryable failures) its
    -- min_interval but at least a second, or at once when nothing can be retried
    PERFORM nightshift.release_notification_channels(
                array_agg(DISTINCT u.channel), u.worker,
                CASE WHEN p_retry THEN p_retry_after ELSE interval '0' END,
                CASE WHEN p_retry THEN interval '1 second' ELSE interval '0' END)
       FROM unnest(v_channels, v_workers) AS u(channel, worker)
      GROUP BY u.worker;
    RETURN QUERY SELECT u.id, u.status FROM unnest(v_ids, v_statuses) AS u(id, status);
END
$$;

-- release_notifications(ids, attempts): give claimed rows back unsent (the sender is stopping, or
-- their channel was held back after the claim), without spending an attempt.
CREATE OR REPLACE FUNCTION nightshift.release_notifications(p_ids bigint[], p_attempts integer[])
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_nestloop = off  -- see below
AS $$
DECLARE
    v_count integer;
    v_channels text[];
    v_workers text[];
BEGIN
    /* pending again, attempt not counted; returns how many this holder still held */
    WITH released AS (
        UPDATE nightshift.notifications AS n
           SET status = 'pending', attempts = n.attempts - 1, locked_until = NULL
          FROM unnest(p_ids, p_attempts) AS u(id, attempt)
         WHERE n.id = ANY (p_ids)
           AND n.id = u.id
           AND n.attempts = u.attempt AND n.status = 'sending'
        RETURNING n.channel, n.locked_by)
    SELECT count(*)::integer, array_agg(r.channel), array_agg(r.locked_by)
      INTO v_count, v_channels, v_workers
      FROM released AS r;
    -- nothing was sent: the channels are free at once
    PERFORM nightshift.release_notification_channels(array_agg(DISTINCT u.channel), u.worker, interval '0')
       FROM unnest(v_channels, v_workers) AS u(channel, worker)
      GROUP BY u.worker;
    RETURN v_count;
END
$$;

REVOKE ALL ON FUNCTION nightshift.mark_notifications_sent(bigint[], integer[], text[], bigint[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION nightshift.fail_notifications(bigint[], integer[], text, boolean, interval, text)
    FROM PUBLIC;
REVOKE ALL ON FUNCTION nightshift.release_notifications(bigint[], integer[]) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.mark_notifications_sent(bigint[], integer[], text[], bigint[])
            TO nightshift_dispatcher;
        GRANT EXECUTE ON FUNCTION
            nightshift.fail_notifications(bigint[], integer[], text, boolean, interval, text)
            TO nightshift_dispatcher;
        GRANT EXECUTE ON FUNCTION nightshift.release_notifications(bigint[], integer[])
            TO nightshift_dispatcher;
    END IF;
END
$$;
