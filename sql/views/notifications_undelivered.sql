-- nightshift.notifications_undelivered: outbox rows that will not be sent without an operator:
-- 'failed' (the endpoint refused for good: 404 channel_not_found, 410, a malformed URL, a template
-- that does not render) and 'dead' (out of attempts). `nightshift notify retry ID` (or
-- SELECT nightshift.retry_notification(ID)) sends one again.
CREATE OR REPLACE VIEW nightshift.notifications_undelivered AS
SELECT n.id, n.channel, c.kind AS channel_kind, n.template, n.status, n.attempts, n.last_error,
       n.response, n.payload ->> 'subject' AS subject, n.scan_id, n.created_at
  FROM nightshift.notifications AS n
  LEFT JOIN nightshift.notification_channels AS c ON c.name = n.channel
 WHERE n.status IN ('failed', 'dead');

COMMENT ON VIEW nightshift.notifications_undelivered IS
    'failed and dead notifications with their errors; retry with nightshift.retry_notification(id)';

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_reader') THEN
        GRANT SELECT ON nightshift.notifications_undelivered TO nightshift_reader;
    END IF;
END
$$;
