-- notify_scan_health: the outbox row of a target whose scans started failing, or recovered.
-- Called in the result transaction after the scan row is stored. Today an ERROR scan resolves nothing
-- and changes no findings, so without this a broken pipeline (expired credentials, a deleted
-- repository) would go silent. One message when the streak starts, one when it ends, nothing in
-- between: a pipeline that errors every night tells its team once.
--
-- Template 'scan-failing': this scan is ERROR and the previous scan of the same (kind, subject) was
-- not (or there was none). Template 'scan-recovered': this scan is not ERROR and the previous one was.
-- Payload: {subject, target, task_kind, scan_id, scan_status, previous_status, error,
--           failing_since, failed_scans}
--   error          this scan's error (failing) or the last failed scan's (recovered), first 500 chars
--   failing_since  when the first ERROR scan of the streak finished
--   failed_scans   how many ERROR scans the streak holds so far
-- Returns the notification id, or NULL when the scan changed nothing.
CREATE OR REPLACE FUNCTION nightshift.notify_scan_health(p_scan_id bigint)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_scan nightshift.scans;
    v_previous nightshift.scan_status;
    v_template text;
    v_streak record;
    v_id bigint;
BEGIN
    /* insert a scan-failing or scan-recovered notification when this scan starts or ends a streak of ERRORs */
    SELECT * INTO STRICT v_scan FROM nightshift.scans WHERE id = p_scan_id;
    -- scans of one (kind, subject) never overlap (one task in flight), so id order is their order
    SELECT s.status INTO v_previous
      FROM nightshift.scans AS s
     WHERE s.subject = v_scan.subject AND s.kind = v_scan.kind AND s.id < v_scan.id
     ORDER BY s.id DESC
     LIMIT 1;

    IF v_scan.status = 'ERROR' AND v_previous IS DISTINCT FROM 'ERROR' THEN
        v_template := 'scan-failing';
    ELSIF v_scan.status <> 'ERROR' AND v_previous = 'ERROR' THEN
        v_template := 'scan-recovered';
    ELSE
        RETURN NULL;
    END IF;

    -- the streak: ERROR scans after the last good one (this scan included when it is the ERROR)
    SELECT min(s.finished_at) AS since, count(*) AS scans,
           (array_agg(s.error ORDER BY s.id DESC))[1] AS last_error
      INTO v_streak
      FROM nightshift.scans AS s
     WHERE s.subject = v_scan.subject AND s.kind = v_scan.kind AND s.status = 'ERROR'
       AND s.id <= v_scan.id
       AND s.id > coalesce((SELECT max(g.id) FROM nightshift.scans AS g
                             WHERE g.subject = v_scan.subject AND g.kind = v_scan.kind
                               AND g.status <> 'ERROR' AND g.id < v_scan.id), 0);

    INSERT INTO nightshift.notifications (channel, template, payload, scan_id)
    VALUES (nightshift.notification_channel_of(v_scan.kind, v_scan.subject, v_scan.task_id), v_template,
            jsonb_build_object(
                'subject', v_scan.subject,
                'target', (SELECT t.label FROM nightshift.subjects AS t WHERE t.subject = v_scan.subject),
                'task_kind', v_scan.kind,
                'scan_id', v_scan.id,
                'scan_status', v_scan.status,
                'previous_status', v_previous,
                'error', left(coalesce(v_streak.last_error, ''), 500),
                'failing_since', v_streak.since,
                'failed_scans', v_streak.scans),
            v_scan.id)
    RETURNING notifications.id INTO v_id;
    RETURN v_id;
END
$$;
