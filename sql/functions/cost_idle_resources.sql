-- cost_idle_resources: resources that kept costing in [p_from, p_to) without being used: positive
-- usage charges whose ConsumedQuantity is zero or absent on every row (a volume no instance mounts, an
-- address attached to nothing, a load balancer without traffic). Commitments are left out: their waste
-- is cost_unused_commitments'. Per ResourceId and BillingCurrency.
--
-- Only resources with a usage row without consumption can be idle, and those are few: they are summed
-- first (`candidate`: a pass that keeps a handful of rows of millions, instead of a group per resource
-- of the organization, which spilled to disk at 1.4 million resources), then the candidates with a
-- consumed row anywhere in the window are dropped (`used`: a join on the candidates, which Postgres
-- skips when there are none). Same answer as grouping every usage row per resource: a resource without
-- any consumed row has all its usage rows among the candidates.
CREATE OR REPLACE FUNCTION nightshift.cost_idle_resources(p_organization_id bigint, p_from timestamptz,
                                                          p_to timestamptz)
RETURNS TABLE (resource_id text, resource_name text, resource_type text, service_name text,
               sub_account_id text, region_id text, billing_currency text, cost numeric, charged_rows bigint,
               first_charge timestamptz, last_charge timestamptz)
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    WITH usage AS NOT MATERIALIZED (
        SELECT li.*
          FROM nightshift.cost_items(p_organization_id, p_from, p_to) AS li
         WHERE li.resource_id IS NOT NULL
           AND li.charge_category = 'Usage'
           AND li.commitment_discount_status IS DISTINCT FROM 'Unused'
           AND li.resource_id IS DISTINCT FROM li.commitment_discount_id
    ), candidate AS MATERIALIZED (
        SELECT u.resource_id, max(u.resource_name) AS resource_name, max(u.resource_type) AS resource_type,
               max(u.service_name) AS service_name, max(u.sub_account_id) AS sub_account_id,
               max(u.region_id) AS region_id, u.billing_currency, sum(u.effective_cost) AS cost,
               count(*) AS charged_rows, min(u.charge_period_start) AS first_charge,
               max(u.charge_period_end) AS last_charge
          FROM usage AS u
         WHERE coalesce(u.consumed_quantity, 0) = 0
         GROUP BY u.resource_id, u.billing_currency
        HAVING sum(u.effective_cost) > 0
    ), used AS (
        SELECT DISTINCT u.resource_id, u.billing_currency
          FROM usage AS u
          JOIN candidate AS c ON c.resource_id = u.resource_id
                             AND c.billing_currency IS NOT DISTINCT FROM u.billing_currency
         WHERE u.consumed_quantity <> 0
    )
    SELECT c.*
      FROM candidate AS c
     WHERE NOT EXISTS (SELECT FROM used AS x
                        WHERE x.resource_id = c.resource_id
                          AND x.billing_currency IS NOT DISTINCT FROM c.billing_currency)
$$;
