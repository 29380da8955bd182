-- notify_findings_changed: the outbox row of a scan that changed its subject's set of open findings.
-- Written in the result transaction (DESIGN.md rule 6) and only on a change, never once per scan:
-- a pipeline that drifts the same way every night tells its team once.
--
-- Channel: the one the scan's task payload names (copied from its schedule when enqueued), else the
-- subject's schedule's notification_channel, else the setting 'notifications.default_channel'.
-- Template: the task kind's notification_template (nightshift.task_kinds), else 'findings-changed'.
-- Payload (JSON built here, prose rendered by the notifier):
--   {subject, target, task_kind, scan_id, scan_status,
--    counts: {new, reopened, resolved, unsuppressed, suppressed, open},
--    new: [summary...], reopened: [...], resolved: [...], unsuppressed: [...], suppressed: [...],
--    truncated: bool}
-- Each list holds at most 'notifications.max_findings' summaries (nightshift.finding_summary: no values).
CREATE OR REPLACE FUNCTION nightshift.notify_findings_changed(
    p_scan_id bigint,
    p_new bigint[],
    p_reopened bigint[],
    p_resolved bigint[],
    p_unsuppressed bigint[],
    p_suppressed bigint[]
)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_scan nightshift.scans;
    v_channel text;
    v_limit integer;
    v_payload jsonb;
    v_id bigint;
    v_kinds text[];
BEGIN
    /* insert one pending notification describing the transitions; return its id */
    SELECT * INTO STRICT v_scan FROM nightshift.scans WHERE id = p_scan_id;
    -- once, not in the count's filter: a function with SET is called per row (2 s for 100,000 findings)
    v_kinds := nightshift.finding_kinds(v_scan.kind);

    v_channel := nightshift.notification_channel_of(v_scan.kind, v_scan.subject, v_scan.task_id);
    v_limit := coalesce((SELECT value::integer FROM nightshift.settings
                          WHERE key = 'notifications.max_findings'), 50);

    v_payload := jsonb_build_object(
        'subject', v_scan.subject,
        'target', (SELECT t.label FROM nightshift.subjects AS t WHERE t.subject = v_scan.subject),
        'task_kind', v_scan.kind,
        'scan_id', v_scan.id,
        'scan_status', v_scan.status,
        'counts', jsonb_build_object(
            'new', cardinality(p_new),
            'reopened', cardinality(p_reopened),
            'resolved', cardinality(p_resolved),
            'unsuppressed', cardinality(p_unsuppressed),
            'suppressed', cardinality(p_suppressed),
            'open', (SELECT count(*) FROM nightshift.findings AS f
                      WHERE f.subject = v_scan.subject AND f.status = 'OPEN'
                        AND f.kind = ANY (v_kinds))),
        'truncated', greatest(cardinality(p_new), cardinality(p_reopened), cardinality(p_resolved),
                              cardinality(p_unsuppressed), cardinality(p_suppressed)) > v_limit);
    SELECT v_payload || jsonb_object_agg(l.name, l.items) INTO v_payload
      FROM (SELECT lists.name,
                   -- the first v_limit ids (a top-N sort of the array), then one key lookup each: a
                   -- scan of 100,000 new findings does not read them all to name 50
                   coalesce((SELECT jsonb_agg(nightshift.finding_summary(f) ORDER BY f.resource_address, f.id)
                               FROM (SELECT i.id FROM unnest(lists.ids) AS i(id)
                                      ORDER BY i.id LIMIT v_limit) AS pick
                               JOIN nightshift.findings AS f ON f.id = pick.id),
                            '[]') AS items
              FROM (VALUES ('new', p_new), ('reopened', p_reopened), ('resolved', p_resolved),
                           ('unsuppressed', p_unsuppressed), ('suppressed', p_suppressed))
                   AS lists(name, ids)) AS l;

    INSERT INTO nightshift.notifications (channel, template, payload, scan_id)
    VALUES (v_channel,
            coalesce((SELECT k.notification_template FROM nightshift.task_kinds AS k WHERE k.kind = v_scan.kind),
                     'findings-changed'),
            v_payload, p_scan_id)
    RETURNING notifications.id INTO v_id;
    RETURN v_id;
END
$$;
