-- Every schedule row with its target: the task it would enqueue (kind, subject, payload) and whether the
-- target's own switches let it run (`enabled`). run_now(), upcoming_runs() and `nightshift schedule list`
-- read it. enqueue_due() builds the same payloads with its own per-kind joins (for speed); a test checks
-- that a task made by pg_cron and one made by run_now() are the same task.
--   drift-scan       pipeline/<id>           always enabled; pause with is_active
--   compliance-scan  cloud_integration/<id>  the integration's and its organization's compliance switches
--                                            are on and the integration is not deleted
--   cost-analysis    organization/<id>       the organization's cost_optimization_enabled
-- auto_create_pr / auto_remediate in payloads are effective switches: the schedule's auto_create_pr AND
-- every master switch above it (repository, organization), so an agent need not re-check them.
CREATE OR REPLACE VIEW nightshift.schedule_targets AS
SELECT s.id AS schedule_id,
       s.kind,
       'pipeline/' || s.pipeline_id AS subject,
       s.pipeline_id AS target_id,
       r.organization_id,
       s.frequency,
       s.is_active,
       true AS enabled,
       s.next_run_at,
       pg_catalog.jsonb_build_object(
           'schedule_id', s.id,
           'pipeline_id', s.pipeline_id,
           'auto_create_pr', s.auto_create_pr AND r.auto_remediate AND o.auto_remediate,
           'notification_channel', s.notification_channel) AS payload
  FROM nightshift.schedules AS s
  JOIN nightshift.pipelines AS p ON p.id = s.pipeline_id
  JOIN nightshift.repositories AS r ON r.id = p.repository_id
  JOIN nightshift.organizations AS o ON o.id = r.organization_id
 WHERE s.kind = 'drift-scan'
UNION ALL
SELECT s.id,
       s.kind,
       'cloud_integration/' || s.cloud_integration_id,
       s.cloud_integration_id,
       ci.organization_id,
       s.frequency,
       s.is_active,
       ci.compliance_enabled AND o.compliance_enabled AND ci.deleted_at IS NULL,
       s.next_run_at,
       pg_catalog.jsonb_build_object(
           'schedule_id', s.id,
           'cloud_integration_id', ci.id,
           'provider', ci.provider,
           'account_id', ci.account_id,
           'frameworks', pg_catalog.to_jsonb(ci.frameworks),
           'auto_remediate', s.auto_create_pr AND o.auto_remediate,
           'notification_channel', s.notification_channel)
  FROM nightshift.schedules AS s
  JOIN nightshift.cloud_integrations AS ci ON ci.id = s.cloud_integration_id
  JOIN nightshift.organizations AS o ON o.id = ci.organization_id
 WHERE s.kind = 'compliance-scan'
UNION ALL
SELECT s.id,
       s.kind,
       'organization/' || s.organization_id,
       s.organization_id,
       o.id,
       s.frequency,
       s.is_active,
       o.cost_optimization_enabled,
       s.next_run_at,
       pg_catalog.jsonb_build_object(
           'schedule_id', s.id,
           'organization_id', o.id,
           'lookback_days', coalesce((SELECT st.value FROM nightshift.settings AS st
                                       WHERE st.key = 'cost.lookback_days'), '30')::integer,
           'actions', coalesce((SELECT st.value FROM nightshift.settings AS st
                                 WHERE st.key = 'cost.actions'),
                               '["identify-unused", "rightsizing-recs", "commitment-coverage"]')::jsonb,
           'auto_create_pr', s.auto_create_pr AND o.auto_remediate,
           'notification_channel', s.notification_channel)
  FROM nightshift.schedules AS s
  JOIN nightshift.organizations AS o ON o.id = s.organization_id
 WHERE s.kind = 'cost-analysis';

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_reader') THEN
        GRANT SELECT ON nightshift.schedule_targets TO nightshift_reader;
    END IF;
END
$$;
