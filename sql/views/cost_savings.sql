-- nightshift.cost_savings answers "how much could we save, and how much did we?": per organization and
-- currency, the estimated monthly saving of the OPEN cost findings (the cost-analysis agent's
-- details.estimated_monthly_saving), by recommendation, and of those resolved in the last 30 days
-- (the resource went away or was resized: the saving was made).
--   SELECT recommendation, currency, open_findings, open_monthly_saving FROM nightshift.cost_savings
--    WHERE organization_id = 1 ORDER BY open_monthly_saving DESC;
CREATE OR REPLACE VIEW nightshift.cost_savings WITH (security_invoker = true) AS
SELECT t.organization_id, coalesce(f.check_id, 'other') AS recommendation,
       coalesce(f.details ->> 'currency', 'USD') AS currency,
       count(*) FILTER (WHERE f.status = 'OPEN') AS open_findings,
       coalesce(sum(nightshift.saving_of(f.details)) FILTER (WHERE f.status = 'OPEN'), 0) AS open_monthly_saving,
       count(*) FILTER (WHERE f.status = 'RESOLVED' AND f.resolved_at > now() - interval '30 days')
           AS resolved_30d,
       coalesce(sum(nightshift.saving_of(f.details))
                    FILTER (WHERE f.status = 'RESOLVED' AND f.resolved_at > now() - interval '30 days'), 0)
           AS realized_monthly_saving_30d
  FROM nightshift.subjects AS t
  JOIN nightshift.findings AS f ON f.subject = t.subject AND f.kind = 'cost'
 WHERE f.status = 'OPEN' OR (f.status = 'RESOLVED' AND f.resolved_at > now() - interval '30 days')
 GROUP BY 1, 2, 3;

COMMENT ON VIEW nightshift.cost_savings IS
    'per organization, recommendation, currency: estimated monthly savings open and realized (30 days)';

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_reader') THEN
        GRANT SELECT ON nightshift.cost_savings TO nightshift_reader;
    END IF;
END
$$;
