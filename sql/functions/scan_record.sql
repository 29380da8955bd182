-- record_scan: store one scan's result, all or nothing, in the caller's transaction (DESIGN.md rule 6).
--
--   1. complete the task, fenced by its attempt (nightshift.complete_task). A stale holder (its lease
--      expired, the task was re-claimed or cancelled) stores nothing and gets NULL; a replay of a result
--      that was already stored for this task and attempt stores nothing and gets that scan's id.
--   2. the scans row: kind and subject from the task, keyed by (task_id, attempt).
--   3. the findings, upserted by (subject, fingerprint) in one statement (nightshift.upsert_findings):
--      new -> OPEN, seen again -> counted, resolved and seen again -> reopened, covered by an active
--      suppression -> SUPPRESSED.
--   4. unless the scan is an ERROR: the findings of this subject and of this task's kinds that the scan
--      did not see are RESOLVED (nightshift.resolve_absent_findings). A scan that failed to look
--      resolves nothing.
--   5. drift scans: a drift-remediation task when every opt-in switch is on
--      (nightshift.enqueue_drift_remediation).
--   6. an outbox row, only when the set of open findings changed (nightshift.notify_findings_changed).
--
-- p_status is a nightshift.scan_status (CLEAN, DRIFTED, FAILED_CHECKS, ERROR); p_findings a JSON array
-- (see upsert_findings); p_summary gets a `findings` object with the transition counts added.
CREATE OR REPLACE FUNCTION nightshift.record_scan(
    p_task_id bigint,
    p_attempt integer,
    p_status text,
    p_summary jsonb,
    p_findings jsonb,
    p_artifacts jsonb,
    p_error text,
    p_started_at timestamptz
)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_task nightshift.tasks;
    v_scan_id bigint;
    v_seen integer;
    v_new bigint[];
    v_reopened bigint[];
    v_unsuppressed bigint[];
    v_suppressed bigint[];
    v_resolved bigint[] := '{}';
    v_kinds text[];
BEGIN
    /* complete task p_task_id (attempt p_attempt) and store its scan; the scan id, NULL for a stale holder */
    IF NOT nightshift.complete_task(p_task_id, p_attempt) THEN
        SELECT s.id INTO v_scan_id FROM nightshift.scans AS s
         WHERE s.task_id = p_task_id AND s.attempt = p_attempt;
        RETURN v_scan_id;
    END IF;
    SELECT * INTO STRICT v_task FROM nightshift.tasks WHERE id = p_task_id;

    INSERT INTO nightshift.scans (task_id, attempt, kind, subject, status, summary, error, artifacts,
                                  started_at)
    VALUES (p_task_id, p_attempt, v_task.kind, v_task.subject, p_status::nightshift.scan_status,
            coalesce(p_summary, '{}'), p_error, coalesce(p_artifacts, '{}'), p_started_at)
    ON CONFLICT ON CONSTRAINT scans_task_attempt_key DO NOTHING
    RETURNING id INTO v_scan_id;
    IF v_scan_id IS NULL THEN  -- cannot happen after complete_task succeeded, but never store twice
        SELECT s.id INTO v_scan_id FROM nightshift.scans AS s
         WHERE s.task_id = p_task_id AND s.attempt = p_attempt;
        RETURN v_scan_id;
    END IF;

    SELECT count(*),
           coalesce(array_agg(u.id) FILTER (WHERE u.status = 'OPEN' AND u.previous IS NULL), '{}'),
           coalesce(array_agg(u.id) FILTER (WHERE u.status = 'OPEN' AND u.previous = 'RESOLVED'), '{}'),
           coalesce(array_agg(u.id) FILTER (WHERE u.status = 'OPEN' AND u.previous = 'SUPPRESSED'), '{}'),
           coalesce(array_agg(u.id) FILTER (WHERE u.status = 'SUPPRESSED' AND u.previous = 'OPEN'), '{}')
      INTO v_seen, v_new, v_reopened, v_unsuppressed, v_suppressed
      FROM nightshift.upsert_findings(v_scan_id, v_task.subject, coalesce(p_findings, '[]')) AS u;

    IF p_status <> 'ERROR' THEN
        -- the kinds this task owns, plus any it reported (a scanner not yet listed in finding_kinds)
        v_kinds := nightshift.finding_kinds(v_task.kind)
                || ARRAY(SELECT DISTINCT e.doc ->> 'kind'
                           FROM jsonb_array_elements(coalesce(p_findings, '[]')) AS e(doc));
        SELECT coalesce(array_agg(r.id) FILTER (WHERE r.previous = 'OPEN'), '{}') INTO v_resolved
          FROM nightshift.resolve_absent_findings(v_scan_id, v_task.subject, v_kinds) AS r;

        IF v_task.kind = 'drift-scan' THEN
            PERFORM nightshift.enqueue_drift_remediation(v_scan_id, v_task.subject);
        END IF;
    END IF;

    UPDATE nightshift.scans
       SET summary = summary || jsonb_build_object('findings', jsonb_build_object(
               'seen', v_seen, 'new', cardinality(v_new), 'reopened', cardinality(v_reopened),
               'resolved', cardinality(v_resolved), 'unsuppressed', cardinality(v_unsuppressed),
               'suppressed', cardinality(v_suppressed)))
     WHERE id = v_scan_id;

    IF cardinality(v_new) + cardinality(v_reopened) + cardinality(v_resolved)
       + cardinality(v_unsuppressed) + cardinality(v_suppressed) > 0 THEN
        PERFORM nightshift.notify_findings_changed(v_scan_id, v_new, v_reopened, v_resolved,
                                                   v_unsuppressed, v_suppressed);
    END IF;
    RETURN v_scan_id;
END
$$;

-- SECURITY DEFINER: nobody but the roles granted below may call it
REVOKE ALL ON FUNCTION nightshift.record_scan(bigint, integer, text, jsonb, jsonb, jsonb, text, timestamptz)
    FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE
           ON FUNCTION nightshift.record_scan(bigint, integer, text, jsonb, jsonb, jsonb, text, timestamptz)
           TO nightshift_dispatcher;
    END IF;
END
$$;
