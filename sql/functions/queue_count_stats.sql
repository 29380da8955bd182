-- queue_stats: depth and oldest queued age by kind, for the dispatcher's Prometheus gauges and
-- for DBAs. One index-friendly scan of the queued rows.
CREATE OR REPLACE FUNCTION nightshift.queue_stats()
RETURNS TABLE (kind text, queued bigint, running bigint, oldest_queued_seconds double precision)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    /* per kind: tasks queued and due-or-not, running, and the age of the oldest due queued task */
    SELECT t.kind,
           count(*) FILTER (WHERE t.status = 'queued'),
           count(*) FILTER (WHERE t.status = 'running'),
           coalesce(extract(epoch FROM now() - min(t.run_after)
                                FILTER (WHERE t.status = 'queued' AND t.run_after <= now())), 0)::double precision
      FROM nightshift.tasks AS t
     WHERE t.status IN ('queued', 'running')
     GROUP BY t.kind
$$;

-- SECURITY DEFINER: nobody but the roles granted below may call it
REVOKE ALL ON FUNCTION nightshift.queue_stats() FROM PUBLIC;

DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['nightshift_dispatcher'] LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION nightshift.queue_stats() TO %I', v_role);
        END IF;
    END LOOP;
    -- not the reader's: it counts every organization's rows (the reader has the views)
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_reader') THEN
        REVOKE EXECUTE ON FUNCTION nightshift.queue_stats() FROM nightshift_reader;
    END IF;
END
$$;
