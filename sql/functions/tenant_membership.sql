-- Tenancy: which organizations the current role may read, for the row-level security policies of
-- sql/row_security.sql. A role reads an organization when it is a member (directly, or through a
-- group role, with or without INHERIT) of a role listed for it in nightshift.organization_members.
--
-- SECURITY INVOKER on purpose: current_user must be the caller (inside a SECURITY DEFINER function it
-- would be the owner). The policies call these once per table they guard in a statement, as an
-- InitPlan or a hashed subplan: `(SELECT nightshift.member_organizations())`, never once per row.
--
-- PL/pgSQL, not SQL, on purpose: a SQL function that cannot be inlined (these aggregate, or return a
-- set) plans its query again on every call, and a reporting view reads a dozen guarded tables (a
-- reader's target_status called them some 40 times: 0.3 ms of planning each, most of its time).
-- PL/pgSQL keeps each query's plan for the session. make bench-report times the views as a reader.

-- member_organizations: the ids of the organizations the current role is a member of; empty, not an
-- error, for a role that is a member of none, and a listed name that matches no role grants nothing.
CREATE OR REPLACE FUNCTION nightshift.member_organizations()
RETURNS bigint[]
LANGUAGE plpgsql
STABLE
PARALLEL SAFE
AS $$
BEGIN
    /* organization ids whose listed roles current_user belongs to */
    RETURN (SELECT coalesce(pg_catalog.array_agg(DISTINCT m.organization_id), '{}')
              FROM nightshift.organization_members AS m
              JOIN pg_catalog.pg_roles AS r ON r.rolname = m.member
             WHERE pg_catalog.pg_has_role(r.oid, 'MEMBER'));
END
$$;

-- member_subjects: every subject string ('organization/3', 'repository/5', 'pipeline/42',
-- 'cloud_integration/7') of those organizations: tasks, scans, findings and remediations name
-- their target this way (nightshift.parse_subject).
CREATE OR REPLACE FUNCTION nightshift.member_subjects()
RETURNS SETOF text
LANGUAGE plpgsql
STABLE
PARALLEL SAFE
ROWS 100
AS $$
DECLARE
    v_orgs CONSTANT bigint[] := nightshift.member_organizations();
BEGIN
    /* the subjects of the organizations of member_organizations() */
    RETURN QUERY
    SELECT 'organization/' || o.id FROM pg_catalog.unnest(v_orgs) AS o(id)
    UNION ALL
    SELECT 'repository/' || r.id FROM nightshift.repositories AS r WHERE r.organization_id = ANY (v_orgs)
    UNION ALL
    SELECT 'pipeline/' || p.id
      FROM nightshift.pipelines AS p
      JOIN nightshift.repositories AS r ON r.id = p.repository_id
     WHERE r.organization_id = ANY (v_orgs)
    UNION ALL
    SELECT 'cloud_integration/' || c.id
      FROM nightshift.cloud_integrations AS c
     WHERE c.organization_id = ANY (v_orgs);
END
$$;
-- subject_scope: the subject a subject belongs to for tenancy. A pull request review
-- ('pr/<repository id>/<number>', sql/functions/pr_review_enqueue.sql) belongs to its repository;
-- every other subject to itself. IMMUTABLE SQL of one expression: inlined into the policy.
CREATE OR REPLACE FUNCTION nightshift.subject_scope(p_subject text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    /* 'repository/5' for 'pr/5/12'; the subject itself otherwise */
    SELECT CASE WHEN p_subject LIKE 'pr/%' THEN 'repository/' || pg_catalog.split_part(p_subject, '/', 2)
                ELSE p_subject END
$$;
