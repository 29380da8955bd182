-- cost_compute_instances: the virtual machines the organization paid for in [p_from, p_to), with their
-- billed instance type and hourly rate, for rightsizing. The instance type comes from SkuPriceDetails
-- (FOCUS 1.1+: InstanceType) or a provider column x_InstanceType; rows without one are left out.
-- hourly_rate = EffectiveCost / hours, per BillingCurrency.
CREATE OR REPLACE FUNCTION nightshift.cost_compute_instances(p_organization_id bigint, p_from timestamptz,
                                                             p_to timestamptz)
RETURNS TABLE (resource_id text, provider_name text, instance_type text, region_id text,
               sub_account_id text, billing_currency text, hours numeric, cost numeric, hourly_rate numeric)
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT li.resource_id, max(li.provider_name),
           coalesce(li.sku_price_details ->> 'InstanceType', li.extra ->> 'x_InstanceType') AS instance_type,
           max(li.region_id), max(li.sub_account_id), li.billing_currency,
           sum(li.pricing_quantity), sum(li.effective_cost),
           round(sum(li.effective_cost) / nullif(sum(li.pricing_quantity), 0), 10)
      FROM nightshift.cost_items(p_organization_id, p_from, p_to) AS li
     WHERE li.charge_category = 'Usage'
       AND li.resource_id IS NOT NULL
       AND li.service_category = 'Compute'
       AND li.pricing_unit ILIKE 'hour%'
       AND li.commitment_discount_status IS DISTINCT FROM 'Unused'
       AND coalesce(li.sku_price_details ->> 'InstanceType', li.extra ->> 'x_InstanceType') IS NOT NULL
     GROUP BY li.resource_id, 3, li.billing_currency
$$;
