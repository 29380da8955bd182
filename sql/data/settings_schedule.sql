-- Settings of scheduling and maintenance. Seeded once: an operator's UPDATE is never overwritten.
-- Intervals are PostgreSQL interval text ('5 minutes', '14 days').
INSERT INTO nightshift.settings (key, value, description) VALUES
    ('schedule.stagger.drift-scan', '5 minutes',
     'drift-scan tasks that fall due together get run_after spread evenly over this window'),
    ('schedule.stagger.compliance-scan', '15 minutes',
     'compliance-scan tasks that fall due together get run_after spread evenly over this window'),
    ('schedule.stagger.cost-analysis', '15 minutes',
     'cost-analysis tasks that fall due together get run_after spread evenly over this window'),
    ('schedule.batch_size', '100000',
     'enqueue_due enqueues at most this many due targets per kind and call (oldest first); the rest '
     'stays due for the next call, so a catch-up of millions is spread over calls of bounded length'),
    ('schedule.default_frequency.compliance-scan', 'DAILY',
     'frequency of the compliance schedule created with each new cloud integration'),
    ('schedule.default_frequency.cost-analysis', 'WEEKLY',
     'frequency of the cost schedule created with each new organization'),
    ('cost.lookback_days', '30',
     'cost-analysis payload: how many days of billing data to analyse'),
    ('cost.actions', '["identify-unused", "rightsizing-recs", "commitment-coverage"]',
     'cost-analysis payload: the analyses to run (JSON array)'),
    ('cron.enqueue_due.schedule', '* * * * *',
     'pg_cron schedule of the nightshift-enqueue-due job (applied by install_cron_jobs)'),
    ('cron.maintenance.schedule', '*/5 * * * *',
     'pg_cron schedule of the nightshift-maintenance job (applied by install_cron_jobs)'),
    ('retention.tasks', '14 days',
     'maintenance deletes done, cancelled and dead tasks that finished longer ago than this'),
    ('retention.scans', '90 days',
     'maintenance deletes scans that finished longer ago than this (findings are kept)'),
    ('retention.notifications', '30 days',
     'maintenance deletes notifications sent longer ago than this (failed and dead ones are kept)'),
    ('retention.cron_run_details', '7 days',
     'maintenance deletes pg_cron''s cron.job_run_details rows older than this'),
    ('retention.webhook_deliveries', '30 days',
     'maintenance deletes recorded webhook delivery ids older than this; a delivery replayed later is '
     'taken as new. At least 7 days: GitHub lets people redeliver for 3 days (Enterprise Server: 7)'),
    ('retention.batch_size', '10000',
     'at most this many rows of each kind are deleted per maintenance run, keeping runs short')
ON CONFLICT (key) DO NOTHING;
