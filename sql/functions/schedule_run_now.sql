-- run_now: enqueue a target's scheduled task immediately, by hand — the same kind, subject and payload
-- enqueue_due would produce (from nightshift.schedule_targets), with priority 10 so it is claimed before
-- routine runs. Still overlap-safe: when a task for the target is already queued or running, nothing is
-- enqueued, a NOTICE names that task, and the result is NULL. Works on paused and UNMONITORED schedules
-- (a manual run is the point of both) and leaves next_run_at alone. A target whose own switch is off
-- (compliance disabled, integration deleted, cost optimisation off) is an error.
--   SELECT nightshift.run_now('pipeline/42');
CREATE OR REPLACE FUNCTION nightshift.run_now(p_target text)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schedule_id bigint := nightshift.resolve_schedule(p_target);
    v_target record;
    v_task_id bigint;
BEGIN
    /* Enqueue the target's task now, unless one is in flight; return the new task's id or NULL. */
    SELECT t.kind, t.subject, t.payload, t.enabled INTO v_target
      FROM nightshift.schedule_targets AS t
     WHERE t.schedule_id = v_schedule_id;
    IF NOT v_target.enabled THEN
        RAISE EXCEPTION '% is switched off for %', v_target.kind, p_target
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'compliance needs compliance_enabled on the integration and its organization and '
                         'no deleted_at; cost analysis needs cost_optimization_enabled on the organization';
    END IF;

    INSERT INTO nightshift.tasks (kind, subject, payload, priority, schedule_id)
    VALUES (v_target.kind, v_target.subject,
            v_target.payload || jsonb_build_object('scheduled_for', now(), 'trigger', 'run_now'),
            10, v_schedule_id)
    ON CONFLICT (kind, subject) WHERE status IN ('queued', 'running') DO NOTHING
    RETURNING id INTO v_task_id;

    IF v_task_id IS NULL THEN
        RAISE NOTICE '% for % is already in flight (task %): nothing enqueued', v_target.kind, p_target,
            (SELECT string_agg(format('%s, %s', k.id, k.status), '; ')
               FROM nightshift.tasks AS k
              WHERE k.kind = v_target.kind AND k.subject = v_target.subject
                AND k.status IN ('queued', 'running'));
    END IF;
    RETURN v_task_id;
END
$$;

REVOKE EXECUTE ON FUNCTION nightshift.run_now(text) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_scheduler') THEN
        GRANT EXECUTE ON FUNCTION nightshift.run_now(text) TO nightshift_scheduler;
    END IF;
END
$$;
