-- pr_review_context: what a pr-review payload carries about its repository, besides the pull request:
--   {"forge": how to reach the forge (a token's reference, never its value; forge_of_repository),
--    "plans": the roots whose review runs a plan (plans_of_repository),
--    "iac_tool": the repository's tool, terraform or tofu: fmt, init, validate and plan run with it}
-- The agent never sees the database, so this is all it learns of the repository. One definition for
-- both ways a review is enqueued (enqueue_pr_review, receive_github_delivery).
--   SELECT nightshift.pr_review_context(5);
CREATE OR REPLACE FUNCTION nightshift.pr_review_context(p_repository_id bigint)
RETURNS jsonb
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    /* the forge, plans and iac_tool keys of a pr-review payload for repository p_repository_id */
    SELECT jsonb_build_object(
               'forge', nightshift.forge_of_repository(p_repository_id),
               'plans', nightshift.plans_of_repository(p_repository_id),
               'iac_tool', (SELECT r.iac_tool FROM nightshift.repositories AS r WHERE r.id = p_repository_id))
$$;

-- Only definer functions call it (enqueue_pr_review, receive_github_delivery): no role needs it directly.
REVOKE ALL ON FUNCTION nightshift.pr_review_context(bigint) FROM PUBLIC;
