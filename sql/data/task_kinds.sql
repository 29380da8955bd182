-- The task kinds Nightshift knows, and what differs between them (see the task_kinds table).
-- Seeded once: an operator's UPDATE (another notification template, say) is never overwritten.
-- A kind not listed here can still be enqueued and run (the `command` agent, plug-ins): it schedules
-- nothing, owns no finding kinds but those it reports, and tells of transitions with the
-- 'findings-changed' template.
INSERT INTO nightshift.task_kinds
    (kind, description, scheduled, target_type, finding_kinds, scan_statuses, remediation_kind,
     notification_template, remediates)
VALUES
    ('drift-scan', 'Terraform/OpenTofu plan of a pipeline: resources changed outside the code',
     true, 'pipeline', '{drift,pending-change}', '{CLEAN,DRIFTED}', 'drift-remediation', 'drift-changed', '{}'),
    ('compliance-scan', 'compliance checks (Checkov, Prowler) of a cloud integration against its frameworks',
     true, 'cloud_integration', '{compliance}', '{CLEAN,FAILED_CHECKS}', NULL, 'findings-changed', '{}'),
    ('cost-analysis', 'FOCUS billing analysis of an organization: unused resources, rightsizing, coverage',
     true, 'organization', '{cost}', '{CLEAN,FAILED_CHECKS}', NULL, 'findings-changed', '{}'),
    ('pr-review', 'review of the IaC files a pull request changes',
     false, NULL, '{pr-review}', '{CLEAN,FAILED_CHECKS}', NULL, 'findings-changed', '{}'),
    ('drift-remediation', 'a pull request that fixes open drift of a pipeline',
     false, NULL, '{}', '{}', NULL, NULL, '{drift}')
ON CONFLICT (kind) DO NOTHING;
