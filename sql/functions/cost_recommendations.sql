-- cost_recommendations: what the cost-analysis agent turns into findings of kind `cost`, one row per
-- (resource, recommendation, currency), from the analyses of [p_from, p_to):
--
--   identify-unused  unused-commitment       a commitment discount with Unused charges (per commitment)
--                    idle-resource           a resource that kept costing without usage
--   ri-coverage      low-commitment-utilization  utilization below p_min_utilization (per service and
--                                                sub account)
--                    low-commitment-coverage     coverage below p_min_coverage where a commitment
--                                                already earns a discount: more commitment would save
--                                                the on-demand part times that realized discount
--
-- monthly_saving scales the window's amount to an average month (30.4375 days) over the days the
-- organization's data covers in the window, so a window with 28 days of exports is not read as 30.
-- `commitment-coverage` is accepted as another name of `ri-coverage` (the schedule's payload uses it).
CREATE OR REPLACE FUNCTION nightshift.cost_recommendations(
    p_organization_id bigint, p_from timestamptz, p_to timestamptz,
    p_actions text[] DEFAULT '{identify-unused,ri-coverage}',
    p_min_utilization numeric DEFAULT 0.8, p_min_coverage numeric DEFAULT 0.7)
RETURNS TABLE (action text, recommendation text, resource_id text, service_name text,
               sub_account_id text, billing_currency text, window_cost numeric, monthly_saving numeric,
               evidence jsonb)
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    WITH span AS (
        SELECT greatest(extract(epoch FROM least(max(i.charge_period_end), p_to)
                                         - greatest(min(i.charge_period_start), p_from)) / 86400, 1) AS days
          FROM nightshift.cost_summary(p_organization_id, p_from, p_to) AS i
    ), unused AS (
        SELECT u.commitment_discount_id, max(u.commitment_discount_name) AS name,
               max(u.commitment_discount_type) AS type, max(u.service_name) AS service_name,
               max(u.sub_account_id) AS sub_account_id, u.billing_currency,
               sum(u.unused_cost) AS unused_cost, sum(u.used_cost) AS used_cost,
               jsonb_object_agg(u.week, u.unused_cost ORDER BY u.week) AS weekly
          FROM nightshift.cost_unused_commitments(p_organization_id, p_from, p_to) AS u
         WHERE 'identify-unused' = ANY (p_actions)
         GROUP BY u.commitment_discount_id, u.billing_currency
    ), coverage AS (
        SELECT c.service_name, c.sub_account_id, c.billing_currency,
               sum(c.used_cost) AS used, sum(c.unused_cost) AS unused, sum(c.eligible_cost) AS eligible,
               sum(c.on_demand_cost) AS on_demand,
               round(sum(c.used_cost) / nullif(sum(c.used_cost) + sum(c.unused_cost), 0), 4) AS utilization,
               round(sum(c.used_cost) / nullif(sum(c.eligible_cost), 0), 4) AS coverage,
               avg(c.realized_discount) AS discount,
               jsonb_agg(jsonb_build_object('week', c.week, 'utilization', c.utilization,
                                            'coverage', c.coverage,
                                            'utilization_change', c.utilization_change,
                                            'coverage_change', c.coverage_change) ORDER BY c.week) AS weekly
          FROM nightshift.cost_commitment_coverage(p_organization_id, p_from, p_to) AS c
         WHERE p_actions && '{ri-coverage,commitment-coverage}'
         GROUP BY 1, 2, 3
    )
    SELECT 'identify-unused', 'unused-commitment', u.commitment_discount_id, u.service_name,
           u.sub_account_id, u.billing_currency, u.unused_cost,
           round(u.unused_cost * 30.4375 / s.days, 2),
           jsonb_build_object('commitment_name', u.name, 'commitment_type', u.type,
                              'unused_cost', u.unused_cost, 'used_cost', u.used_cost,
                              'unused_by_week', u.weekly, 'days', round(s.days, 2))
      FROM unused AS u, span AS s
    UNION ALL
    SELECT 'identify-unused', 'idle-resource', r.resource_id, r.service_name, r.sub_account_id,
           r.billing_currency, r.cost, round(r.cost * 30.4375 / s.days, 2),
           jsonb_build_object('resource_name', r.resource_name, 'resource_type', r.resource_type,
                              'region', r.region_id, 'charged_rows', r.charged_rows,
                              'first_charge', r.first_charge, 'last_charge', r.last_charge,
                              'consumed_quantity', 0, 'days', round(s.days, 2))
      FROM nightshift.cost_idle_resources(p_organization_id, p_from, p_to) AS r, span AS s
     WHERE 'identify-unused' = ANY (p_actions)
    UNION ALL
    SELECT 'ri-coverage', 'low-commitment-utilization', c.service_name || '/' || coalesce(c.sub_account_id, '-'),
           c.service_name, c.sub_account_id, c.billing_currency, c.unused,
           round(c.unused * 30.4375 / s.days, 2),
           jsonb_build_object('utilization', c.utilization, 'coverage', c.coverage, 'used_cost', c.used,
                              'unused_cost', c.unused, 'threshold', p_min_utilization, 'weekly', c.weekly,
                              'days', round(s.days, 2))
      FROM coverage AS c, span AS s
     WHERE c.utilization < p_min_utilization
    UNION ALL
    SELECT 'ri-coverage', 'low-commitment-coverage', c.service_name || '/' || coalesce(c.sub_account_id, '-'),
           c.service_name, c.sub_account_id, c.billing_currency, c.on_demand,
           round(c.on_demand * c.discount * 30.4375 / s.days, 2),
           jsonb_build_object('coverage', c.coverage, 'utilization', c.utilization,
                              'eligible_cost', c.eligible, 'on_demand_cost', c.on_demand,
                              'realized_discount', round(c.discount, 4), 'threshold', p_min_coverage,
                              'weekly', c.weekly, 'days', round(s.days, 2))
      FROM coverage AS c, span AS s
     WHERE c.coverage < p_min_coverage AND c.discount > 0 AND c.on_demand > 0
$$;
