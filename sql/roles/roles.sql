-- Roles of DESIGN.md's security model. Roles are cluster-wide, so each is created only when missing;
-- a migrating user without CREATEROLE (common on managed services) gets a notice, not a failure.
--   nightshift_owner       owns the objects, never logs in
--   nightshift_dispatcher  claims, heartbeats and records results, through functions only
--   nightshift_scheduler   the role pg_cron jobs run as: enqueue_due() and maintenance
--   nightshift_reader      reads the reporting views
--   nightshift_cost_loader what the cost-analysis agent's connection runs as: loads billing
--                          exports and runs the cost analyses, nothing else (sql/grants/cost_loader.sql)
DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['nightshift_owner', 'nightshift_dispatcher',
                                  'nightshift_scheduler', 'nightshift_reader', 'nightshift_cost_loader']
    LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = v_role) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
            EXCEPTION WHEN insufficient_privilege THEN
                RAISE NOTICE 'cannot create role % (no CREATEROLE); create it by hand', v_role;
            END;
        END IF;
    END LOOP;
END
$$;
