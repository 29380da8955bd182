-- Globs of suppressions ('aws_s3_bucket.*', 'tags.*', 'pipeline/4?') as anchored regular expressions.
-- `*` is any run of characters (dots and brackets included, like fnmatch), `?` exactly one; every other
-- character, regex metacharacters included, matches itself. Operators may therefore write addresses as
-- they appear in a plan, brackets and quotes and all: module.team_bucket["blue"].*
--
-- IMMUTABLE SQL of one expression, no SET clause: inlined into the statements that use it, and
-- PostgreSQL caches the compiled expression, so matching 10,000 findings costs little.
CREATE OR REPLACE FUNCTION nightshift.glob_regex(p_glob text)
RETURNS text
LANGUAGE sql
IMMUTABLE
STRICT
PARALLEL SAFE
AS $$
    /* '^...$' matching exactly the strings p_glob matches */
    -- escape first (the escapes contain neither * nor ?), then turn the two wildcards into regex;
    -- inside the bracket expression '[' is escaped, since '[.' would open a collating element
    SELECT '^'
        || pg_catalog.replace(pg_catalog.replace(
               pg_catalog.regexp_replace(p_glob, '([]\[.+^$(){}|\\])', '\\\1', 'g'),
               '*', '.*'),
               '?', '.')
        || '$'
$$;

-- Does a suppression's attribute glob cover a finding's changed attributes? '*' covers every finding,
-- including those without attributes (a deleted resource). Any other glob covers a finding only when
-- EVERY changed attribute path matches it: suppressing 'tags.*' must not hide an added ingress rule
-- on the same resource.
CREATE OR REPLACE FUNCTION nightshift.attributes_match(p_attributes jsonb, p_glob text)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    /* true when p_glob is '*' or matches the path of every element of p_attributes (non-empty) */
    SELECT p_glob = '*'
        OR (pg_catalog.jsonb_typeof(p_attributes) = 'array'
            AND pg_catalog.jsonb_array_length(p_attributes) > 0
            AND NOT EXISTS (
                SELECT FROM pg_catalog.jsonb_array_elements(p_attributes) AS a(attr)
                 WHERE NOT coalesce(a.attr ->> 'path', '') ~ nightshift.glob_regex(p_glob)))
$$;
