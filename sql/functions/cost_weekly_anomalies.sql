-- cost_weekly_anomalies: week-over-week cost per service, sub account and currency over the p_weeks ISO
-- weeks ending with the week of p_to, each week scored against the series with a robust z-score:
--
--   z = 0.6745 * (cost - median) / MAD        MAD = median of |cost - median|
--
-- (Iglewicz and Hoaglin; |z| > 3.5 is the usual outlier line, p_threshold here). Weeks without charges
-- count as zero. Where MAD is 0 (a flat series) the mean absolute deviation * 1.2533 stands in, and
-- where that is 0 too, z is NULL. Series with fewer than 4 weeks of charges are not scored.
CREATE OR REPLACE FUNCTION nightshift.cost_weekly_anomalies(p_organization_id bigint, p_to timestamptz,
                                                            p_weeks integer DEFAULT 12,
                                                            p_threshold numeric DEFAULT 3.5)
RETURNS TABLE (service_name text, sub_account_id text, billing_currency text, week date, cost numeric,
               median numeric, mad numeric, robust_z numeric, is_anomaly boolean)
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    WITH bounds AS (
        SELECT date_trunc('week', p_to AT TIME ZONE 'UTC') - (p_weeks - 1) * interval '1 week' AS first_week,
               date_trunc('week', p_to AT TIME ZONE 'UTC') AS last_week
    ), charged AS (
        SELECT i.service_name, i.sub_account_id, i.billing_currency,
               date_trunc('week', i.charge_period_start AT TIME ZONE 'UTC') AS week, sum(i.effective_cost) AS cost
          FROM bounds AS b,
               nightshift.cost_summary(p_organization_id, b.first_week AT TIME ZONE 'UTC',
                                     (b.last_week + interval '1 week') AT TIME ZONE 'UTC') AS i
         GROUP BY 1, 2, 3, 4
    ), series AS (
        SELECT k.service_name, k.sub_account_id, k.billing_currency
          FROM charged AS k GROUP BY 1, 2, 3 HAVING count(*) >= 4
    ), filled AS (
        SELECT s.service_name, s.sub_account_id, s.billing_currency, wk.week::date AS week,
               coalesce(c.cost, 0) AS cost
          FROM series AS s
         CROSS JOIN bounds AS b
         CROSS JOIN LATERAL generate_series(b.first_week, b.last_week, interval '1 week') AS wk(week)
          LEFT JOIN charged AS c
            ON (c.service_name, c.sub_account_id, c.billing_currency, c.week)
               IS NOT DISTINCT FROM (s.service_name, s.sub_account_id, s.billing_currency, wk.week)
    ), centre AS (
        SELECT f.service_name, f.sub_account_id, f.billing_currency,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY f.cost) AS median
          FROM filled AS f GROUP BY 1, 2, 3
    ), spread AS (
        SELECT f.service_name, f.sub_account_id, f.billing_currency, c.median,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(f.cost::float8 - c.median)) AS mad,
               avg(abs(f.cost::float8 - c.median)) AS mean_ad
          FROM filled AS f
          JOIN centre AS c USING (service_name, sub_account_id, billing_currency)
         GROUP BY 1, 2, 3, 4
    )
    SELECT f.service_name, f.sub_account_id, f.billing_currency, f.week, f.cost,
           round(s.median::numeric, 6), round(s.mad::numeric, 6), z.z,
           coalesce(abs(z.z) > p_threshold, false)
      FROM filled AS f
      JOIN spread AS s
        ON (s.service_name, s.sub_account_id, s.billing_currency)
           IS NOT DISTINCT FROM (f.service_name, f.sub_account_id, f.billing_currency)
     CROSS JOIN LATERAL (
        SELECT round(CASE WHEN s.mad > 0 THEN 0.6745 * (f.cost::float8 - s.median) / s.mad
                          WHEN s.mean_ad > 0 THEN (f.cost::float8 - s.median) / (1.2533 * s.mean_ad)
                     END::numeric, 3) AS z
     ) AS z
$$;
