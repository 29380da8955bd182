-- (00_: applied before the views that join it; files in a folder are applied alphabetically)
-- nightshift.subjects: every target a task or finding can be about, by its subject string, with a
-- readable label and its organization. Reporting views join findings and scans to it; like them it is
-- security_invoker, so row-level security on the target tables applies to whoever reads through it.
CREATE OR REPLACE VIEW nightshift.subjects WITH (security_invoker = true) AS
SELECT 'pipeline/' || p.id AS subject, 'pipeline' AS target_type, p.id AS target_id,
       o.id AS organization_id, o.name || '/' || r.name || '/' || p.name AS label
  FROM nightshift.pipelines AS p
  JOIN nightshift.repositories AS r ON r.id = p.repository_id
  JOIN nightshift.organizations AS o ON o.id = r.organization_id
UNION ALL
SELECT 'repository/' || r.id, 'repository', r.id, o.id, o.name || '/' || r.name
  FROM nightshift.repositories AS r
  JOIN nightshift.organizations AS o ON o.id = r.organization_id
UNION ALL
SELECT 'cloud_integration/' || c.id, 'cloud_integration', c.id, o.id,
       o.name || '/' || c.provider || ':' || c.account_id
  FROM nightshift.cloud_integrations AS c
  JOIN nightshift.organizations AS o ON o.id = c.organization_id
UNION ALL
SELECT 'organization/' || o.id, 'organization', o.id, o.id, o.name
  FROM nightshift.organizations AS o;

COMMENT ON VIEW nightshift.subjects IS 'targets by subject string (pipeline/42 ...), with a label';

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_reader') THEN
        GRANT SELECT ON nightshift.subjects TO nightshift_reader;
    END IF;
END
$$;
