-- nightshift.scan_history answers "how has this target been doing?": per target, kind and day (UTC), its
-- scans by outcome and the status it ended the day with (a status timeline). Filter on day to bound it:
--   SELECT target, day, scans, errors, last_status FROM nightshift.scan_history
--    WHERE organization_id = 1 AND day > current_date - 14 ORDER BY target, day;
-- Grouped per target (a lateral subquery): each target's scans come from scans_subject_idx alone and are
-- grouped among themselves, instead of sorting every scan of the organization by target label.
CREATE OR REPLACE VIEW nightshift.scan_history WITH (security_invoker = true) AS
SELECT t.organization_id, t.subject, t.label AS target, d.kind, d.day, d.scans, d.clean, d.findings_reported,
       d.errors, d.last_status, d.last_scan_at, d.mean_duration
  FROM nightshift.subjects AS t
 CROSS JOIN LATERAL (
       SELECT s.kind, (s.finished_at AT TIME ZONE 'UTC')::date AS day,
              count(*) AS scans,
              count(*) FILTER (WHERE s.status = 'CLEAN') AS clean,
              count(*) FILTER (WHERE s.status IN ('DRIFTED', 'FAILED_CHECKS')) AS findings_reported,
              count(*) FILTER (WHERE s.status = 'ERROR') AS errors,
              (array_agg(s.status ORDER BY s.finished_at DESC))[1] AS last_status,
              max(s.finished_at) AS last_scan_at,
              avg(s.finished_at - s.started_at) AS mean_duration
         FROM nightshift.scans AS s
        WHERE s.subject = t.subject
        GROUP BY s.kind, (s.finished_at AT TIME ZONE 'UTC')::date
 ) AS d;

COMMENT ON VIEW nightshift.scan_history IS 'per target, kind and day: scans by outcome and the day''s last status';

-- nightshift.scan_error_streaks answers "what keeps failing to scan?": targets whose latest scans of a
-- kind are ERRORs, with how many in a row, since when, and the latest error.
--   SELECT target, kind, errors_in_a_row, failing_since, last_error FROM nightshift.scan_error_streaks
--    WHERE organization_id = 1 ORDER BY errors_in_a_row DESC;
CREATE OR REPLACE VIEW nightshift.scan_error_streaks WITH (security_invoker = true) AS
SELECT organization_id, subject, target, kind, error_streak AS errors_in_a_row,
       first_error.finished_at AS failing_since, last_success_at,
       last_scan_at AS last_error_at, last_error
  FROM nightshift.target_status AS ts
  LEFT JOIN LATERAL (
      SELECT s.finished_at FROM nightshift.scans AS s
       WHERE s.subject = ts.subject AND s.kind = ts.kind AND s.finished_at > coalesce(ts.last_success_at, '-infinity')
       ORDER BY s.finished_at LIMIT 1
  ) AS first_error ON true
 WHERE ts.error_streak > 0;

COMMENT ON VIEW nightshift.scan_error_streaks IS 'targets whose latest scans fail: errors in a row, since when';

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_reader') THEN
        GRANT SELECT ON nightshift.scan_history, nightshift.scan_error_streaks TO nightshift_reader;
    END IF;
END
$$;
