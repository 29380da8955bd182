-- record_result: the one way a finished task's result is stored, whatever its kind, all or nothing, in
-- the caller's transaction (DESIGN.md rule 6). What differs per kind is data: a nightshift.task_kinds
-- row (scan statuses, finding kinds, remediation hand-over, notification template), never a test of
-- the kind's name here.
--
-- p_result is the agent's result as JSON, every section optional:
--   {"summary": {...},                      -- kept on the task (tasks.summary), shown by `tasks show`
--    "scan": {"status": "CLEAN" | "DRIFTED" | "FAILED_CHECKS" | "ERROR",
--             "summary": {...}, "findings": [...], "artifacts": {...}, "error": "...",
--             "started_at": "2026-11-28T06:00:00Z"},
--    "remediation": {"status": "pr_opened" | "failed", ...},  -- nightshift.record_remediation
--    "merged": [{"remediation_id", "branch", "commit", "how", ...}],  -- remediations_seen_merged
--    "forge": [...]}                        -- the local forge's operations (apply_forge_changes)
--
--   1. complete the task, fenced by its attempt (nightshift.complete_task). A stale holder (its lease
--      expired, the task was re-claimed or cancelled) stores nothing: stored = false. A replay of a
--      result already stored for this task and attempt stores nothing again: stored = true, same scan.
--   1b. the local forge's operations, when there are any: pull requests opened, comments, statuses
--      (nightshift.apply_forge_changes), with the task, even without a scan.
--   2. the scan, when there is one: its status must be ERROR or one the kind lists (a kind without a
--      row, a plug-in, may use any); the scans row is keyed by (task_id, attempt); findings upserted
--      by (subject, fingerprint) (nightshift.upsert_findings). Remediation pull requests the scan saw
--      merged into the code it scanned are marked merged (nightshift.remediations_seen_merged).
--   1b. a remediation report, on the task's remediations row (nightshift.record_remediation).
--   3. unless the scan is an ERROR: the kind's findings of this subject that the scan did not see are
--      RESOLVED; when the kind hands its findings over (remediation_kind), the subject's open
--      remediations are verified or failed by this scan (nightshift.verify_remediations), and unless the task's
--      payload says no (auto_create_pr, the schedule's switch copied when it was enqueued), a
--      remediation task (nightshift.request_remediation, which checks the live opt-in switches too).
--   4. an outbox row, only when the set of open findings changed, with the kind's template, to the
--      channel the payload names (its schedule's, when enqueued) or else the subject's schedule's;
--      and one when the subject's scans start failing (ERROR) or recover (nightshift.notify_scan_health).
CREATE OR REPLACE FUNCTION nightshift.record_result(
    p_task_id bigint,
    p_attempt integer,
    p_result jsonb,
    OUT stored boolean,
    OUT scan_id bigint
)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- each pass over the findings (jsonb_array_elements) holds them all: a 100,000-finding scan is ~50 MB,
-- which at the default 4 MB went to a temporary file once per pass (bench/bench_compliance.py)
SET work_mem = '128MB'
-- Speed: a scan may hold 100,000 findings (~50 MB of JSON). No SQL statement here names p_result or the
-- findings, only plain expressions do: a statement's custom plan would copy the parameter into itself
-- as a constant, 50 MB per reference. The findings are read once, by upsert_findings, which also says
-- which kinds it saw and whether the subject had findings before (bench/bench_compliance.py).
AS $$
DECLARE
    v_task nightshift.tasks;
    v_kind nightshift.task_kinds;
    v_status nightshift.scan_status;
    v_summary jsonb := p_result -> 'summary';
    v_scan jsonb;  -- the scan's own fields, without its findings
    v_seen record;  -- upsert_findings: seen, new_ids, reopened_ids, unsuppressed_ids, suppressed_ids, kinds, known
    v_resolved bigint[] := '{}';
BEGIN
    /* complete task p_task_id (attempt p_attempt) and store its result; stored = false for a stale holder */
    IF jsonb_typeof(p_result) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'a result must be a JSON object, not %', coalesce(jsonb_typeof(p_result), 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT nightshift.complete_task(p_task_id, p_attempt) THEN
        SELECT s.id INTO scan_id FROM nightshift.scans AS s
         WHERE s.task_id = p_task_id AND s.attempt = p_attempt;
        stored := scan_id IS NOT NULL;
        RETURN;
    END IF;
    stored := true;
    UPDATE nightshift.tasks AS t SET summary = nullif(v_summary, '{}'::jsonb)
     WHERE t.id = p_task_id AND v_summary IS NOT NULL
    RETURNING * INTO v_task;
    IF v_task.id IS NULL THEN
        SELECT * INTO STRICT v_task FROM nightshift.tasks WHERE id = p_task_id;
    END IF;
    IF p_result ? 'forge' THEN  -- what the agent did on the local forge (pull requests as rows)
        PERFORM nightshift.apply_forge_changes(p_task_id, p_result -> 'forge');
    END IF;
    IF p_result ? 'remediation' THEN
        PERFORM nightshift.record_remediation(p_task_id, p_result -> 'remediation');
    END IF;
    -- no scan, or "scan": null (asked without copying the scan out of the document)
    IF NOT p_result ? 'scan' OR p_result @> '{"scan": null}' THEN
        RETURN;
    END IF;

    SELECT * INTO v_kind FROM nightshift.task_kinds AS k WHERE k.kind = v_task.kind;
    v_status := (p_result #>> '{scan,status}')::nightshift.scan_status;
    IF v_status <> 'ERROR' AND cardinality(v_kind.scan_statuses) > 0
       AND NOT v_status = ANY (v_kind.scan_statuses) THEN
        RAISE EXCEPTION 'a % scan cannot be %', v_task.kind, v_status
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'its statuses are ' || array_to_string(v_kind.scan_statuses, ', ') || ' and ERROR';
    END IF;
    v_scan := jsonb_build_object('summary', p_result #> '{scan,summary}', 'error', p_result #> '{scan,error}',
                                 'artifacts', p_result #> '{scan,artifacts}',
                                 'started_at', p_result #> '{scan,started_at}');

    INSERT INTO nightshift.scans (task_id, attempt, kind, subject, status, summary, error, artifacts,
                                  started_at)
    VALUES (p_task_id, p_attempt, v_task.kind, v_task.subject, v_status,
            coalesce(nullif(v_scan -> 'summary', 'null'::jsonb), '{}'), v_scan ->> 'error',
            coalesce(nullif(v_scan -> 'artifacts', 'null'::jsonb), '{}'),
            (v_scan ->> 'started_at')::timestamptz)
    ON CONFLICT ON CONSTRAINT scans_task_attempt_key DO NOTHING
    RETURNING id INTO scan_id;
    IF scan_id IS NULL THEN  -- cannot happen after complete_task succeeded, but never store twice
        SELECT s.id INTO scan_id FROM nightshift.scans AS s
         WHERE s.task_id = p_task_id AND s.attempt = p_attempt;
        RETURN;
    END IF;
    IF p_result ? 'merged' THEN  -- remediation pull requests the scan found merged (drift-scan)
        PERFORM nightshift.remediations_seen_merged(scan_id, p_result -> 'merged');
    END IF;
    IF v_kind.kind IS NULL OR v_kind.notification_template IS NOT NULL THEN
        PERFORM nightshift.notify_scan_health(scan_id);  -- a target whose scans start failing, or recover
    END IF;

    -- an expression, not a statement (see above); the findings are not put in a variable first
    -- (assigning one copies it)
    v_seen := nightshift.upsert_findings(scan_id, v_task.subject,
                                         coalesce(nullif(p_result #> '{scan,findings}', 'null'::jsonb), '[]'));

    -- a subject without findings before this scan has none to resolve
    IF v_status <> 'ERROR' AND v_seen.known THEN
        -- the kinds this task owns, plus any it reported (a scanner not yet listed in task_kinds)
        SELECT coalesce(array_agg(r.id) FILTER (WHERE r.previous = 'OPEN'), '{}') INTO v_resolved
          FROM nightshift.resolve_absent_findings(
                   scan_id, v_task.subject, coalesce(v_kind.finding_kinds, '{}') || v_seen.kinds) AS r;
    END IF;
    IF v_status <> 'ERROR' THEN
        -- the payload's switch is the schedule's as it was at enqueue (compliance payloads call it
        -- auto_remediate); a task enqueued by hand has none, and the live switches alone decide
        IF v_kind.remediation_kind IS NOT NULL THEN
            PERFORM nightshift.verify_remediations(scan_id);
        END IF;
        IF v_kind.remediation_kind IS NOT NULL
           AND coalesce((v_task.payload ->> 'auto_create_pr')::boolean,
                        (v_task.payload ->> 'auto_remediate')::boolean, true) THEN
            PERFORM nightshift.request_remediation(scan_id, v_task.subject, v_kind.remediation_kind);
        END IF;
    END IF;

    UPDATE nightshift.scans AS s
       SET summary = s.summary || jsonb_build_object('findings', jsonb_build_object(
               'seen', v_seen.seen, 'new', cardinality(v_seen.new_ids),
               'reopened', cardinality(v_seen.reopened_ids), 'resolved', cardinality(v_resolved),
               'unsuppressed', cardinality(v_seen.unsuppressed_ids),
               'suppressed', cardinality(v_seen.suppressed_ids)))
     WHERE s.id = scan_id;

    IF cardinality(v_seen.new_ids) + cardinality(v_seen.reopened_ids) + cardinality(v_resolved)
       + cardinality(v_seen.unsuppressed_ids) + cardinality(v_seen.suppressed_ids) > 0
       AND (v_kind.kind IS NULL OR v_kind.notification_template IS NOT NULL) THEN
        PERFORM nightshift.notify_findings_changed(scan_id, v_seen.new_ids, v_seen.reopened_ids, v_resolved,
                                                   v_seen.unsuppressed_ids, v_seen.suppressed_ids);
    END IF;
END
$$;

-- SECURITY DEFINER: nobody but the roles granted below may call it
REVOKE ALL ON FUNCTION nightshift.record_result(bigint, integer, jsonb) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.record_result(bigint, integer, jsonb) TO nightshift_dispatcher;
    END IF;
END
$$;
