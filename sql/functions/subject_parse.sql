-- A task's subject names what it is about: 'pipeline/42', 'cloud_integration/7', 'organization/3',
-- 'repository/5'. This splits one into its target type and id; anything else (a malformed subject,
-- a kind of subject added later) gives NULLs, and each caller decides whether that is an error.
CREATE OR REPLACE FUNCTION nightshift.parse_subject(
    p_subject text,
    OUT target_type text,
    OUT target_id bigint
)
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    /* ('pipeline', 42) for 'pipeline/42'; (NULL, NULL) when the subject is not <known type>/<id> */
    SELECT m[1], m[2]::bigint
      FROM (SELECT pg_catalog.regexp_match(
                       p_subject, '^(pipeline|cloud_integration|organization|repository)/([0-9]{1,18})$')
            ) AS r(m)
$$;
