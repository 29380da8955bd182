-- Named queries of `nightshift prs` (dispatcher/cli/prs_cmd.py): the local forge's pull requests,
-- nightshift.pull_requests. A DBA does the same from psql.

-- name: pr_list --
-- Pull requests of the local forge, newest first, optionally of one repository and one state.
SELECT p.repository_id AS repository, r.name AS repository_name, p.number, p.state, p.head_ref AS head,
       p.base_ref AS base, left(p.head_sha, 12) AS head_sha, p.title,
       (SELECT string_agg(s.key || '=' || (s.value ->> 'state'), ', ' ORDER BY s.key)
          FROM jsonb_each(p.statuses) AS s) AS statuses,
       (SELECT count(*) FROM jsonb_object_keys(p.comments)) AS comments, p.updated_at
  FROM nightshift.pull_requests AS p
  JOIN nightshift.repositories AS r ON r.id = p.repository_id
 WHERE (%(repo)s::bigint IS NULL OR p.repository_id = %(repo)s)
   AND (%(state)s::text IS NULL OR p.state = %(state)s)
 ORDER BY p.updated_at DESC, p.id DESC
 LIMIT %(limit)s

-- name: pr_show --
-- One pull request of a repository, with its comments and statuses.
SELECT p.repository_id AS repository, p.number, p.state, p.head_ref AS head, p.base_ref AS base,
       p.head_sha, p.title, p.body, p.comments, p.statuses, p.task_id, p.created_at, p.updated_at
  FROM nightshift.pull_requests AS p
 WHERE p.repository_id = %(repo)s AND p.number = %(number)s

-- name: pr_close --
-- Close (or mark merged) an open pull request; merged, a remediation on its branch awaits verification.
WITH closed AS (
    UPDATE nightshift.pull_requests SET state = %(state)s, updated_at = now()
     WHERE repository_id = %(repo)s AND number = %(number)s AND state = 'open'
    RETURNING repository_id, number, state, head_ref
)
SELECT c.repository_id AS repository, c.number, c.state,
       CASE WHEN c.state = 'merged' THEN nightshift.remediation_merged(c.repository_id, c.head_ref) END
           AS remediation
  FROM closed AS c
