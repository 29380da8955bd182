-- Ownership: nightshift_owner (NOLOGIN, not a superuser) owns schema nightshift and everything in it
-- (tables, sequences, views, types, functions), so a SECURITY DEFINER function runs with the rights
-- of that role, not with those of whoever ran the migration (often a superuser).
--
-- Applied at the end of every `nightshift migrate` (dispatcher/schema.py), changed or not: a migration
-- may have created tables since it last ran. Only objects not yet owned by nightshift_owner are
-- altered, so a migration that changes nothing takes no lock.
--
-- The migrating user must be able to act as nightshift_owner: a superuser can; a user with
-- CREATEROLE (the admin user of a managed service) makes itself a member. A user that can do neither
-- (a managed service without CREATEROLE, the role made by someone else) keeps the objects, and a
-- NOTICE says so and how to fix it: GRANT nightshift_owner TO <that user>, then migrate again.
DO $$
DECLARE
    v_owner CONSTANT name := 'nightshift_owner';
    v_owner_id oid := (SELECT r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolname = v_owner);
    v_schema_id CONSTANT oid := 'nightshift'::regnamespace;
    v_object record;
BEGIN
    IF v_owner_id IS NULL THEN
        RAISE NOTICE 'role % does not exist: the nightshift objects stay owned by %', v_owner, current_user
            USING HINT = 'create it (CREATE ROLE nightshift_owner NOLOGIN) and migrate again';
        RETURN;
    END IF;
    -- a role of that name made by hand as a login, a superuser or BYPASSRLS would give the functions its powers
    IF EXISTS (SELECT FROM pg_catalog.pg_roles AS r
                WHERE r.oid = v_owner_id AND (r.rolsuper OR r.rolcanlogin OR r.rolbypassrls)) THEN
        BEGIN
            ALTER ROLE nightshift_owner NOSUPERUSER NOLOGIN NOBYPASSRLS;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'role % has SUPERUSER, LOGIN or BYPASSRLS: SECURITY DEFINER functions get its powers',
                          v_owner
                USING HINT = 'as a superuser: ALTER ROLE nightshift_owner NOSUPERUSER NOLOGIN NOBYPASSRLS';
        END;
    END IF;
    -- USAGE: its privileges without SET ROLE, which later migrations need to alter its tables
    IF NOT pg_catalog.pg_has_role(current_user, v_owner_id, 'USAGE') THEN
        BEGIN
            EXECUTE pg_catalog.format('GRANT %I TO %I', v_owner, current_user);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'cannot act as % (no CREATEROLE): the nightshift objects stay owned by %, and '
                         'SECURITY DEFINER functions run as that user', v_owner, current_user
                USING HINT = pg_catalog.format('as an administrator: GRANT nightshift_owner TO %I; '
                                               'then migrate again', current_user);
            RETURN;
        END;
    END IF;

    IF (SELECT n.nspowner FROM pg_catalog.pg_namespace AS n WHERE n.oid = v_schema_id) <> v_owner_id THEN
        BEGIN
            ALTER SCHEMA nightshift OWNER TO nightshift_owner;
        EXCEPTION WHEN insufficient_privilege THEN
            -- a non-superuser may give a schema away only with CREATE on the database (a schema
            -- made by an administrator); the owner needs to find and create objects in it, not to own it
            GRANT USAGE, CREATE ON SCHEMA nightshift TO nightshift_owner;
        END;
    END IF;

    -- tables (their indexes, and the sequences of identity and serial columns, follow), views, sequences
    FOR v_object IN
        SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                              WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END AS kind,
               pg_catalog.format('nightshift.%I', c.relname) AS name
          FROM pg_catalog.pg_class AS c
         WHERE c.relnamespace = v_schema_id
           AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
           AND c.relowner <> v_owner_id
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend AS d
                            WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                              AND (d.deptype = 'e'  -- an extension's object is the extension's
                                   OR (c.relkind = 'S' AND d.deptype IN ('a', 'i'))))
    LOOP
        EXECUTE pg_catalog.format('ALTER %s %s OWNER TO %I', v_object.kind, v_object.name, v_owner);
    END LOOP;

    -- enums, domains, ranges (a range takes its multirange along) and stand-alone composite types;
    -- a table's row type and every array type follow their table or element
    FOR v_object IN
        SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END AS kind,
               pg_catalog.format('nightshift.%I', t.typname) AS name
          FROM pg_catalog.pg_type AS t
          LEFT JOIN pg_catalog.pg_class AS c ON c.oid = t.typrelid
         WHERE t.typnamespace = v_schema_id
           AND t.typowner <> v_owner_id
           AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend AS d
                            WHERE d.classid = 'pg_catalog.pg_type'::regclass AND d.objid = t.oid
                              AND d.deptype = 'e')
    LOOP
        EXECUTE pg_catalog.format('ALTER %s %s OWNER TO %I', v_object.kind, v_object.name, v_owner);
    END LOOP;

    -- functions, procedures and aggregates
    FOR v_object IN
        SELECT CASE p.prokind WHEN 'a' THEN 'AGGREGATE' WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END AS kind,
               pg_catalog.format('nightshift.%I(%s)', p.proname,
                                 pg_catalog.pg_get_function_identity_arguments(p.oid)) AS name
          FROM pg_catalog.pg_proc AS p
         WHERE p.pronamespace = v_schema_id
           AND p.proowner <> v_owner_id
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend AS d
                            WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
                              AND d.deptype = 'e')
    LOOP
        EXECUTE pg_catalog.format('ALTER %s %s OWNER TO %I', v_object.kind, v_object.name, v_owner);
    END LOOP;
END
$$;
