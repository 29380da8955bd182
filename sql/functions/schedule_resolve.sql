-- resolve_schedule: the schedule row of a target named like a task subject — 'pipeline/42' (its
-- drift-scan schedule), 'cloud_integration/7' (compliance-scan), 'organization/3' (cost-analysis).
-- The DBA functions (set_frequency, pause, resume, run_now) all start here, so they share its errors:
-- a malformed name, a target that does not exist, a target without a schedule.
-- With p_create, a missing schedule row of an existing target is created (set_frequency registers a
-- pipeline for drift scans this way).
CREATE OR REPLACE FUNCTION nightshift.resolve_schedule(p_target text, p_create boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_ref record;
    v_kind text;
    v_exists boolean;
    v_id bigint;
BEGIN
    /* The id of the target's schedule row; an error naming the problem when there is none. */
    v_ref := nightshift.parse_subject(p_target);
    -- the kind scheduled on this type of target (nightshift.task_kinds)
    v_kind := (SELECT k.kind FROM nightshift.task_kinds AS k
                WHERE k.scheduled AND k.target_type = v_ref.target_type
                ORDER BY k.kind LIMIT 1);
    IF v_kind IS NULL THEN
        RAISE EXCEPTION 'unknown target %', quote_nullable(p_target)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'name a target as pipeline/<id>, cloud_integration/<id> or organization/<id>';
    END IF;

    v_exists := CASE v_ref.target_type
        WHEN 'pipeline' THEN EXISTS (SELECT FROM nightshift.pipelines WHERE id = v_ref.target_id)
        WHEN 'cloud_integration' THEN
            EXISTS (SELECT FROM nightshift.cloud_integrations WHERE id = v_ref.target_id)
        ELSE EXISTS (SELECT FROM nightshift.organizations WHERE id = v_ref.target_id)
    END;
    IF NOT v_exists THEN
        RAISE EXCEPTION 'unknown target %: no % with id %', p_target, v_ref.target_type, v_ref.target_id
            USING ERRCODE = 'no_data_found';
    END IF;

    SELECT s.id INTO v_id
      FROM nightshift.schedules AS s
     WHERE s.kind = v_kind
       AND CASE v_ref.target_type
               WHEN 'pipeline' THEN s.pipeline_id
               WHEN 'cloud_integration' THEN s.cloud_integration_id
               ELSE s.organization_id
           END = v_ref.target_id;
    IF v_id IS NULL AND p_create THEN
        INSERT INTO nightshift.schedules (kind, pipeline_id, cloud_integration_id, organization_id)
        VALUES (v_kind,
                CASE WHEN v_ref.target_type = 'pipeline' THEN v_ref.target_id END,
                CASE WHEN v_ref.target_type = 'cloud_integration' THEN v_ref.target_id END,
                CASE WHEN v_ref.target_type = 'organization' THEN v_ref.target_id END)
        -- a concurrent caller may have created it a moment ago: then use theirs
        ON CONFLICT ON CONSTRAINT schedules_one_per_target DO NOTHING
        RETURNING id INTO v_id;
        IF v_id IS NULL THEN
            RETURN nightshift.resolve_schedule(p_target, false);
        END IF;
    END IF;
    IF v_id IS NULL THEN
        RAISE EXCEPTION '% has no % schedule', p_target, v_kind
            USING ERRCODE = 'no_data_found',
                  HINT = format('create one with: SELECT nightshift.set_frequency(%L, ''DAILY'')', p_target);
    END IF;
    RETURN v_id;
END
$$;

REVOKE EXECUTE ON FUNCTION nightshift.resolve_schedule(text, boolean) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_scheduler') THEN
        GRANT EXECUTE ON FUNCTION nightshift.resolve_schedule(text, boolean) TO nightshift_scheduler;
    END IF;
END
$$;
