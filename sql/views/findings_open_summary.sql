-- nightshift.findings_open_summary answers "how much is open, how bad, and how old?": OPEN findings
-- per organization, kind, severity and age bucket (since first seen: 0-1d, 1-7d, 7-30d, 30d+).
--   SELECT kind, severity, age_bucket, findings FROM nightshift.findings_open_summary
--    WHERE organization_id = 1 ORDER BY severity_rank DESC, age_bucket;
CREATE OR REPLACE VIEW nightshift.findings_open_summary WITH (security_invoker = true) AS
SELECT t.organization_id, f.kind, coalesce(lower(f.severity), 'unknown') AS severity,
       nightshift.severity_rank(f.severity) AS severity_rank,
       CASE WHEN f.first_seen > now() - interval '1 day' THEN '0-1d'
            WHEN f.first_seen > now() - interval '7 days' THEN '1-7d'
            WHEN f.first_seen > now() - interval '30 days' THEN '7-30d'
            ELSE '30d+' END AS age_bucket,
       count(*) AS findings, min(f.first_seen) AS oldest_first_seen
  FROM nightshift.subjects AS t
  JOIN nightshift.findings AS f ON f.subject = t.subject AND f.status = 'OPEN'
 GROUP BY 1, 2, 3, 4, 5;

COMMENT ON VIEW nightshift.findings_open_summary IS 'open findings per organization, kind, severity, age bucket';

-- nightshift.findings_mttr answers "how fast do we fix things, and do they come back?": per
-- organization, finding kind and window (the last 7, 30 and 90 days):
--   resolved        findings resolved in the window
--   mttr            their mean time to resolve (resolved_at - first_seen: a finding that was reopened
--                   counts from its first sighting, the table keeps no per-episode history)
--   opened          findings first seen in the window
--   active          findings seen or resolved in the window
--   reopened        active findings that have reopened at least once; reopen_rate = reopened / active
--   SELECT kind, window_days, resolved, mttr, reopen_rate FROM nightshift.findings_mttr
--    WHERE organization_id = 1 AND window_days = 30;
CREATE OR REPLACE VIEW nightshift.findings_mttr WITH (security_invoker = true) AS
SELECT t.organization_id, f.kind, w.days AS window_days,
       count(*) FILTER (WHERE f.status = 'RESOLVED' AND f.resolved_at > now() - w.span) AS resolved,
       date_trunc('second', avg(f.resolved_at - f.first_seen)
                                FILTER (WHERE f.status = 'RESOLVED' AND f.resolved_at > now() - w.span))
           AS mttr,
       count(*) FILTER (WHERE f.first_seen > now() - w.span) AS opened,
       count(*) AS active,
       count(*) FILTER (WHERE f.reopened_count > 0) AS reopened,
       round(count(*) FILTER (WHERE f.reopened_count > 0)::numeric / count(*), 3) AS reopen_rate
  FROM nightshift.subjects AS t
  JOIN nightshift.findings AS f ON f.subject = t.subject
 CROSS JOIN (VALUES (7, interval '7 days'), (30, interval '30 days'), (90, interval '90 days')) AS w(days, span)
 WHERE f.last_seen > now() - w.span OR f.resolved_at > now() - w.span
 GROUP BY 1, 2, 3;

COMMENT ON VIEW nightshift.findings_mttr IS
    'per organization, kind and 7/30/90-day window: resolved, mean time to resolve, reopen rate';

-- nightshift.findings_open_trend answers "are we getting better?": per organization, kind and day of
-- the last 30 days (UTC), the findings open at the end of that day (for today: now). Built from each
-- finding's first_seen and resolved_at (a finding first seen before the window counts from its first
-- day); findings suppressed now are left out.
--   SELECT day, sum(open) FROM nightshift.findings_open_trend WHERE organization_id = 1
--    GROUP BY day ORDER BY day;
-- Each finding becomes two changes (+1 the day it opened, -1 the day it was resolved), summed per day;
-- the open count of a day is the sum of the changes up to it. That reads each finding once, where
-- a row per finding and day open would read it up to 30 times.
CREATE OR REPLACE VIEW nightshift.findings_open_trend WITH (security_invoker = true) AS
SELECT c.organization_id, c.kind, w.day::date AS day,
       coalesce(sum(c.change) FILTER (WHERE c.day <= w.day::date), 0)::bigint AS open
  FROM (SELECT t.organization_id, f.kind, e.day, sum(e.change) AS change
          FROM nightshift.subjects AS t
          JOIN nightshift.findings AS f ON f.subject = t.subject
         CROSS JOIN LATERAL (
                VALUES (greatest((f.first_seen AT TIME ZONE 'UTC')::date,
                                 (now() AT TIME ZONE 'UTC')::date - 29), 1),
                       ((f.resolved_at AT TIME ZONE 'UTC')::date, -1)) AS e(day, change)
         WHERE f.status <> 'SUPPRESSED'
           AND (f.resolved_at IS NULL
                OR f.resolved_at >= ((now() AT TIME ZONE 'UTC')::date - 29) AT TIME ZONE 'UTC')
           AND e.day IS NOT NULL
         GROUP BY 1, 2, 3) AS c
 CROSS JOIN generate_series((now() AT TIME ZONE 'UTC')::date - 29, (now() AT TIME ZONE 'UTC')::date,
                            interval '1 day') AS w(day)
 GROUP BY 1, 2, 3;

COMMENT ON VIEW nightshift.findings_open_trend IS 'per organization, kind and day of the last 30: findings open';

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_reader') THEN
        GRANT SELECT ON nightshift.findings_open_summary, nightshift.findings_mttr,
                        nightshift.findings_open_trend TO nightshift_reader;
    END IF;
END
$$;
