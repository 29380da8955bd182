-- Named queries of the inventory commands (`nightshift orgs|repos|pipelines|integrations|suppressions`,
-- `findings`, `scans`), run by dispatcher/inventory.py. They are plain statements on the tables: a DBA
-- does the same from psql (README, "Inventory"). Filters are optional: a NULL parameter matches all.

-- name: org_add --
-- Create an organization; a new one gets a WEEKLY cost-analysis schedule (trigger).
INSERT INTO nightshift.organizations (name, cost_optimization_enabled, compliance_enabled, auto_remediate)
VALUES (%(name)s, %(cost)s, %(compliance)s, %(auto_remediate)s)
RETURNING *

-- name: org_list --
-- Every organization with how many repositories and cloud integrations it has.
SELECT o.id, o.name, o.cost_optimization_enabled AS cost, o.compliance_enabled AS compliance,
       o.auto_remediate,
       (SELECT count(*) FROM nightshift.repositories AS r WHERE r.organization_id = o.id) AS repositories,
       (SELECT count(*) FROM nightshift.cloud_integrations AS c
         WHERE c.organization_id = o.id AND c.deleted_at IS NULL) AS integrations
  FROM nightshift.organizations AS o
 ORDER BY o.id
 LIMIT %(limit)s

-- name: org_show --
-- One organization, by id or by name.
SELECT * FROM nightshift.organizations WHERE id::text = %(ref)s OR name = %(ref)s

-- name: org_remove --
-- Delete an organization; its repositories, pipelines, integrations and schedules go with it (FK cascade).
DELETE FROM nightshift.organizations WHERE id::text = %(ref)s OR name = %(ref)s RETURNING id, name

-- name: repo_add --
-- Create a repository of an organization (named by id or name).
INSERT INTO nightshift.repositories (organization_id, name, url, default_branch, iac_tool,
                                     pr_review_enabled, auto_remediate)
SELECT o.id, %(name)s, %(repo_url)s, %(branch)s, %(iac_tool)s, %(pr_review)s, %(auto_remediate)s
  FROM nightshift.organizations AS o
 WHERE o.id::text = %(org)s OR o.name = %(org)s
RETURNING *

-- name: repo_list --
-- Repositories, optionally of one organization.
SELECT r.id, o.name AS organization, r.name, r.url, r.default_branch AS branch, r.iac_tool,
       r.pr_review_enabled AS pr_review, r.auto_remediate
  FROM nightshift.repositories AS r
  JOIN nightshift.organizations AS o ON o.id = r.organization_id
 WHERE (%(org)s::text IS NULL OR o.id::text = %(org)s OR o.name = %(org)s)
 ORDER BY r.id
 LIMIT %(limit)s

-- name: repo_show --
-- One repository by id.
SELECT * FROM nightshift.repositories WHERE id::text = %(ref)s

-- name: repo_remove --
-- Delete a repository; its pipelines and their schedules go with it.
DELETE FROM nightshift.repositories WHERE id::text = %(ref)s RETURNING id, name

-- name: pipeline_add --
-- Create a pipeline (an IaC root) of a repository.
INSERT INTO nightshift.pipelines (repository_id, name, working_directory, workspace, var_files, env_allowlist)
VALUES (%(repo)s, %(name)s, %(directory)s, %(workspace)s, %(var_files)s, %(env)s)
RETURNING *

-- name: pipeline_list --
-- Pipelines with their organization/repository and drift schedule, optionally of one repository.
SELECT p.id, o.name || '/' || r.name AS repository, p.name, p.working_directory AS directory,
       p.workspace, s.frequency, s.next_run_at
  FROM nightshift.pipelines AS p
  JOIN nightshift.repositories AS r ON r.id = p.repository_id
  JOIN nightshift.organizations AS o ON o.id = r.organization_id
  LEFT JOIN nightshift.schedules AS s ON s.pipeline_id = p.id AND s.kind = 'drift-scan'
 WHERE (%(repo)s::bigint IS NULL OR p.repository_id = %(repo)s)
 ORDER BY p.id
 LIMIT %(limit)s

-- name: pipeline_show --
-- One pipeline by id.
SELECT * FROM nightshift.pipelines WHERE id::text = %(ref)s

-- name: pipeline_remove --
-- Delete a pipeline and its schedule.
DELETE FROM nightshift.pipelines WHERE id::text = %(ref)s RETURNING id, name

-- name: integration_add --
-- Create a cloud integration of an organization; it gets a DAILY compliance schedule (trigger).
INSERT INTO nightshift.cloud_integrations (organization_id, provider, account_id, frameworks,
                                           compliance_enabled)
SELECT o.id, %(provider)s, %(account)s, %(frameworks)s, %(compliance)s
  FROM nightshift.organizations AS o
 WHERE o.id::text = %(org)s OR o.name = %(org)s
RETURNING *

