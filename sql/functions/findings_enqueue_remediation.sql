-- enqueue_drift_remediation: after a drift scan, hand its open drift to the drift-remediation agent,
-- which opens a pull request. Opt-in at every level (DESIGN.md): the schedule's auto_create_pr, the
-- repository's auto_remediate and the organization's auto_remediate master switch must all be on.
--
-- Only findings no remediation is already working on (pending, running, or with a PR open) are handed
-- over, so a pipeline that keeps drifting the same way does not get a new pull request every night.
-- The task and its nightshift.remediations row are written in the caller's (the result) transaction.
CREATE OR REPLACE FUNCTION nightshift.enqueue_drift_remediation(p_scan_id bigint, p_subject text)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_ref record;
    v_allowed boolean;
    v_ids bigint[];
    v_task_id bigint;
BEGIN
    /* the id of the drift-remediation task enqueued, or NULL when none is due or allowed */
    v_ref := nightshift.parse_subject(p_subject);
    IF v_ref.target_type IS DISTINCT FROM 'pipeline' THEN
        RETURN NULL;
    END IF;

    SELECT s.auto_create_pr AND r.auto_remediate AND o.auto_remediate INTO v_allowed
      FROM nightshift.pipelines AS p
      JOIN nightshift.repositories AS r ON r.id = p.repository_id
      JOIN nightshift.organizations AS o ON o.id = r.organization_id
      JOIN nightshift.schedules AS s ON s.pipeline_id = p.id AND s.kind = 'drift-scan'
     WHERE p.id = v_ref.target_id;
    IF v_allowed IS NOT TRUE THEN
        RETURN NULL;
    END IF;

    SELECT array_agg(f.id ORDER BY f.id) INTO v_ids
      FROM nightshift.findings AS f
     WHERE f.subject = p_subject
       AND f.kind = 'drift'
       AND f.status = 'OPEN'
       AND NOT EXISTS (SELECT FROM nightshift.remediations AS m
                        WHERE m.subject = p_subject
                          AND m.status IN ('pending', 'running', 'pr_opened')
                          AND f.id = ANY (m.finding_ids));
    IF v_ids IS NULL THEN
        RETURN NULL;
    END IF;

    v_task_id := nightshift.enqueue('drift-remediation', p_subject,
                                    jsonb_build_object('scan_id', p_scan_id, 'finding_ids', to_jsonb(v_ids)));
    IF v_task_id IS NOT NULL THEN  -- NULL: one is already queued or running; the next scan tries again
        INSERT INTO nightshift.remediations (subject, finding_ids, task_id)
        VALUES (p_subject, v_ids, v_task_id);
    END IF;
    RETURN v_task_id;
END
$$;
