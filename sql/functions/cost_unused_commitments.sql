-- cost_unused_commitments: wasted commitment (CommitmentDiscountStatus = 'Unused') per commitment
-- discount, currency and ISO week of the organization's charges in [p_from, p_to), with what was used
-- of it the same week. Amounts are EffectiveCost, summed per BillingCurrency, never across currencies.
CREATE OR REPLACE FUNCTION nightshift.cost_unused_commitments(p_organization_id bigint, p_from timestamptz,
                                                              p_to timestamptz)
RETURNS TABLE (commitment_discount_id text, commitment_discount_name text, commitment_discount_type text,
               service_name text, sub_account_id text, billing_currency text, week date,
               unused_cost numeric, used_cost numeric, unused_rows bigint)
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT li.commitment_discount_id,
           max(li.commitment_discount_name),
           max(li.commitment_discount_type),
           max(li.service_name),
           max(li.sub_account_id),
           li.billing_currency,
           date_trunc('week', li.charge_period_start AT TIME ZONE 'UTC')::date,
           coalesce(sum(li.effective_cost) FILTER (WHERE li.commitment_discount_status = 'Unused'), 0),
           coalesce(sum(li.effective_cost) FILTER (WHERE li.commitment_discount_status = 'Used'), 0),
           count(*) FILTER (WHERE li.commitment_discount_status = 'Unused')
      FROM nightshift.cost_items(p_organization_id, p_from, p_to) AS li
     WHERE li.commitment_discount_id IS NOT NULL
       AND li.commitment_discount_status IN ('Used', 'Unused')
     GROUP BY li.commitment_discount_id, li.billing_currency, 7
    HAVING count(*) FILTER (WHERE li.commitment_discount_status = 'Unused') > 0
$$;
