-- Tenancy: row-level security on every organization-owned table, and the reader's view of them.
--
-- Applied at the end of every `nightshift migrate` (dispatcher/schema.py), after sql/ownership.sql,
-- changed or not: a migration may have added a table. What is already in place is left alone (no
-- lock is taken); tests/integration/test_tenancy.py fails for a table it cannot classify.
--
-- Organization-owned tables are those listed below with the expression that keys a row to its
-- organization (children reach it through their parent, whose own policy applies inside the
-- subquery), and, without being listed, every table with an organization_id or a subject column.
-- Each gets:
--   ENABLE + FORCE ROW LEVEL SECURITY   no role sees a row unless a policy lets it, the owner included
--   policy nightshift_service           FOR ALL, USING (true), TO nightshift_owner (and the table's
--                                       owner, when a migrating user without CREATEROLE kept it), and
--                                       to the service roles nightshift_dispatcher, _scheduler and
--                                       _cost_loader (the cost agent's loader sessions) where they
--                                       hold a privilege on the table: SECURITY DEFINER functions run as the
--                                       owner and see everything. A constant `true` is folded away when
--                                       the statement is planned, so the dispatcher's hot path pays
--                                       nothing per row.
--   policy nightshift_tenant            FOR SELECT TO nightshift_reader: the rows of the organizations
--                                       the reader is a member of (nightshift.member_organizations())
--   GRANT SELECT TO nightshift_reader   the reporting views are security_invoker, so the reader's own
--                                       rights (and these policies) apply to the tables they read
-- The reader never gets INSERT, UPDATE or DELETE. Every view of the schema is made security_invoker
-- (a view run with its owner's rights would show the reader every organization), and every
-- SECURITY DEFINER function loses the default EXECUTE of PUBLIC: only the roles its file grants may
-- call it.
DO $$
DECLARE
    v_schema_id CONSTANT oid := 'nightshift'::regnamespace;
    v_orgs CONSTANT text := 'organization_id = ANY ((SELECT nightshift.member_organizations())::bigint[])';
    v_subjects CONSTANT text := 'nightshift.subject_scope(subject) IN (SELECT nightshift.member_subjects())';
    v_reader_exists CONSTANT boolean := EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_reader');
    v_table record;
    v_roles text;
    v_policies text[];
    v_policy text[];
    v_statement text;
BEGIN
    FOR v_table IN
        WITH keyed_through(relname, qual) AS (VALUES
            ('organizations', 'id = ANY ((SELECT nightshift.member_organizations())::bigint[])'),
            -- a role sees its own memberships (member_organizations() reads them as the caller)
            ('organization_members',
             'EXISTS (SELECT FROM pg_catalog.pg_roles AS r '
             'WHERE r.rolname = member AND pg_catalog.pg_has_role(r.oid, ''MEMBER''))'),
            -- a schedule names one target: a pipeline, a cloud integration or an organization
            ('schedules',
             v_orgs || ' OR pipeline_id IN (SELECT p.id FROM nightshift.pipelines AS p)'
                    || ' OR cloud_integration_id IN (SELECT c.id FROM nightshift.cloud_integrations AS c)'),
            ('pipelines', 'repository_id IN (SELECT r.id FROM nightshift.repositories AS r)'),
            ('cloud_integration_pipelines',
             'cloud_integration_id IN (SELECT c.id FROM nightshift.cloud_integrations AS c)'
             ' AND pipeline_id IN (SELECT p.id FROM nightshift.pipelines AS p)'),
            ('cost_ingests', 'source_id IN (SELECT s.id FROM nightshift.cost_sources AS s)'),
            ('cost_line_items', 'source_id IN (SELECT s.id FROM nightshift.cost_sources AS s)'),
            ('cost_line_summary', 'source_id IN (SELECT s.id FROM nightshift.cost_sources AS s)'),
            -- a hint may name schedules of several organizations: shown only when all are the reader's
            ('schedule_wakeups', 'schedule_ids <@ ARRAY(SELECT s.id FROM nightshift.schedules AS s)'),
            ('notifications', 'scan_id IN (SELECT s.id FROM nightshift.scans AS s)'),
            ('webhook_deliveries', 'task_id IN (SELECT t.id FROM nightshift.tasks AS t)'),
            ('pull_requests', 'repository_id IN (SELECT r.id FROM nightshift.repositories AS r)'),
            -- findings: the same rule as every subject table, as `= ANY (array)` so that findings_scope_idx
            -- (migration 0024, the inlined subject_scope) can find a reader's findings without a filter
            -- on organization_id; a hashed IN (subquery) cannot use an index
            ('findings',
             'nightshift.subject_scope(subject) = ANY ((SELECT pg_catalog.array_agg(m) '
             'FROM nightshift.member_subjects() AS m)::text[])'),
            -- suppressions are rules over subject globs, not owned by one organization: a reader sees
            -- those that match one of its subjects ('*' matches every organization's)
            ('suppressions',
             'EXISTS (SELECT FROM pg_catalog.unnest((SELECT pg_catalog.array_agg(m) '
             'FROM nightshift.member_subjects() AS m)) AS s(subject) '
             'WHERE s.subject ~ nightshift.glob_regex(subject_pattern))')
        )
        SELECT c.oid, pg_catalog.format('nightshift.%I', c.relname) AS name,
               pg_catalog.pg_get_userbyid(c.relowner) AS owner,
               c.relrowsecurity, c.relforcerowsecurity, c.relispartition,
               coalesce(k.qual,
                        CASE WHEN a.organization_id THEN v_orgs WHEN a.subject THEN v_subjects END) AS qual
          FROM pg_catalog.pg_class AS c
          LEFT JOIN keyed_through AS k ON k.relname = c.relname
          CROSS JOIN LATERAL (
              SELECT pg_catalog.bool_or(att.attname = 'organization_id') AS organization_id,
                     pg_catalog.bool_or(att.attname = 'subject') AS subject
                FROM pg_catalog.pg_attribute AS att
               WHERE att.attrelid = c.oid AND att.attnum > 0 AND NOT att.attisdropped
          ) AS a
         WHERE c.relnamespace = v_schema_id
           AND c.relkind IN ('r', 'p')
           AND (k.qual IS NOT NULL OR a.organization_id OR a.subject)
    LOOP
        IF NOT v_table.relrowsecurity THEN
            EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', v_table.name);
        END IF;
        IF NOT v_table.relforcerowsecurity THEN
            EXECUTE pg_catalog.format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', v_table.name);
        END IF;

        -- the roles that act for every organization, as far as they hold rights on this table
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(r.rolname), ', ' ORDER BY r.rolname) INTO v_roles
          FROM pg_catalog.pg_roles AS r
         WHERE r.rolname = v_table.owner
            OR r.rolname = 'nightshift_owner'
            OR (r.rolname IN ('nightshift_dispatcher', 'nightshift_scheduler', 'nightshift_cost_loader')
                AND pg_catalog.has_table_privilege(r.oid, v_table.oid, 'SELECT, INSERT, UPDATE, DELETE'));
        v_policies := ARRAY[
            ['nightshift_service', pg_catalog.format('FOR ALL TO %s USING (true) WITH CHECK (true)', v_roles)]];
        IF v_reader_exists THEN
            v_policies := v_policies || ARRAY[
                ['nightshift_tenant', pg_catalog.format('FOR SELECT TO nightshift_reader USING (%s)', v_table.qual)]];
            IF NOT v_table.relispartition
               AND NOT pg_catalog.has_table_privilege('nightshift_reader', v_table.oid, 'SELECT') THEN
                EXECUTE pg_catalog.format('GRANT SELECT ON %s TO nightshift_reader', v_table.name);
            END IF;
        END IF;
        -- a policy's comment is the statement that made it: (re)made only when that differs
        FOREACH v_policy SLICE 1 IN ARRAY v_policies LOOP
            v_statement := pg_catalog.format('CREATE POLICY %I ON %s %s', v_policy[1], v_table.name, v_policy[2]);
            IF coalesce((SELECT pg_catalog.obj_description(p.oid, 'pg_policy') FROM pg_catalog.pg_policy AS p
                          WHERE p.polrelid = v_table.oid AND p.polname = v_policy[1]), '') <> v_statement THEN
                EXECUTE pg_catalog.format('DROP POLICY IF EXISTS %I ON %s', v_policy[1], v_table.name);
                EXECUTE v_statement;
                EXECUTE pg_catalog.format('COMMENT ON POLICY %I ON %s IS %L', v_policy[1], v_table.name, v_statement);
            END IF;
        END LOOP;
    END LOOP;

    -- views run with the rights of whoever queries them
    FOR v_table IN
        SELECT pg_catalog.format('nightshift.%I', c.relname) AS name
          FROM pg_catalog.pg_class AS c
         WHERE c.relnamespace = v_schema_id AND c.relkind = 'v'
           AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)
    LOOP
        EXECUTE pg_catalog.format('ALTER VIEW %s SET (security_invoker = true)', v_table.name);
    END LOOP;

    -- a SECURITY DEFINER function is called by the roles granted it, never by PUBLIC
    FOR v_table IN
        SELECT pg_catalog.format('nightshift.%I(%s)', p.proname,
                                 pg_catalog.pg_get_function_identity_arguments(p.oid)) AS name
          FROM pg_catalog.pg_proc AS p
         WHERE p.pronamespace = v_schema_id AND p.prosecdef
           AND pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE')
    LOOP
        EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', v_table.name);
    END LOOP;
END
$$;