-- name: integration_list --
-- Cloud integrations (removed ones only with deleted = true).
SELECT c.id, o.name AS organization, c.provider, c.account_id, c.frameworks,
       c.compliance_enabled AS compliance, c.deleted_at
  FROM nightshift.cloud_integrations AS c
  JOIN nightshift.organizations AS o ON o.id = c.organization_id
 WHERE (%(org)s::text IS NULL OR o.id::text = %(org)s OR o.name = %(org)s)
   AND (c.deleted_at IS NULL OR %(deleted)s)
 ORDER BY c.id
 LIMIT %(limit)s

-- name: integration_show --
-- One cloud integration by id.
SELECT * FROM nightshift.cloud_integrations WHERE id::text = %(ref)s

-- name: integration_remove --
-- Mark a cloud integration deleted (kept for its history; its compliance scans stop).
UPDATE nightshift.cloud_integrations SET deleted_at = now(), updated_at = now()
 WHERE id::text = %(ref)s AND deleted_at IS NULL
RETURNING id, provider || ':' || account_id AS name

-- name: suppression_add --
-- Create a suppression: globs on subject, resource address and changed attributes.
INSERT INTO nightshift.suppressions (kind, subject_pattern, address_pattern, attribute_pattern, owner,
                                     reason, expires_at)
VALUES (%(kind)s, %(subject)s, %(address)s, %(attribute)s, %(owner)s, %(reason)s, %(expires_at)s)
RETURNING *

-- name: suppression_list --
-- Suppressions, the active ones unless expired = true; with how many findings each covers now.
SELECT s.id, s.kind, s.subject_pattern AS subject, s.address_pattern AS address,
       s.attribute_pattern AS attribute, s.owner, s.reason, s.expires_at,
       (SELECT count(*) FROM nightshift.findings AS f WHERE f.suppression_id = s.id) AS findings
  FROM nightshift.suppressions AS s
 WHERE s.expires_at IS NULL OR s.expires_at > now() OR %(expired)s
 ORDER BY s.id
 LIMIT %(limit)s

-- name: suppression_show --
-- One suppression by id.
SELECT * FROM nightshift.suppressions WHERE id::text = %(ref)s

-- name: suppression_remove --
-- Delete a suppression; the findings it covered reopen at their next scan.
DELETE FROM nightshift.suppressions WHERE id::text = %(ref)s RETURNING id, owner AS name

-- name: finding_list --
-- Findings with their target's label, newest first; every filter optional.
SELECT f.id, f.kind, f.status, f.severity, f.target, f.subject, f.resource_address AS address,
       coalesce(f.change_type, f.check_id) AS change, f.last_seen, f.occurrences
  FROM nightshift.findings_report AS f
 WHERE (%(kind)s::text IS NULL OR f.kind = %(kind)s)
   AND (%(status)s::text IS NULL OR f.status::text = upper(%(status)s))
   AND (%(subject)s::text IS NULL OR f.subject = %(subject)s OR f.target = %(subject)s)
   AND (%(severity)s::text IS NULL OR f.severity = %(severity)s)
   AND (%(since)s::timestamptz IS NULL OR f.last_seen >= %(since)s)
 ORDER BY f.last_seen DESC, f.id DESC
 LIMIT %(limit)s

-- name: finding_show --
-- One finding with its details and suppression.
SELECT * FROM nightshift.findings_report WHERE id = %(id)s

-- name: finding_suppress --
-- Suppress one finding (nightshift.suppress_finding): a suppression for exactly its resource.
SELECT * FROM nightshift.suppress_finding(%(id)s, %(owner)s, %(reason)s, %(expires_at)s)

-- name: scan_list --
-- Scans, newest first, with how many findings each saw; every filter optional.
SELECT s.id, s.task_id, s.kind, s.status, s.subject, t.label AS target, s.started_at, s.finished_at,
       left(s.error, 80) AS error
  FROM nightshift.scans AS s
  LEFT JOIN nightshift.subjects AS t ON t.subject = s.subject
 WHERE (%(kind)s::text IS NULL OR s.kind = %(kind)s)
   AND (%(status)s::text IS NULL OR s.status::text = upper(%(status)s))
   AND (%(subject)s::text IS NULL OR s.subject = %(subject)s OR t.label = %(subject)s)
   AND (%(since)s::timestamptz IS NULL OR s.finished_at >= %(since)s)
 ORDER BY s.finished_at DESC, s.id DESC
 LIMIT %(limit)s

-- name: scan_show --
-- One scan with its summary, error and artifacts, and the findings it last saw.
SELECT s.*, t.label AS target,
       (SELECT count(*) FROM nightshift.findings AS f WHERE f.last_scan_id = s.id) AS findings_seen
  FROM nightshift.scans AS s
  LEFT JOIN nightshift.subjects AS t ON t.subject = s.subject
 WHERE s.id = %(id)s

-- name: scan_of_task --
-- The latest scan a task's attempts stored (`nightshift tasks show`).
SELECT id, attempt, status, summary, error, finished_at
  FROM nightshift.scans
 WHERE task_id = %(task_id)s
 ORDER BY attempt DESC, id DESC
 LIMIT 1

-- name: task_kind_known --
-- Whether a kind has a row in nightshift.task_kinds (`nightshift enqueue` warns otherwise).
SELECT EXISTS (SELECT FROM nightshift.task_kinds WHERE kind = %(kind)s) AS known
