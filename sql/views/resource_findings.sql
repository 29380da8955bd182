-- nightshift.resource_findings answers "what is wrong with this cloud resource, whatever found it?":
-- per organization and resource (nightshift.resource_key: its provider id, an ARN reduced to the id
-- Terraform knows, else its Terraform address), the drift, compliance and cost findings together: open counts per domain, the
-- worst open severity, the monthly saving, the targets and checks involved, and when it was last seen.
--   SELECT resource, open_drift, open_compliance, open_cost, monthly_saving, worst_severity
--     FROM nightshift.resource_findings WHERE organization_id = 1
--    ORDER BY open_drift + open_compliance + open_cost DESC LIMIT 20;
CREATE OR REPLACE VIEW nightshift.resource_findings WITH (security_invoker = true) AS
SELECT t.organization_id, nightshift.resource_key(f.provider_id, f.resource_address) AS resource,
       min(f.resource_type) AS resource_type,
       array_agg(DISTINCT f.provider_id) FILTER (WHERE f.provider_id IS NOT NULL) AS provider_ids,
       array_agg(DISTINCT f.resource_address) FILTER (WHERE f.resource_address IS NOT NULL) AS addresses,
       count(*) FILTER (WHERE f.kind IN ('drift', 'pending-change')) AS open_drift,
       count(*) FILTER (WHERE f.kind = 'compliance') AS open_compliance,
       count(*) FILTER (WHERE f.kind = 'cost') AS open_cost,
       count(*) FILTER (WHERE f.kind NOT IN ('drift', 'pending-change', 'compliance', 'cost')) AS open_other,
       (array['info', 'low', 'medium', 'high', 'critical'])[max(nightshift.severity_rank(f.severity)) + 1]
           AS worst_severity,
       sum(nightshift.saving_of(f.details)) FILTER (WHERE f.kind = 'cost') AS monthly_saving,
       array_agg(DISTINCT f.check_id) FILTER (WHERE f.check_id IS NOT NULL) AS checks,
       array_agg(DISTINCT t.label) AS targets,
       min(f.first_seen) AS first_seen, max(f.last_seen) AS last_seen
  FROM nightshift.subjects AS t
  JOIN nightshift.findings AS f ON f.subject = t.subject AND f.status = 'OPEN'
 WHERE nightshift.resource_key(f.provider_id, f.resource_address) IS NOT NULL
 GROUP BY 1, 2;

COMMENT ON VIEW nightshift.resource_findings IS
    'per cloud resource (provider id or address): its open drift, compliance and cost findings together';

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_reader') THEN
        GRANT SELECT ON nightshift.resource_findings TO nightshift_reader;
    END IF;
END
$$;
