-- A finding as it may appear in a notification: what and where, never a value. Attribute paths are
-- listed, their before/after values are not (they may be secrets the scanner did not know to mask).
CREATE OR REPLACE FUNCTION nightshift.finding_summary(p_finding nightshift.findings)
RETURNS jsonb
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    /* {id, kind, address, type, change, check_id, severity, status, attributes: [paths]} */
    SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
        'id', p_finding.id,
        'kind', p_finding.kind,
        'address', p_finding.resource_address,
        'type', p_finding.resource_type,
        'change', p_finding.change_type,
        'check_id', p_finding.check_id,
        'severity', p_finding.severity,
        'status', p_finding.status,
        'attributes', pg_catalog.jsonb_path_query_array(p_finding.details, '$.attributes[*].path')))
$$;
