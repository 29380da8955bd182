-- cost_ensure_partitions: the monthly partitions of cost_line_items that rows charged between p_from and
-- p_to need, created when missing (cost_line_items_YYYY_MM, one calendar month of ChargePeriodStart in
-- UTC each), under cost_line_items_months (the partition of cost_line_items the loader COPYs into; see
-- dispatcher/models.py). Called by the ingest before it inserts; idempotent, so a DBA may run it ahead
-- of time.
-- Returns the names of the partitions it created.
CREATE OR REPLACE FUNCTION nightshift.cost_ensure_partitions(p_from timestamptz, p_to timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_month timestamp;
    v_name text;
BEGIN
    /* create the missing month partitions covering [p_from, p_to] */
    IF p_from IS NULL OR p_to IS NULL THEN
        RETURN;
    END IF;
    IF p_to - p_from > interval '20 years' THEN
        -- a typo in a date column would otherwise create hundreds of partitions
        RAISE EXCEPTION 'cost_ensure_partitions: % to % spans more than 20 years', p_from, p_to
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- two ingests may want the same month at once: one creates it, the other sees it afterwards
    PERFORM pg_advisory_xact_lock(hashtext('nightshift.cost_ensure_partitions'));
    FOR v_month IN
        SELECT generate_series(date_trunc('month', p_from AT TIME ZONE 'UTC'),
                               date_trunc('month', p_to AT TIME ZONE 'UTC'), interval '1 month')
    LOOP
        v_name := 'cost_line_items_' || to_char(v_month, 'YYYY_MM');
        CONTINUE WHEN EXISTS (SELECT FROM pg_class AS c
                               WHERE c.relname = v_name AND c.relnamespace = 'nightshift'::regnamespace);
        EXECUTE format('CREATE TABLE nightshift.%I PARTITION OF nightshift.cost_line_items_months '
                       'FOR VALUES FROM (%L) TO (%L)',
                       v_name, (v_month AT TIME ZONE 'UTC'),
                       ((v_month + interval '1 month') AT TIME ZONE 'UTC'));
        RETURN NEXT v_name;
    END LOOP;
END
$$;
