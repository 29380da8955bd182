-- refuse_remediation: record that a guard rail kept findings from being remediated. A subject has one
-- standing refusal, updated in place by every scan that is refused again, so a pipeline refused every
-- night keeps one row (its updated_at tells when it was last refused), not one per scan.
CREATE OR REPLACE FUNCTION nightshift.refuse_remediation(
    p_subject text,
    p_scan_id bigint,
    p_finding_ids bigint[],
    p_reason text
)
RETURNS bigint
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    /* the id of the subject's refused remediations row */
    INSERT INTO nightshift.remediations AS m (subject, finding_ids, scan_id, status, reason, finished_at)
    VALUES (p_subject, p_finding_ids, p_scan_id, 'refused', p_reason, now())
    ON CONFLICT (subject) WHERE status = 'refused'
    DO UPDATE SET finding_ids = EXCLUDED.finding_ids, scan_id = EXCLUDED.scan_id, reason = EXCLUDED.reason,
                  finished_at = now(), updated_at = now()
    RETURNING m.id
$$;
