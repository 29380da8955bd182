-- request_remediation: after a successful scan, hand its subject's open findings of the kinds that
-- p_kind fixes (task_kinds.remediates) to a p_kind task, which opens a pull request. Called by
-- record_result when the scanning kind names a remediation_kind and the task's payload asked for it.
--
-- Opt-in at every level (DESIGN.md), checked here against the live rows, not the payload's snapshot:
-- the scanning schedule's auto_create_pr, the organization's auto_remediate master switch and, for a
-- pipeline, its repository's auto_remediate must all be on now. With one off, nothing happens.
--
-- Guard rails, in this order; a refusal is the subject's one standing 'refused' remediations row,
-- updated in place (finding_ids, reason), so `nightshift remediations list` shows why:
--   1. a finding that deletes or replaces a resource of a stateful type (stateful_resource_types) is
--      left out unless the repository has remediate_stateful; the others go ahead;
--   2. a freeze window (remediation_freezes) covering the repository or organization: nothing opened;
--   3. the repository's and the organization's remediation_daily_pr_limit: pull requests opened (or
--      about to be) in the last 24 hours;
--   4. one open remediation (pending, running, pr_opened, merged) per subject, so per finding: while
--      one is pending or running, or merged and awaiting verification, nothing; while its pull request
--      is open and the scan sees a different drift (other findings or other values: findings_digest),
--      the same remediation is enqueued again and the agent updates its branch and pull request.
-- A pending remediation whose task ended without recording it (crashed, dead, cancelled) is failed
-- first, with the task's error, so it does not hold the subject forever.
--
-- The task's payload carries all the agent needs (agents never see the database, no secret value):
-- remediation_id, branch (nightshift/drift-<pipeline>-<id>), base, expected_head (the branch's head
-- when updating), the findings with their masked attributes, the forge (nightshift.forge_of_repository:
-- a token's reference, never its value). Returns the task id, or NULL.
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
    v_org nightshift.organizations;
    v_repo nightshift.repositories;
    v_pipeline nightshift.pipelines;
    v_candidates bigint[];
    v_stateful bigint[];
    v_ids bigint[];
    v_open nightshift.remediations;
    v_reason text;
    v_digest text;
    v_id bigint;
    v_branch text;
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
    SELECT o.* INTO v_org FROM nightshift.subjects AS t
      JOIN nightshift.organizations AS o ON o.id = t.organization_id WHERE t.subject = p_subject;
    IF v_ref.target_type = 'pipeline' THEN
        SELECT * INTO v_pipeline FROM nightshift.pipelines AS p WHERE p.id = v_ref.target_id;
        SELECT * INTO v_repo FROM nightshift.repositories AS r WHERE r.id = v_pipeline.repository_id;
    END IF;

    -- a remediation whose task ended without a result must not hold the subject
    UPDATE nightshift.remediations AS m
       SET status = 'failed', finished_at = now(), updated_at = now(),
           reason = 'its task ' || coalesce((SELECT t.status::text || coalesce(': ' || t.last_error, '')
                                               FROM nightshift.tasks AS t WHERE t.id = m.task_id), 'is gone')
                    || ' (no remediation was recorded)'
     WHERE m.subject = p_subject AND m.status IN ('pending', 'running')
       AND NOT EXISTS (SELECT FROM nightshift.tasks AS t
                        WHERE t.id = m.task_id AND t.status IN ('queued', 'running'));

    SELECT * INTO v_open FROM nightshift.remediations AS m
     WHERE m.subject = p_subject AND m.status IN ('pending', 'running', 'pr_opened', 'merged');
    IF v_open.status IN ('pending', 'running', 'merged') THEN
        RETURN NULL;  -- at work, or merged and waiting for a scan to verify it
    END IF;

    SELECT array_agg(f.id ORDER BY f.id),
           array_agg(f.id ORDER BY f.id)
               FILTER (WHERE f.change_type IN ('delete', 'replace')
                         AND EXISTS (SELECT FROM nightshift.stateful_resource_types AS st
                                      WHERE st.type = f.resource_type)
                         AND NOT coalesce(v_repo.remediate_stateful, false))
      INTO v_candidates, v_stateful
      FROM nightshift.findings AS f
     WHERE f.subject = p_subject
       AND f.kind = ANY (coalesce((SELECT k.remediates FROM nightshift.task_kinds AS k WHERE k.kind = p_kind),
                                  '{}'))
       AND f.status = 'OPEN';
    IF v_candidates IS NULL THEN
        RETURN NULL;
    END IF;
    v_ids := ARRAY(SELECT unnest(v_candidates) EXCEPT SELECT unnest(coalesce(v_stateful, '{}')) ORDER BY 1);

    IF v_stateful IS NOT NULL THEN
        PERFORM nightshift.refuse_remediation(p_subject, p_scan_id, v_stateful,
            'deleted or replaced resources of a stateful type are not remediated unless the repository '
            || 'allows it (repositories.remediate_stateful): '
            || (SELECT string_agg(f.resource_address || ' (' || f.change_type || ')', ', '
                                  ORDER BY f.resource_address)
                  FROM nightshift.findings AS f WHERE f.id = ANY (v_stateful)));
    END IF;
    IF cardinality(v_ids) = 0 THEN
        RETURN NULL;
    END IF;

    -- what the remediation is asked to fix: the same findings with the same values need no new run
    SELECT md5(jsonb_agg(jsonb_build_array(f.fingerprint, f.details -> 'attributes') ORDER BY f.id)::text)
      INTO v_digest FROM nightshift.findings AS f WHERE f.id = ANY (v_ids);
    IF v_open.id IS NOT NULL AND v_open.findings_digest = v_digest THEN
        RETURN NULL;
    END IF;

    v_reason := nightshift.remediation_refusal(v_org, v_repo, v_open.id IS NULL);
    IF v_reason IS NOT NULL THEN
        PERFORM nightshift.refuse_remediation(p_subject, p_scan_id, v_ids, v_reason);
        RETURN NULL;
    END IF;

    IF v_open.id IS NULL THEN
        INSERT INTO nightshift.remediations (subject, finding_ids, scan_id, findings_digest)
        VALUES (p_subject, v_ids, p_scan_id, v_digest)
        RETURNING id INTO v_id;
        v_branch := 'nightshift/drift-'
                    || coalesce(nullif(trim(BOTH '-' FROM regexp_replace(lower(v_pipeline.name), '[^a-z0-9]+', '-',
                                                                           'g')), ''),
                                v_ref.target_type || '-' || v_ref.target_id)
                    || '-' || v_id;
    ELSE
        v_id := v_open.id;
        v_branch := v_open.branch;
    END IF;

    v_task_id := nightshift.enqueue(p_kind, p_subject, jsonb_build_object(
        'remediation_id', v_id,
        'scan_id', p_scan_id,
        'finding_ids', to_jsonb(v_ids),
        'branch', v_branch,
        'base', v_repo.default_branch,
        'update', v_open.id IS NOT NULL,
        'expected_head', v_open.commit_sha,
        'pr_number', v_open.pr_number,
        'pipeline', v_pipeline.name,
        'forge', nightshift.forge_of_repository(v_repo.id),
        'findings', (SELECT jsonb_agg(jsonb_build_object(
                         'id', f.id, 'fingerprint', f.fingerprint, 'address', f.resource_address,
                         'module', f.module, 'type', f.resource_type, 'change', f.change_type,
                         'severity', f.severity, 'provider_id', f.provider_id,
                         'first_seen', f.first_seen, 'last_seen', f.last_seen,
                         'attributes', coalesce(f.details -> 'attributes', '[]'))
                         ORDER BY f.resource_address, f.id)
                       FROM nightshift.findings AS f WHERE f.id = ANY (v_ids))));
    IF v_task_id IS NULL THEN  -- one is already queued or running; the next scan tries again
        IF v_open.id IS NULL THEN
            DELETE FROM nightshift.remediations WHERE id = v_id;
        END IF;
        RETURN NULL;
    END IF;
    UPDATE nightshift.remediations AS m
       SET task_id = v_task_id, status = 'pending', branch = v_branch, finding_ids = v_ids, scan_id = p_scan_id,
           findings_digest = v_digest, reason = NULL, updated_at = now()
     WHERE m.id = v_id;
    RETURN v_task_id;
END
$$;
