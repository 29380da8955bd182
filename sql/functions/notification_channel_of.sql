-- notification_channel_of: the channel that hears about a (task kind, subject): the channel the task's
-- payload names (copied from its schedule when it was enqueued), else the subject's schedule's
-- notification_channel now, else the setting 'notifications.default_channel', else 'default'.
-- The one rule for every outbox row written in the result transaction (notify_findings_changed,
-- notify_scan_health).
CREATE OR REPLACE FUNCTION nightshift.notification_channel_of(p_kind text, p_subject text,
                                                             p_task_id bigint DEFAULT NULL)
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    /* the channel name notifications about p_subject's p_kind tasks go to */
    SELECT coalesce(
        nullif((SELECT t.payload ->> 'notification_channel' FROM nightshift.tasks AS t WHERE t.id = p_task_id),
               ''),
        nullif((nightshift.subject_schedule(p_subject, p_kind)).notification_channel, ''),
        (SELECT st.value FROM nightshift.settings AS st WHERE st.key = 'notifications.default_channel'),
        'default')
$$;
