-- Compliance and cost schedules exist without anyone creating them: each new cloud integration gets a
-- compliance-scan schedule and each new organization a cost-analysis schedule (frequency from settings
-- 'schedule.default_frequency.<kind>': DAILY and WEEKLY). Turning the switch on for a row whose schedule
-- was deleted creates it again. Whether a schedule runs still depends on the switches
-- (see the view nightshift.schedule_targets); the schedule row only holds frequency and next run.
-- Drift schedules are created explicitly: nightshift.set_frequency('pipeline/<id>', 'DAILY').
-- An UPDATE of the targets also puts back the hints (schedule_wakeups) of their overdue schedules:
-- enqueue_due moves the hint of a switched-off target to its next slot, and a switch turned on must
-- not wait for that slot.
CREATE OR REPLACE FUNCTION nightshift.ensure_target_schedules()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    /* Create the missing schedule rows of the organizations or cloud integrations a statement wrote. */
    -- statement-level with a transition table: a bulk load of 10,000 integrations is one INSERT here
    IF TG_TABLE_NAME = 'cloud_integrations' THEN
        INSERT INTO nightshift.schedules (kind, cloud_integration_id, frequency)
        SELECT 'compliance-scan', n.id,
               coalesce((SELECT s.value FROM nightshift.settings AS s
                          WHERE s.key = 'schedule.default_frequency.compliance-scan'), 'DAILY')
                   ::nightshift.frequency
          FROM changed_rows AS n
         WHERE TG_OP = 'INSERT' OR n.compliance_enabled
        ON CONFLICT ON CONSTRAINT schedules_one_per_target DO NOTHING;
        IF TG_OP = 'UPDATE' THEN
            -- a switch turned on: its overdue schedules run at the next enqueue_due, whose hints were
            -- moved to their next slot while the switch was off
            INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_ids)
            SELECT s.kind, s.next_run_at, ARRAY[s.id]
              FROM changed_rows AS n
              -- the kind and the NULL pipeline let schedules_one_per_target find the rows
              JOIN nightshift.schedules AS s
                ON s.kind = 'compliance-scan' AND s.pipeline_id IS NULL AND s.cloud_integration_id = n.id
             WHERE s.is_active AND s.frequency <> 'UNMONITORED' AND s.next_run_at <= now();
        END IF;
    ELSIF TG_TABLE_NAME = 'organizations' THEN
        INSERT INTO nightshift.schedules (kind, organization_id, frequency)
        SELECT 'cost-analysis', n.id,
               coalesce((SELECT s.value FROM nightshift.settings AS s
                          WHERE s.key = 'schedule.default_frequency.cost-analysis'), 'WEEKLY')
                   ::nightshift.frequency
          FROM changed_rows AS n
         WHERE TG_OP = 'INSERT' OR n.cost_optimization_enabled
        ON CONFLICT ON CONSTRAINT schedules_one_per_target DO NOTHING;
        IF TG_OP = 'UPDATE' THEN
            -- as above, for the organization's cost schedule and its integrations' compliance schedules
            INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_ids)
            SELECT s.kind, s.next_run_at, ARRAY[s.id]
              FROM changed_rows AS n
              JOIN nightshift.schedules AS s
                ON s.kind = 'cost-analysis' AND s.pipeline_id IS NULL AND s.cloud_integration_id IS NULL
               AND s.organization_id = n.id
             WHERE s.is_active AND s.frequency <> 'UNMONITORED' AND s.next_run_at <= now()
            UNION ALL
            SELECT s.kind, s.next_run_at, ARRAY[s.id]
              FROM changed_rows AS n
              JOIN nightshift.cloud_integrations AS ci ON ci.organization_id = n.id
              JOIN nightshift.schedules AS s
                ON s.kind = 'compliance-scan' AND s.pipeline_id IS NULL AND s.cloud_integration_id = ci.id
             WHERE s.is_active AND s.frequency <> 'UNMONITORED' AND s.next_run_at <= now();
        END IF;
    END IF;
    RETURN NULL;
END
$$;

REVOKE EXECUTE ON FUNCTION nightshift.ensure_target_schedules() FROM PUBLIC;

DROP TRIGGER IF EXISTS cloud_integrations_schedule_insert ON nightshift.cloud_integrations;
CREATE TRIGGER cloud_integrations_schedule_insert
    AFTER INSERT ON nightshift.cloud_integrations
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nightshift.ensure_target_schedules();

DROP TRIGGER IF EXISTS cloud_integrations_schedule_update ON nightshift.cloud_integrations;
CREATE TRIGGER cloud_integrations_schedule_update
    AFTER UPDATE ON nightshift.cloud_integrations
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nightshift.ensure_target_schedules();

DROP TRIGGER IF EXISTS organizations_schedule_insert ON nightshift.organizations;
CREATE TRIGGER organizations_schedule_insert
    AFTER INSERT ON nightshift.organizations
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nightshift.ensure_target_schedules();

DROP TRIGGER IF EXISTS organizations_schedule_update ON nightshift.organizations;
CREATE TRIGGER organizations_schedule_update
    AFTER UPDATE ON nightshift.organizations
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nightshift.ensure_target_schedules();
