-- notification_retry_delay: how long an outbox row waits after a failed delivery.
-- Exponential (base * 2^(attempt-1), capped) plus up to 50% random jitter, so the rows of a channel
-- that failed together (an endpoint outage) do not retry in lockstep. Settings
-- 'notifications.retry_base_seconds' (default 15) and 'notifications.retry_max_seconds' (default 3600).
CREATE OR REPLACE FUNCTION nightshift.notification_retry_delay(p_attempt integer)
RETURNS interval
LANGUAGE plpgsql
VOLATILE  -- random()
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_base double precision;
    v_cap double precision;
BEGIN
    /* the backoff before delivery attempt p_attempt + 1 */
    SELECT coalesce(max(value::double precision) FILTER (WHERE key = 'notifications.retry_base_seconds'), 15),
           coalesce(max(value::double precision) FILTER (WHERE key = 'notifications.retry_max_seconds'), 3600)
      INTO v_base, v_cap
      FROM nightshift.settings
     WHERE key IN ('notifications.retry_base_seconds', 'notifications.retry_max_seconds');
    RETURN make_interval(secs => least(v_cap, v_base * power(2, greatest(p_attempt, 1) - 1))
                                 * (1 + 0.5 * random()));
END
$$;
