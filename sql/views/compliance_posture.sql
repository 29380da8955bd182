-- nightshift.compliance_posture: per cloud integration x enabled framework x requirement, how the
-- requirement stands after the integration's latest successful compliance scan.
--
--   checks        the scanner checks mapped to the requirement (compliance_check_mappings)
--   passed        results of those checks that passed in the latest successful scan
--                 (its summary's check_results: {scanner: {check_id: {passed, failed, skipped}}})
--   failed        OPEN compliance findings of those checks (suppressed ones, accepted risks, are not
--                 failures; they are counted in `suppressed`)
--   manual        1 when the framework assesses the requirement by hand (or maps no check to it)
--   status        FAIL (a mapped check fails), PASS (mapped checks ran and none fails), MANUAL,
--                 NOT_EVALUATED (no mapped check ran: e.g. Prowler requirements on a Checkov-only scan)
--
-- Frameworks are matched on the normalized name (upper case, letters and digits: iso-27001 = ISO27001)
-- and the integration's provider. Deleted integrations are left out.
CREATE OR REPLACE VIEW nightshift.compliance_posture WITH (security_invoker = true) AS
WITH integrations AS (
    SELECT c.id AS cloud_integration_id, 'cloud_integration/' || c.id AS subject, c.organization_id,
           c.provider, upper(regexp_replace(f.name, '[^A-Za-z0-9]', '', 'g')) AS framework
      FROM nightshift.cloud_integrations AS c
     CROSS JOIN LATERAL unnest(c.frameworks) AS f(name)
     WHERE c.deleted_at IS NULL
), per_requirement AS (
    SELECT i.cloud_integration_id, i.subject, i.organization_id, r.framework, r.framework_version,
           r.source_name, r.requirement, r.title, r.section, r.assessment,
           l.scan_id AS latest_scan_id, l.finished_at AS latest_scan_at,
           count(m.check_id) AS checks,
           coalesce(sum((l.summary -> 'check_results' -> m.scanner -> m.check_id ->> 'passed')::integer), 0)
               AS passed,
           count(l.summary -> 'check_results' -> m.scanner -> m.check_id) AS checks_run,
           (SELECT coalesce(sum((o.failing -> c.check_id ->> 0)::bigint), 0)
              FROM (SELECT DISTINCT m2.check_id FROM nightshift.compliance_check_mappings AS m2
                     WHERE m2.requirement_id = r.id) AS c)::bigint AS failed,
           (SELECT coalesce(sum((o.failing -> c.check_id ->> 1)::bigint), 0)
              FROM (SELECT DISTINCT m2.check_id FROM nightshift.compliance_check_mappings AS m2
                     WHERE m2.requirement_id = r.id) AS c)::bigint AS suppressed
      FROM integrations AS i
      -- the latest successful scan of the integration: one probe of scans_subject_idx per integration,
      -- so that one organization's posture reads its own scans only
      LEFT JOIN LATERAL (
          SELECT s.id AS scan_id, s.finished_at, s.summary
            FROM nightshift.scans AS s
           WHERE s.subject = i.subject AND s.kind = 'compliance-scan' AND s.status <> 'ERROR'
           ORDER BY s.finished_at DESC, s.id DESC
           LIMIT 1
      ) AS l ON true
      -- its open and suppressed compliance findings per check, {check_id: [open, suppressed]}: the
      -- integration's findings are read once, not once per requirement
      CROSS JOIN LATERAL (
          SELECT coalesce(pg_catalog.jsonb_object_agg(x.check_id, pg_catalog.jsonb_build_array(x.open, x.suppressed)),
                          '{}') AS failing
            FROM (SELECT f.check_id, count(*) FILTER (WHERE f.status = 'OPEN') AS open,
                         count(*) FILTER (WHERE f.status = 'SUPPRESSED') AS suppressed
                    FROM nightshift.findings AS f
                   WHERE f.subject = i.subject AND f.kind = 'compliance' AND f.check_id IS NOT NULL
                     AND f.status IN ('OPEN', 'SUPPRESSED')
                   GROUP BY f.check_id) AS x
      ) AS o
      JOIN nightshift.compliance_requirements AS r
        ON r.framework = i.framework AND r.provider = i.provider
      LEFT JOIN nightshift.compliance_check_mappings AS m ON m.requirement_id = r.id
     GROUP BY i.cloud_integration_id, i.subject, i.organization_id, r.id, l.scan_id, l.finished_at, o.failing
)
SELECT cloud_integration_id, subject, organization_id, framework, framework_version, source_name,
       requirement, title, section, checks, passed, failed, suppressed,
       CASE WHEN assessment = 'manual' OR checks = 0 THEN 1 ELSE 0 END AS manual,
       CASE WHEN failed > 0 THEN 'FAIL'
            WHEN assessment = 'manual' OR checks = 0 THEN 'MANUAL'
            WHEN checks_run > 0 THEN 'PASS'
            ELSE 'NOT_EVALUATED' END AS status,
       latest_scan_id, latest_scan_at
  FROM per_requirement;

COMMENT ON VIEW nightshift.compliance_posture IS
    'per integration x framework x requirement: pass/fail/manual counts and status after the latest scan';

-- nightshift.compliance_scores: one row per integration x framework source. score = passing requirements
-- / evaluated requirements (PASS + FAIL); manual and not evaluated ones are counted, not scored.
CREATE OR REPLACE VIEW nightshift.compliance_scores WITH (security_invoker = true) AS
SELECT cloud_integration_id, subject, organization_id, framework, framework_version, source_name,
       count(*) AS requirements,
       count(*) FILTER (WHERE status = 'PASS') AS passing,
       count(*) FILTER (WHERE status = 'FAIL') AS failing,
       count(*) FILTER (WHERE status = 'MANUAL') AS manual,
       count(*) FILTER (WHERE status = 'NOT_EVALUATED') AS not_evaluated,
       round(100.0 * count(*) FILTER (WHERE status = 'PASS')
             / nullif(count(*) FILTER (WHERE status IN ('PASS', 'FAIL')), 0), 1) AS score,
       max(latest_scan_id) AS latest_scan_id, max(latest_scan_at) AS latest_scan_at
  FROM nightshift.compliance_posture
 GROUP BY cloud_integration_id, subject, organization_id, framework, framework_version, source_name;

COMMENT ON VIEW nightshift.compliance_scores IS 'per integration x framework: a score over evaluated requirements';

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_reader') THEN
        GRANT SELECT ON nightshift.compliance_posture, nightshift.compliance_scores TO nightshift_reader;
    END IF;
END
$$;
