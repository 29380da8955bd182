-- Settings of the notification sender. Seeded once: an operator's UPDATE is never overwritten.
INSERT INTO nightshift.settings (key, value, description) VALUES
    ('notifications.max_attempts', '10',
     'delivery attempts of an outbox row before it is dead (a 4xx that cannot succeed fails at once)'),
    ('notifications.retry_base_seconds', '15',
     'first retry delay of a failed delivery; doubles each attempt, plus up to 50% jitter'),
    ('notifications.retry_max_seconds', '3600', 'longest retry delay of a failed delivery'),
    ('notifications.scan_url', '',
     'link to a scan in messages (a Slack button), {scan_id} and {subject} replaced; empty: no link')
ON CONFLICT (key) DO NOTHING;
