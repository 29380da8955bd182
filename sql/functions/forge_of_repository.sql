-- forge_of_repository: what an agent needs to reach a repository's forge, as the `forge` object of a
-- task payload (dispatcher/forge/__init__.py, forge_from_payload). Agents never see the database, so
-- the enqueueing side (enqueue_pr_review, a remediation request) puts this into the payload:
--   github  {"kind", "full_name", "api_url", "token_ref"}          a token's *reference*, never its value
--   local   {"kind", "repository_id", "remote", "pull_requests"}   its open pull requests as rows
--   SELECT nightshift.forge_of_repository(5);
-- NULL for an unknown repository.
CREATE OR REPLACE FUNCTION nightshift.forge_of_repository(p_repository_id bigint)
RETURNS jsonb
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    /* the payload's forge object of repository p_repository_id */
    SELECT CASE r.forge
        WHEN 'local' THEN jsonb_build_object(
            'kind', 'local', 'repository_id', r.id, 'remote', r.url,
            'pull_requests', coalesce((
                SELECT jsonb_agg(jsonb_build_object(
                           'number', p.number, 'head_ref', p.head_ref, 'base_ref', p.base_ref,
                           'head_sha', p.head_sha, 'title', p.title, 'state', p.state,
                           'comments', p.comments) ORDER BY p.number)
                  FROM nightshift.pull_requests AS p
                 WHERE p.repository_id = r.id AND p.state = 'open'), '[]'))
        ELSE jsonb_strip_nulls(jsonb_build_object(
            'kind', 'github', 'full_name', r.full_name, 'api_url', r.forge_api_url,
            'token_ref', r.forge_token_ref))
    END
      FROM nightshift.repositories AS r
     WHERE r.id = p_repository_id
$$;

-- Only definer functions call it (pr_review_context, remediation requests): no role needs it directly,
-- and it names every repository's token reference.
REVOKE ALL ON FUNCTION nightshift.forge_of_repository(bigint) FROM PUBLIC;
