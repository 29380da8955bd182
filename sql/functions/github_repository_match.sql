-- git_url_key: one spelling for the many URLs of one repository, so a repository registered with any
-- of them is found from any other: scheme, user info, a trailing ".git" or "/" and case are dropped,
-- and scp-like "git@host:owner/name" becomes "host/owner/name".
--   SELECT nightshift.git_url_key('git@github.com:Codertocat/Hello-World.git');  -- github.com/codertocat/hello-world
--   SELECT nightshift.git_url_key('https://github.com/Codertocat/Hello-World');   -- the same
CREATE OR REPLACE FUNCTION nightshift.git_url_key(p_url text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    /* NULL for NULL or an empty URL */
    SELECT nullif(
        pg_catalog.regexp_replace(
            pg_catalog.regexp_replace(
                pg_catalog.regexp_replace(pg_catalog.lower(pg_catalog.btrim(p_url)),
                                          '^[a-z][a-z0-9+.-]*://([^@/]*@)?', ''),  -- scheme://user@
                '^([^@/]*@)?([^:/]+):(?![0-9])', '\2/'),                          -- git@host:owner/name
            '(\.git)?/*$', ''),                                                   -- .git and slashes
        '')
$$;

-- match_github_repository: the repository a GitHub webhook payload's "repository" object names, found
-- by its full name ("Codertocat/Hello-World", the indexed fast path), else by any of its URLs
-- (clone_url, ssh_url, git_url, html_url, svn_url) against repositories.url. No row: unknown.
--   SELECT * FROM nightshift.match_github_repository('{"full_name": "Codertocat/Hello-World"}');
CREATE OR REPLACE FUNCTION nightshift.match_github_repository(p_repository jsonb)
RETURNS TABLE (id bigint, pr_review_enabled boolean, webhook_secret_ref text)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    /* at most one row: the repository by full name, else the oldest one whose URL matches */
    IF pg_catalog.jsonb_typeof(p_repository) IS DISTINCT FROM 'object' THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT r.id, r.pr_review_enabled, r.webhook_secret_ref
          FROM nightshift.repositories AS r
         WHERE lower(r.full_name) = lower(p_repository ->> 'full_name');
    IF FOUND THEN
        RETURN;
    END IF;
    -- repositories registered by URL only: a scan of the table, fine for the thousands a team has
    RETURN QUERY
        SELECT r.id, r.pr_review_enabled, r.webhook_secret_ref
          FROM nightshift.repositories AS r
         WHERE nightshift.git_url_key(r.url) IN (
                   SELECT nightshift.git_url_key(p_repository ->> u.field)
                     FROM unnest(ARRAY['clone_url', 'ssh_url', 'git_url', 'html_url', 'svn_url']) AS u(field))
         ORDER BY r.id
         LIMIT 1;
END
$$;

REVOKE ALL ON FUNCTION nightshift.match_github_repository(jsonb) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.match_github_repository(jsonb) TO nightshift_dispatcher;
    END IF;
END
$$;
