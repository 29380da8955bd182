-- Digests: a row for a channel set to digest = 'hourly' or 'daily' is not due until the end of the
-- current period (UTC), so the sender claims all of that period's rows together and sends them as
-- one message. Rows of other channels are due at once (next_attempt_at's default, now()).
CREATE OR REPLACE FUNCTION nightshift.notifications_schedule()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_digest text;
BEGIN
    /* hold a digest channel's new outbox row until the end of its period */
    SELECT c.digest INTO v_digest
      FROM nightshift.notification_channels AS c
     WHERE c.name = NEW.channel AND c.is_active;
    IF v_digest = 'hourly' THEN
        NEW.next_attempt_at := pg_catalog.date_trunc('hour', pg_catalog.now(), 'UTC') + interval '1 hour';
    ELSIF v_digest = 'daily' THEN
        NEW.next_attempt_at := pg_catalog.date_trunc('day', pg_catalog.now(), 'UTC') + interval '1 day';
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS notifications_schedule ON nightshift.notifications;
CREATE TRIGGER notifications_schedule
    BEFORE INSERT ON nightshift.notifications
    FOR EACH ROW
    EXECUTE FUNCTION nightshift.notifications_schedule();
