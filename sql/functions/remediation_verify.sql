-- verify_remediations: after a successful scan of a subject, the outcome of its remediations whose pull
-- request is open or merged. Called by record_result before a new remediation is requested.
--   every finding of the remediation RESOLVED         -> 'verified', verified_scan_id = this scan
--   merged (merged_at no later than this scan's start)
--   and some finding still OPEN or SUPPRESSED         -> 'failed', reason names what still drifts
-- An open pull request whose drift remains is left alone: it is not merged yet.
CREATE OR REPLACE FUNCTION nightshift.verify_remediations(p_scan_id bigint)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_scan nightshift.scans;
    v_verified integer;
    v_failed integer;
BEGIN
    /* the number of remediations this scan verified or failed */
    SELECT * INTO STRICT v_scan FROM nightshift.scans WHERE id = p_scan_id;
    UPDATE nightshift.remediations AS m
       SET status = 'verified', verified_scan_id = p_scan_id, finished_at = now(), updated_at = now(),
           reason = NULL
     WHERE m.subject = v_scan.subject AND m.status IN ('pr_opened', 'merged')
       AND NOT EXISTS (SELECT FROM nightshift.findings AS f
                        WHERE f.id = ANY (m.finding_ids) AND f.status <> 'RESOLVED');
    GET DIAGNOSTICS v_verified = ROW_COUNT;

    UPDATE nightshift.remediations AS m
       SET status = 'failed', finished_at = now(), updated_at = now(),
           reason = format('merged at %s, but scan %s still sees the drift of %s',
                           to_char(m.merged_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'), p_scan_id,
                           (SELECT string_agg(f.resource_address, ', ' ORDER BY f.resource_address)
                              FROM nightshift.findings AS f
                             WHERE f.id = ANY (m.finding_ids) AND f.status <> 'RESOLVED'))
     WHERE m.subject = v_scan.subject AND m.status = 'merged'
       AND m.merged_at <= coalesce(v_scan.started_at, v_scan.finished_at);
    GET DIAGNOSTICS v_failed = ROW_COUNT;
    RETURN v_verified + v_failed;
END
$$;
