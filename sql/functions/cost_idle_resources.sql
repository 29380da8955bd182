-- cost_idle_resources: resources that kept costing in [p_from, p_to) without being used: positive
-- usage charges whose ConsumedQuantity is zero or absent on every row (a volume no instance mounts, an
-- address attached to nothing, a load balancer without traffic). Commitments are left out: their waste
-- is cost_unused_commitments'. Per ResourceId and BillingCurrency.
CREATE OR REPLACE FUNCTION nightshift.cost_idle_resources(p_organization_id bigint, p_from timestamptz,
                                                          p_to timestamptz)
RETURNS TABLE (resource_id text, resource_name text, resource_type text, service_name text,
               sub_account_id text, region_id text, billing_currency text, cost numeric, charged_rows bigint,
               first_charge timestamptz, last_charge timestamptz)
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT li.resource_id,
           max(li.resource_name),
           max(li.resource_type),
           max(li.service_name),
           max(li.sub_account_id),
           max(li.region_id),
           li.billing_currency,
           sum(li.effective_cost),
           count(*),
           min(li.charge_period_start),
           max(li.charge_period_end)
      FROM nightshift.cost_items(p_organization_id, p_from, p_to) AS li
     WHERE li.resource_id IS NOT NULL
       AND li.charge_category = 'Usage'
       AND li.commitment_discount_status IS DISTINCT FROM 'Unused'
       AND li.resource_id IS DISTINCT FROM li.commitment_discount_id
     GROUP BY li.resource_id, li.billing_currency
    HAVING sum(li.effective_cost) > 0
       AND coalesce(max(abs(li.consumed_quantity)), 0) = 0
$$;
