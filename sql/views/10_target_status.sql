-- (10_: applied after 00_subjects and before the views that read target_status: scan_history)
-- nightshift.target_status answers "is every monitored target being scanned, and how does it stand?":
-- one row per target and scheduled kind (a pipeline's drift scans, an integration's compliance scans,
-- an organization's cost analysis), with its latest scan, its latest successful (not ERROR) and clean
-- scans, its open findings, its current error streak, and whether it is overdue.
--
--   overdue      the schedule is active and the latest successful scan (or, when there is none yet, the
--                schedule's creation) is older than the schedule's period, plus 15 minutes: a scan takes
--                minutes to finish after its slot. UNMONITORED and paused schedules are never overdue.
--   status_24h_ago  the status of the latest scan finished before this time yesterday (what the report
--                calls "broke since yesterday": bad now, CLEAN or nothing then)
--   error_streak the number of ERROR scans since the latest successful one
--
-- Every lookup is an index range of scans_subject_idx (subject, finished_at), so one organization
-- costs what its targets cost:
--   SELECT target, last_status, open_findings, overdue FROM nightshift.target_status
--    WHERE organization_id = 1 ORDER BY overdue DESC, open_findings DESC;
CREATE OR REPLACE VIEW nightshift.target_status WITH (security_invoker = true) AS
SELECT t.organization_id, t.subject, t.target_type, t.target_id, t.label AS target, k.kind,
       sch.schedule_id, sch.frequency, coalesce(sch.is_active, false) AS is_active,
       last.finished_at AS last_scan_at, last.status AS last_status, last.error AS last_error,
       ok.finished_at AS last_success_at, clean.finished_at AS last_clean_at,
       before.status AS status_24h_ago,
       errors.streak AS error_streak,
       open.findings AS open_findings, open.worst_severity,
       CASE sch.frequency WHEN 'HOURLY' THEN interval '1 hour' WHEN 'DAILY' THEN interval '1 day'
                          WHEN 'WEEKLY' THEN interval '7 days' WHEN 'MONTHLY' THEN interval '1 month' END
           AS period,
       coalesce(sch.is_active AND sch.frequency <> 'UNMONITORED'
                AND coalesce(ok.finished_at, sch.created_at) < now() - interval '15 minutes' - CASE sch.frequency
                            WHEN 'HOURLY' THEN interval '1 hour' WHEN 'DAILY' THEN interval '1 day'
                            WHEN 'WEEKLY' THEN interval '7 days' ELSE interval '1 month' END,
                false) AS overdue
  FROM nightshift.subjects AS t
  JOIN nightshift.task_kinds AS k ON k.target_type = t.target_type AND k.scheduled
  -- its schedule: each branch runs only for its target type and is one probe of schedules_one_per_target
  LEFT JOIN LATERAL (
      SELECT s.id AS schedule_id, s.frequency, s.is_active, s.created_at FROM nightshift.schedules AS s
       WHERE t.target_type = 'pipeline' AND s.kind = k.kind AND s.pipeline_id = t.target_id
      UNION ALL
      SELECT s.id, s.frequency, s.is_active, s.created_at FROM nightshift.schedules AS s
       WHERE t.target_type = 'cloud_integration' AND s.kind = k.kind AND s.pipeline_id IS NULL
         AND s.cloud_integration_id = t.target_id
      UNION ALL
      SELECT s.id, s.frequency, s.is_active, s.created_at FROM nightshift.schedules AS s
       WHERE t.target_type = 'organization' AND s.kind = k.kind AND s.pipeline_id IS NULL
         AND s.cloud_integration_id IS NULL AND s.organization_id = t.target_id
      LIMIT 1
  ) AS sch ON true
  LEFT JOIN LATERAL (
      SELECT s.finished_at, s.status, s.error FROM nightshift.scans AS s
       WHERE s.subject = t.subject AND s.kind = k.kind ORDER BY s.finished_at DESC LIMIT 1
  ) AS last ON true
  LEFT JOIN LATERAL (
      SELECT s.finished_at FROM nightshift.scans AS s
       WHERE s.subject = t.subject AND s.kind = k.kind AND s.status <> 'ERROR'
       ORDER BY s.finished_at DESC LIMIT 1
  ) AS ok ON true
  LEFT JOIN LATERAL (
      SELECT s.finished_at FROM nightshift.scans AS s
       WHERE s.subject = t.subject AND s.kind = k.kind AND s.status = 'CLEAN'
       ORDER BY s.finished_at DESC LIMIT 1
  ) AS clean ON true
  LEFT JOIN LATERAL (
      SELECT s.status FROM nightshift.scans AS s
       WHERE s.subject = t.subject AND s.kind = k.kind AND s.finished_at < now() - interval '1 day'
       ORDER BY s.finished_at DESC LIMIT 1
  ) AS before ON true
  CROSS JOIN LATERAL (
      SELECT count(*) AS streak FROM nightshift.scans AS s
       WHERE s.subject = t.subject AND s.kind = k.kind AND s.status = 'ERROR'
         AND s.finished_at > coalesce(ok.finished_at, '-infinity')
  ) AS errors
  CROSS JOIN LATERAL (
      SELECT count(*) AS findings,
             (array['info', 'low', 'medium', 'high', 'critical'])[max(nightshift.severity_rank(f.severity)) + 1]
                 AS worst_severity
        FROM nightshift.findings AS f
       WHERE f.subject = t.subject AND f.status = 'OPEN' AND f.kind = ANY (k.finding_kinds)
  ) AS open;

COMMENT ON VIEW nightshift.target_status IS
    'per target and scheduled kind: latest scan, last success/clean, open findings, error streak, overdue';

-- nightshift.drift_status answers "which pipelines drift, and which are not being checked?": the drift
-- rows of target_status, with the pipeline's id.
--   SELECT target, last_status, open_findings, last_clean_at, overdue FROM nightshift.drift_status
--    WHERE organization_id = 1 AND (last_status <> 'CLEAN' OR overdue);
CREATE OR REPLACE VIEW nightshift.drift_status WITH (security_invoker = true) AS
SELECT organization_id, target_id AS pipeline_id, subject, target, frequency, is_active,
       last_scan_at, last_status, last_error, last_success_at, last_clean_at, status_24h_ago,
       error_streak, open_findings, worst_severity, period, overdue
  FROM nightshift.target_status
 WHERE kind = 'drift-scan';

COMMENT ON VIEW nightshift.drift_status IS
    'per pipeline: latest drift scan, open drift findings, last clean scan, overdue against its frequency';

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_reader') THEN
        GRANT SELECT ON nightshift.target_status, nightshift.drift_status TO nightshift_reader;
    END IF;
END
$$;
