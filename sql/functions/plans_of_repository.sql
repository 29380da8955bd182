-- plans_of_repository: the pipelines of a repository whose pull-request reviews run `terraform plan`
-- (pipelines.pr_plan, off by default), as the `plans` array of a pr-review payload:
--   [{"pipeline_id", "name", "working_directory", "workspace", "var_files", "env_allowlist"}, ...]
-- Names only: env_allowlist lists which of the dispatcher's environment variables the plan may see,
-- never a value. An empty array when no pipeline asks for a plan (or the repository is unknown).
--   SELECT nightshift.plans_of_repository(5);
CREATE OR REPLACE FUNCTION nightshift.plans_of_repository(p_repository_id bigint)
RETURNS jsonb
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    /* the payload's plans array of repository p_repository_id */
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'pipeline_id', p.id, 'name', p.name, 'working_directory', p.working_directory,
               'workspace', p.workspace, 'var_files', to_jsonb(p.var_files),
               'env_allowlist', to_jsonb(p.env_allowlist)) ORDER BY p.working_directory, p.id), '[]')
      FROM nightshift.pipelines AS p
     WHERE p.repository_id = p_repository_id AND p.pr_plan
$$;

-- Only definer functions call it (pr_review_context, for enqueue_pr_review and receive_github_delivery):
-- no role needs it directly.
REVOKE ALL ON FUNCTION nightshift.plans_of_repository(bigint) FROM PUBLIC;
