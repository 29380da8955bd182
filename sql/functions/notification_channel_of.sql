-- notification_channel_of: the channel that hears about a (task kind, subject): the subject's schedule's
-- notification_channel, else the setting 'notifications.default_channel', else 'default'.
-- Used by notify_scan_health; the same rule notify_findings_changed applies.
CREATE OR REPLACE FUNCTION nightshift.notification_channel_of(p_kind text, p_subject text)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_ref record;
    v_channel text;
BEGIN
    /* the channel name notifications about p_subject's p_kind tasks go to */
    v_ref := nightshift.parse_subject(p_subject);
    SELECT s.notification_channel INTO v_channel
      FROM nightshift.schedules AS s
     WHERE s.kind = p_kind
       AND CASE v_ref.target_type
               WHEN 'pipeline' THEN s.pipeline_id
               WHEN 'cloud_integration' THEN s.cloud_integration_id
               WHEN 'organization' THEN s.organization_id
           END = v_ref.target_id;
    RETURN coalesce(nullif(v_channel, ''),
                    (SELECT value FROM nightshift.settings WHERE key = 'notifications.default_channel'),
                    'default');
END
$$;
