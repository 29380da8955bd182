-- remediation_merged: a remediation's pull request was merged (a pull_request closed+merged webhook,
-- `nightshift remediations merged`, or a DBA). The next successful scan of its subject then verifies
-- it, or fails it with the drift that remains (nightshift.verify_remediations).
--   SELECT nightshift.remediation_merged(repository_id => 5, branch => 'nightshift/drift-network-7');
-- Returns the remediation's id, or NULL when no open remediation has that branch in that repository.
CREATE OR REPLACE FUNCTION nightshift.remediation_merged(
    repository_id bigint,
    branch text,
    merged_at timestamptz DEFAULT now()
)
RETURNS bigint
LANGUAGE sql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    /* mark the open remediation on `branch` of repository `repository_id` merged */
    UPDATE nightshift.remediations AS m
       SET status = 'merged', merged_at = coalesce(remediation_merged.merged_at, now()), updated_at = now()
      FROM nightshift.pipelines AS p
     WHERE p.repository_id = remediation_merged.repository_id
       AND m.subject = 'pipeline/' || p.id
       AND m.branch = remediation_merged.branch
       AND m.status = 'pr_opened'
    RETURNING m.id
$$;

-- Called by definer functions (receive_github_deliveries) and by operators (`prs close --merged`,
-- `remediations merged`, as the migrating user): no service role needs it directly.
REVOKE ALL ON FUNCTION nightshift.remediation_merged(bigint, text, timestamptz) FROM PUBLIC;
