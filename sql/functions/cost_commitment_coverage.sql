-- cost_commitment_coverage: commitment utilization and coverage per service, sub account, currency and
-- ISO week of [p_from, p_to), with the change from the week before.
--
--   utilization = used / (used + unused)   EffectiveCost of commitment rows with status Used / Unused
--   coverage    = covered / eligible       eligible: usage of services in which the organization holds
--                                          any commitment (the spend a commitment could pay); covered:
--                                          the part a commitment paid (status Used)
--   discount    = 1 - covered EffectiveCost / covered ListCost: what the commitments saved where used
-- NULL where the denominator is zero. Never summed across BillingCurrency.
CREATE OR REPLACE FUNCTION nightshift.cost_commitment_coverage(p_organization_id bigint,
                                                               p_from timestamptz, p_to timestamptz)
RETURNS TABLE (service_name text, sub_account_id text, billing_currency text, week date,
               used_cost numeric, unused_cost numeric, utilization numeric,
               eligible_cost numeric, covered_cost numeric, on_demand_cost numeric, coverage numeric,
               realized_discount numeric, utilization_change numeric, coverage_change numeric)
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    -- over the summary (cost_summarize): sums by service, account, status and hour
    WITH committed_services AS (
        SELECT DISTINCT i.service_name
          FROM nightshift.cost_summary(p_organization_id, p_from, p_to) AS i
         WHERE i.committed
    ), weekly AS (
        SELECT i.service_name, i.sub_account_id, i.billing_currency,
               date_trunc('week', i.charge_period_start AT TIME ZONE 'UTC')::date AS week,
               coalesce(sum(i.effective_cost) FILTER (WHERE i.commitment_discount_status = 'Used'), 0) AS used,
               coalesce(sum(i.effective_cost) FILTER (WHERE i.commitment_discount_status = 'Unused'), 0)
                   AS unused,
               coalesce(sum(i.effective_cost) FILTER (
                   WHERE i.charge_category = 'Usage'
                     AND i.commitment_discount_status IS DISTINCT FROM 'Unused'), 0) AS eligible,
               coalesce(sum(i.list_cost) FILTER (WHERE i.commitment_discount_status = 'Used'), 0) AS covered_list
          FROM nightshift.cost_summary(p_organization_id, p_from, p_to) AS i
          JOIN committed_services AS cs ON cs.service_name = i.service_name
         GROUP BY 1, 2, 3, 4
    ), ratios AS (
        SELECT w.*,
               round(w.used / nullif(w.used + w.unused, 0), 4) AS utilization,
               round(w.used / nullif(w.eligible, 0), 4) AS coverage,
               round(1 - w.used / nullif(w.covered_list, 0), 4) AS realized_discount
          FROM weekly AS w
    )
    SELECT r.service_name, r.sub_account_id, r.billing_currency, r.week,
           r.used, r.unused, r.utilization,
           r.eligible, r.used, r.eligible - r.used, r.coverage, r.realized_discount,
           r.utilization - lag(r.utilization) OVER w,
           r.coverage - lag(r.coverage) OVER w
      FROM ratios AS r
    WINDOW w AS (PARTITION BY r.service_name, r.sub_account_id, r.billing_currency ORDER BY r.week)
$$;
