-- Named queries of `nightshift remediations` (dispatcher/cli/remediations_cmd.py): the trail of drift
-- remediation, nightshift.remediations. A DBA does the same from psql.

-- name: remediation_list --
-- Remediations, newest first, optionally of one subject and one status; refused and failed ones say why.
SELECT m.id, m.subject, t.label AS target, m.status, cardinality(m.finding_ids) AS findings, m.branch,
       coalesce(m.pr_url, CASE WHEN m.pr_number IS NOT NULL THEN '#' || m.pr_number END) AS pull_request,
       m.task_id AS task, left(m.reason, 200) AS reason, m.updated_at
  FROM nightshift.remediations AS m
  LEFT JOIN nightshift.subjects AS t ON t.subject = m.subject
 WHERE (%(subject)s::text IS NULL OR m.subject = %(subject)s)
   AND (%(status)s::text IS NULL OR m.status = %(status)s)
 ORDER BY m.updated_at DESC, m.id DESC
 LIMIT %(limit)s

-- name: remediation_show --
-- One remediation with its findings' addresses and the fix chosen for each.
SELECT m.id, m.subject, m.status, m.reason, m.branch, m.pr_url, m.pr_number, m.commit_sha, m.task_id,
       m.scan_id, m.verified_scan_id, m.finding_ids,
       (SELECT string_agg(f.resource_address || ' (' || f.status || ')', ', ' ORDER BY f.resource_address)
          FROM nightshift.findings AS f WHERE f.id = ANY (m.finding_ids)) AS findings,
       m.fixes, m.created_at, m.pr_opened_at, m.merged_at, m.finished_at, m.updated_at
  FROM nightshift.remediations AS m
 WHERE m.id = %(id)s

-- name: remediation_merge --
-- Mark a remediation's pull request merged: the next successful scan verifies it (or fails it).
UPDATE nightshift.remediations SET status = 'merged', merged_at = now(), updated_at = now()
 WHERE id = %(id)s AND status = 'pr_opened'
RETURNING id, subject, status, branch
