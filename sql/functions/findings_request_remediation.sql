-- request_remediation: after a successful scan, hand its subject's open findings of the kinds that
-- p_kind fixes (task_kinds.remediates) to a p_kind task, which opens a pull request. Called by
-- record_result when the scanning kind names a remediation_kind and the task's payload asked for it.
--
-- Opt-in at every level (DESIGN.md), checked here against the live rows, not the payload's snapshot:
-- the scanning schedule's auto_create_pr, the organization's auto_remediate master switch and, for a
-- pipeline, its repository's auto_remediate must all be on now.
--
-- Only findings no remediation is already working on (pending, running, or with a PR open) are handed
-- over, so a target that keeps drifting the same way does not get a new pull request every night.
-- The task and its nightshift.remediations row are written in the caller's (the result) transaction.
CREATE OR REPLACE FUNCTION nightshift.request_remediation(
    p_scan_id bigint,
    p_subject text,
    p_kind text
)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_ref record;
    v_scan_kind text := (SELECT s.kind FROM nightshift.scans AS s WHERE s.id = p_scan_id);
    v_allowed boolean;
    v_ids bigint[];
    v_task_id bigint;
BEGIN
    /* the id of the remediation task enqueued, or NULL when none is due or allowed */
    v_ref := nightshift.parse_subject(p_subject);
    SELECT sc.auto_create_pr AND o.auto_remediate AND coalesce(r.auto_remediate, true) INTO v_allowed
      FROM nightshift.subjects AS t
      JOIN nightshift.organizations AS o ON o.id = t.organization_id
      CROSS JOIN nightshift.subject_schedule(p_subject, v_scan_kind) AS sc
      LEFT JOIN nightshift.pipelines AS p ON v_ref.target_type = 'pipeline' AND p.id = v_ref.target_id
      LEFT JOIN nightshift.repositories AS r ON r.id = p.repository_id
     WHERE t.subject = p_subject;
    IF v_allowed IS NOT TRUE THEN
        RETURN NULL;
    END IF;

    SELECT array_agg(f.id ORDER BY f.id) INTO v_ids
      FROM nightshift.findings AS f
     WHERE f.subject = p_subject
       AND f.kind = ANY (coalesce((SELECT k.remediates FROM nightshift.task_kinds AS k WHERE k.kind = p_kind),
                                  '{}'))
       AND f.status = 'OPEN'
       AND NOT EXISTS (SELECT FROM nightshift.remediations AS m
                        WHERE m.subject = p_subject
                          AND m.status IN ('pending', 'running', 'pr_opened')
                          AND f.id = ANY (m.finding_ids));
    IF v_ids IS NULL THEN
        RETURN NULL;
    END IF;

    v_task_id := nightshift.enqueue(p_kind, p_subject,
                                    jsonb_build_object('scan_id', p_scan_id, 'finding_ids', to_jsonb(v_ids)));
    IF v_task_id IS NOT NULL THEN  -- NULL: one is already queued or running; the next scan tries again
        INSERT INTO nightshift.remediations (subject, finding_ids, task_id)
        VALUES (p_subject, v_ids, v_task_id);
    END IF;
    RETURN v_task_id;
END
$$;
