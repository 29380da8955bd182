-- cost_top_movers: what changed most between the ISO week of p_week and the week before, per service,
-- sub account and currency: the p_limit largest absolute changes of EffectiveCost in each currency.
CREATE OR REPLACE FUNCTION nightshift.cost_top_movers(p_organization_id bigint, p_week timestamptz,
                                                      p_limit integer DEFAULT 10)
RETURNS TABLE (service_name text, sub_account_id text, billing_currency text, week date,
               previous_cost numeric, cost numeric, change numeric, change_ratio numeric, rank bigint)
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    WITH bounds AS (
        SELECT date_trunc('week', p_week AT TIME ZONE 'UTC') AS this_week
    ), both_weeks AS (
        SELECT i.service_name, i.sub_account_id, i.billing_currency,
               coalesce(sum(i.effective_cost) FILTER (
                   WHERE i.charge_period_start < b.this_week AT TIME ZONE 'UTC'), 0) AS previous_cost,
               coalesce(sum(i.effective_cost) FILTER (
                   WHERE i.charge_period_start >= b.this_week AT TIME ZONE 'UTC'), 0) AS cost
          FROM bounds AS b,
               nightshift.cost_summary(p_organization_id, (b.this_week - interval '1 week') AT TIME ZONE 'UTC',
                                     (b.this_week + interval '1 week') AT TIME ZONE 'UTC') AS i
         GROUP BY 1, 2, 3
    ), ranked AS (
        SELECT w.*, w.cost - w.previous_cost AS change,
               round((w.cost - w.previous_cost) / nullif(w.previous_cost, 0), 4) AS change_ratio,
               row_number() OVER (PARTITION BY w.billing_currency
                                  ORDER BY abs(w.cost - w.previous_cost) DESC, w.service_name) AS rank
          FROM both_weeks AS w
    )
    SELECT r.service_name, r.sub_account_id, r.billing_currency, (SELECT this_week::date FROM bounds),
           r.previous_cost, r.cost, r.change, r.change_ratio, r.rank
      FROM ranked AS r
     WHERE r.rank <= p_limit AND r.change <> 0
$$;
