-- Wake-up call for notification senders: one pg_notify per INSERT statement on nightshift.notifications.
--
-- Channel:  nightshift_notifications
-- Payload:  {"count": 3, "next_attempt_at": "2026-11-28T20:00:00+00:00"}
--           count            how many outbox rows the statement inserted
--           next_attempt_at  the earliest among them (a digest channel's rows wait for the period's end)
--
-- Only a hint, as for tasks (DESIGN.md rule 5): sent at commit, so a message leaves within a moment
-- of its scan's transaction; senders still poll, so a lost notification costs latency, never a message.
CREATE OR REPLACE FUNCTION nightshift.notifications_notify()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_payload jsonb;
BEGIN
    /* Send one small notification summarising the rows a statement inserted into nightshift.notifications. */
    SELECT pg_catalog.jsonb_build_object('count', pg_catalog.count(*),
                                         'next_attempt_at', pg_catalog.min(n.next_attempt_at))
      INTO v_payload
      FROM new_notifications AS n
    HAVING pg_catalog.count(*) > 0;
    IF v_payload IS NOT NULL THEN
        PERFORM pg_catalog.pg_notify('nightshift_notifications', v_payload::text);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS notifications_notify ON nightshift.notifications;
CREATE TRIGGER notifications_notify
    AFTER INSERT ON nightshift.notifications
    REFERENCING NEW TABLE AS new_notifications
    FOR EACH STATEMENT
    EXECUTE FUNCTION nightshift.notifications_notify();
