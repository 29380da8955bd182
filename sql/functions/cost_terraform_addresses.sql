-- cost_terraform_addresses: which of p_resource_ids a drift scan of the organization's pipelines has seen,
-- and under which Terraform address: the first join across drift and cost. A billing ResourceId matches
-- a plan's provider id when equal, or when it is an ARN ending in "/<provider id>" (EC2 instances,
-- volumes). Only resources that appear in drift findings (any status) are known here. SECURITY DEFINER:
-- the cost loader role (sql/grants/cost_loader.sql) reads no findings, only this answer for the
-- organization it analyses.
CREATE OR REPLACE FUNCTION nightshift.cost_terraform_addresses(p_organization_id bigint, p_resource_ids text[])
RETURNS TABLE (resource_id text, resource_address text, subject text)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT ON (r.id) r.id, f.resource_address, f.subject
      FROM unnest(p_resource_ids) AS r(id)
      JOIN nightshift.findings AS f
        ON f.provider_id IS NOT NULL
       AND (f.provider_id = r.id OR r.id LIKE '%/' || f.provider_id)
       AND f.kind IN ('drift', 'pending-change')
      JOIN nightshift.pipelines AS p ON f.subject = 'pipeline/' || p.id
      JOIN nightshift.repositories AS rp ON rp.id = p.repository_id
     WHERE rp.organization_id = p_organization_id
     ORDER BY r.id, f.last_seen DESC
$$;
