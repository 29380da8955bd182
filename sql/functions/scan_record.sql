-- record_scan: a scan's result in the form of the first release, kept for DBAs' scripts and tests that
-- call it: the same as nightshift.record_result with only a scan section. Returns the scan id, NULL
-- for a stale holder.
CREATE OR REPLACE FUNCTION nightshift.record_scan(
    p_task_id bigint,
    p_attempt integer,
    p_status text,
    p_summary jsonb,
    p_findings jsonb,
    p_artifacts jsonb,
    p_error text,
    p_started_at timestamptz
)
RETURNS bigint
LANGUAGE sql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    /* record_result(p_task_id, p_attempt, {"scan": {...}}) */
    SELECT r.scan_id
      FROM nightshift.record_result(p_task_id, p_attempt, jsonb_build_object('scan', jsonb_build_object(
               'status', p_status, 'summary', p_summary, 'findings', p_findings, 'artifacts', p_artifacts,
               'error', p_error, 'started_at', p_started_at))) AS r
$$;

REVOKE ALL ON FUNCTION nightshift.record_scan(bigint, integer, text, jsonb, jsonb, jsonb, text, timestamptz)
    FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE
           ON FUNCTION nightshift.record_scan(bigint, integer, text, jsonb, jsonb, jsonb, text, timestamptz)
           TO nightshift_dispatcher;
    END IF;
END
$$;
