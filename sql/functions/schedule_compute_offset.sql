-- A target's own place inside each period, like Jenkins' `H`: a hash of its id, so thousands of DAILY
-- targets spread across the day instead of all firing at 06:00, and one target's runs stay evenly spaced.
-- Always shorter than the shortest instance of the period (MONTHLY: 28 days), so a slot never spills
-- into the next period and a short month neither skips nor doubles a run. Whole seconds.
--
-- One SELECT of expressions, IMMUTABLE, no SET clause: the planner inlines it into set-based statements.
CREATE OR REPLACE FUNCTION nightshift.schedule_offset(p_frequency nightshift.frequency, p_target_id bigint)
RETURNS interval
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    /* The deterministic offset of a target inside a period of the given frequency (NULL: UNMONITORED). */
    -- masking the sign bit keeps the remainder in [0, period) for negative hash values
    SELECT pg_catalog.make_interval(secs => (
               (pg_catalog.hashint8extended(p_target_id, 0) & 9223372036854775807)
               % CASE p_frequency
                     WHEN 'HOURLY'  THEN 3600
                     WHEN 'DAILY'   THEN 86400
                     WHEN 'WEEKLY'  THEN 604800
                     WHEN 'MONTHLY' THEN 2419200  -- 28 days, the shortest month
                 END)::double precision)
$$;
