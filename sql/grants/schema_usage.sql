-- Every Nightshift role may see the schema; what each may do is granted per function or view,
-- in the file that defines it. Nothing is granted to PUBLIC.
REVOKE ALL ON SCHEMA nightshift FROM PUBLIC;

DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['nightshift_dispatcher', 'nightshift_scheduler', 'nightshift_reader',
                                  'nightshift_cost_loader']
    LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('GRANT USAGE ON SCHEMA nightshift TO %I', v_role);
        END IF;
    END LOOP;
END
$$;
