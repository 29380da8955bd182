-- Findings for people: with their target's label and organization, and the suppression covering
-- them. nightshift.open_findings is what a team has to look at; findings_report has the history.
--   SELECT target, resource_address, change_type, attributes, first_seen, occurrences
--     FROM nightshift.open_findings ORDER BY target, resource_address;
CREATE OR REPLACE VIEW nightshift.findings_report WITH (security_invoker = true) AS
SELECT f.id, f.subject, t.label AS target, t.organization_id, f.kind, f.status, f.severity,
       f.resource_address, f.resource_type, f.module, f.provider_id, f.change_type, f.check_id,
       pg_catalog.jsonb_path_query_array(f.details, '$.attributes[*].path') AS attributes,
       f.first_seen, f.last_seen, f.resolved_at, f.occurrences, f.reopened_count,
       f.suppression_id, s.owner AS suppressed_by, s.reason AS suppression_reason,
       s.expires_at AS suppression_expires_at, f.last_scan_id, f.fingerprint, f.details
  FROM nightshift.findings AS f
  LEFT JOIN nightshift.subjects AS t ON t.subject = f.subject
  LEFT JOIN nightshift.suppressions AS s ON s.id = f.suppression_id;

COMMENT ON VIEW nightshift.findings_report IS 'every finding with its target label and suppression';

CREATE OR REPLACE VIEW nightshift.open_findings WITH (security_invoker = true) AS
SELECT * FROM nightshift.findings_report WHERE status = 'OPEN';

COMMENT ON VIEW nightshift.open_findings IS 'findings a team has to act on: OPEN, not suppressed';

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_reader') THEN
        GRANT SELECT ON nightshift.findings_report, nightshift.open_findings TO nightshift_reader;
    END IF;
END
$$;
