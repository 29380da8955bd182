-- record_remediation: what a remediation agent reported, stored on the remediations row of its task
-- (never on one the document names: the task decides), in the result transaction. Called by
-- record_result for a result with a "remediation" section:
--   {"status": "pr_opened" | "failed", "reason": "...", "branch": "...", "pr_url": "...",
--    "pr_number": 12, "commit": "<sha>", "created": true, "title": "...",
--    "fixes": [{"finding_id": 1, "address": "...", "fix": "adopt" | "revert", "why": "..."}]}
-- A pull request opened (created) writes one outbox row, template 'remediation-ready', to the channel
-- of the subject's drift notifications. A failed remediation leaves its findings OPEN.
CREATE OR REPLACE FUNCTION nightshift.record_remediation(p_task_id bigint, p_doc jsonb)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_status text := p_doc ->> 'status';
    v_row nightshift.remediations;
    v_scan_kind text;
BEGIN
    /* store the agent's remediation report; returns the remediations row id (NULL: the task has none) */
    IF jsonb_typeof(p_doc) IS DISTINCT FROM 'object' OR v_status IS NULL
       OR v_status NOT IN ('pr_opened', 'failed') THEN
        RAISE EXCEPTION 'a remediation result needs "status": "pr_opened" or "failed", got %',
                        left(coalesce(p_doc ->> 'status', p_doc::text, 'null'), 80)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_status = 'pr_opened' AND nullif(p_doc ->> 'branch', '') IS NULL THEN
        RAISE EXCEPTION 'a remediation with a pull request needs its "branch"'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    UPDATE nightshift.remediations AS m
       SET status = v_status,
           reason = CASE WHEN v_status = 'failed'
                         THEN left(coalesce(nullif(p_doc ->> 'reason', ''), 'the agent gave no reason'), 4000) END,
           branch = coalesce(nullif(p_doc ->> 'branch', ''), m.branch),
           pr_url = coalesce(nullif(p_doc ->> 'pr_url', ''), m.pr_url),
           pr_number = coalesce((p_doc ->> 'pr_number')::integer, m.pr_number),
           commit_sha = coalesce(nullif(p_doc ->> 'commit', ''), m.commit_sha),
           fixes = coalesce(CASE WHEN jsonb_typeof(p_doc -> 'fixes') = 'array' THEN p_doc -> 'fixes' END, m.fixes),
           pr_opened_at = CASE WHEN v_status = 'pr_opened' THEN coalesce(m.pr_opened_at, now()) END,
           finished_at = CASE WHEN v_status = 'failed' THEN now() END,
           updated_at = now()
     WHERE m.task_id = p_task_id AND m.status IN ('pending', 'running')
    RETURNING * INTO v_row;
    IF v_row.id IS NULL THEN
        RETURN NULL;
    END IF;
    IF v_status = 'pr_opened' AND v_row.pr_number IS NULL THEN
        -- the local forge numbers its pull request in this transaction (apply_forge_changes, just before)
        UPDATE nightshift.remediations AS m SET pr_number = pr.number
          FROM nightshift.pull_requests AS pr
          JOIN nightshift.pipelines AS p ON p.repository_id = pr.repository_id
         WHERE m.id = v_row.id AND m.subject = 'pipeline/' || p.id
           AND pr.head_ref = v_row.branch AND pr.state = 'open'
        RETURNING m.* INTO v_row;
        IF v_row.id IS NULL THEN
            SELECT * INTO v_row FROM nightshift.remediations AS m WHERE m.task_id = p_task_id;
        END IF;
    END IF;

    IF v_status = 'pr_opened' AND coalesce((p_doc ->> 'created')::boolean, true) THEN
        v_scan_kind := coalesce((SELECT s.kind FROM nightshift.scans AS s WHERE s.id = v_row.scan_id), 'drift-scan');
        INSERT INTO nightshift.notifications (channel, template, payload, scan_id)
        VALUES (nightshift.notification_channel_of(v_scan_kind, v_row.subject),
                'remediation-ready',
                jsonb_build_object(
                    'subject', v_row.subject,
                    'target', (SELECT t.label FROM nightshift.subjects AS t WHERE t.subject = v_row.subject),
                    'remediation_id', v_row.id,
                    'title', left(coalesce(p_doc ->> 'title', 'Fix drift of ' || v_row.subject), 300),
                    'branch', v_row.branch,
                    'pr_url', v_row.pr_url,
                    'finding_count', cardinality(v_row.finding_ids),
                    'fixes', (SELECT jsonb_object_agg(x.fix, x.n) FROM (
                                  SELECT e ->> 'fix' AS fix, count(*) AS n
                                    FROM jsonb_array_elements(v_row.fixes) AS e
                                   WHERE e ->> 'fix' IS NOT NULL GROUP BY 1) AS x)),
                v_row.scan_id);
    END IF;
    RETURN v_row.id;
END
$$;
