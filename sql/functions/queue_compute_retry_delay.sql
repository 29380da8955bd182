-- retry_delay: how long a failed task waits before its next attempt.
-- Exponential (base * 2^(attempt-1), capped) plus up to 50% random jitter, so a burst of tasks that
-- failed together (a provider outage) does not retry in lockstep. Base and cap are data:
-- settings 'queue.retry_base_seconds' (default 10) and 'queue.retry_max_seconds' (default 3600).
CREATE OR REPLACE FUNCTION nightshift.retry_delay(p_attempt integer)
RETURNS interval
LANGUAGE plpgsql
VOLATILE  -- random()
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_base double precision;
    v_cap double precision;
    v_delay double precision;
BEGIN
    /* the backoff before attempt p_attempt + 1 */
    SELECT coalesce(max(value::double precision) FILTER (WHERE key = 'queue.retry_base_seconds'), 10),
           coalesce(max(value::double precision) FILTER (WHERE key = 'queue.retry_max_seconds'), 3600)
      INTO v_base, v_cap
      FROM nightshift.settings
     WHERE key IN ('queue.retry_base_seconds', 'queue.retry_max_seconds');
    v_delay := least(v_cap, v_base * power(2, greatest(p_attempt, 1) - 1));
    RETURN make_interval(secs => v_delay * (1 + 0.5 * random()));
END
$$;

-- internal: called by fail_task, which runs as the owner
REVOKE ALL ON FUNCTION nightshift.retry_delay(integer) FROM PUBLIC;
