-- Settings of findings and their notifications. Seeded once: an operator's UPDATE is never overwritten.
INSERT INTO nightshift.settings (key, value, description) VALUES
    ('notifications.default_channel', 'default',
     'channel of findings notifications for targets whose schedule names none'),
    ('notifications.max_findings', '50',
     'a findings-changed notification lists at most this many findings per transition (new, resolved...)')
ON CONFLICT (key) DO NOTHING;
