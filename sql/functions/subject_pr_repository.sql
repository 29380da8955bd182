-- pr_subject_repository: the repository id of a pull request's subject 'pr/<repository id>/<number>'
-- (nightshift.enqueue_pr_review), NULL for any other subject.
CREATE OR REPLACE FUNCTION nightshift.pr_subject_repository(p_subject text)
RETURNS bigint
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    /* 5 for 'pr/5/17' */
    SELECT (pg_catalog.regexp_match(p_subject, '^pr/([0-9]{1,18})/[0-9]+$'))[1]::bigint
$$;
