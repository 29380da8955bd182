-- Named queries of `nightshift report` (dispatcher/report/build.py). Each reads one reporting view of
-- sql/views/ for the organizations %(orgs)s (an array of ids): what a DBA gets with
-- SELECT * FROM nightshift.<view> WHERE organization_id = ...

-- name: report_organizations --
-- The organizations to report on: all, or those named (by id or name) in %(refs)s.
SELECT o.id, o.name FROM nightshift.organizations AS o
 WHERE %(refs)s::text[] IS NULL OR o.id::text = ANY (%(refs)s::text[]) OR o.name = ANY (%(refs)s::text[])
 ORDER BY o.name

-- name: report_targets --
-- Every monitored target's status (target_status).
SELECT organization_id, subject, target_type, target, kind, frequency, is_active, last_scan_at, last_status,
       last_error, last_success_at, last_clean_at, status_24h_ago, error_streak, open_findings,
       worst_severity, overdue
  FROM nightshift.target_status
 WHERE organization_id = ANY (%(orgs)s)
 ORDER BY organization_id, target, kind

-- name: report_open_summary --
-- Open findings by kind, severity and age bucket.
SELECT organization_id, kind, severity, severity_rank, age_bucket, findings
  FROM nightshift.findings_open_summary
 WHERE organization_id = ANY (%(orgs)s)

-- name: report_trend --
-- Open findings per kind and day over the last 30 days.
SELECT organization_id, kind, day, open
  FROM nightshift.findings_open_trend
 WHERE organization_id = ANY (%(orgs)s)
 ORDER BY organization_id, day

-- name: report_mttr --
-- Mean time to resolve and reopen rate per kind, for one window (7, 30 or 90 days).
SELECT organization_id, kind, window_days, resolved, extract(epoch FROM mttr)::bigint AS mttr_seconds,
       opened, active, reopened, reopen_rate
  FROM nightshift.findings_mttr
 WHERE organization_id = ANY (%(orgs)s) AND window_days = %(days)s
 ORDER BY organization_id, kind

-- name: report_posture --
-- Compliance score per cloud integration and framework.
SELECT s.organization_id, c.provider || ':' || c.account_id AS integration, s.framework, s.framework_version,
       s.requirements, s.passing, s.failing, s.manual, s.not_evaluated, s.score, s.latest_scan_at
  FROM nightshift.compliance_scores AS s
  JOIN nightshift.cloud_integrations AS c ON c.id = s.cloud_integration_id
 WHERE s.organization_id = ANY (%(orgs)s)
 ORDER BY s.organization_id, integration, s.framework

-- name: report_savings --
-- Estimated monthly savings per recommendation and currency.
SELECT organization_id, recommendation, currency, open_findings, open_monthly_saving, resolved_30d,
       realized_monthly_saving_30d
  FROM nightshift.cost_savings
 WHERE organization_id = ANY (%(orgs)s)
 ORDER BY organization_id, open_monthly_saving DESC

-- name: report_resources --
-- The cloud resources with the most open findings, across drift, compliance and cost (top 10 each).
SELECT * FROM (
    SELECT organization_id, resource, resource_type, open_drift, open_compliance, open_cost,
           worst_severity, monthly_saving, targets,
           row_number() OVER (PARTITION BY organization_id
                              ORDER BY open_drift + open_compliance + open_cost + open_other DESC,
                                       nightshift.severity_rank(worst_severity) DESC, resource) AS rank
      FROM nightshift.resource_findings
     WHERE organization_id = ANY (%(orgs)s)) AS r
 WHERE rank <= 10
 ORDER BY organization_id, rank

-- name: report_queue --
-- Queue health per organization and task kind.
SELECT organization_id, kind, queued, queued_due, running, extract(epoch FROM oldest_queued_age)::bigint
       AS oldest_queued_seconds, done_last_hour, done_last_day, failed_last_day, dead_last_day
  FROM nightshift.queue_health
 WHERE organization_id = ANY (%(orgs)s)
 ORDER BY organization_id, kind

-- name: report_overview_targets --
-- The overview's targets (a report of many organizations): target_status without its per-target count
-- of open findings, which reads each target's findings through the index, one target at a time; here
-- the open findings of all of them are counted in one pass (for 200 organizations and 1,000,000
-- findings: a third of a second instead of seconds).
WITH open AS (
    SELECT f.subject, f.kind, count(*) AS findings, max(nightshift.severity_rank(f.severity)) AS worst
      FROM nightshift.findings AS f
     WHERE f.status = 'OPEN'
     GROUP BY f.subject, f.kind
)
SELECT ts.organization_id, ts.subject, ts.target_type, ts.target, ts.kind, ts.frequency, ts.is_active,
       ts.last_scan_at, ts.last_status, ts.last_error, ts.last_success_at, ts.last_clean_at, ts.status_24h_ago,
       ts.error_streak, coalesce(sum(o.findings), 0)::bigint AS open_findings,
       (array['info', 'low', 'medium', 'high', 'critical'])[max(o.worst) + 1] AS worst_severity, ts.overdue
  FROM nightshift.target_status AS ts
  JOIN nightshift.task_kinds AS k ON k.kind = ts.kind
  LEFT JOIN open AS o ON o.subject = ts.subject AND o.kind = ANY (k.finding_kinds)
 WHERE ts.organization_id = ANY (%(orgs)s)
 GROUP BY ts.organization_id, ts.subject, ts.target_type, ts.target, ts.kind, ts.frequency, ts.is_active,
          ts.last_scan_at, ts.last_status, ts.last_error, ts.last_success_at, ts.last_clean_at,
          ts.status_24h_ago, ts.error_streak, ts.overdue
 ORDER BY ts.organization_id, ts.target, ts.kind
