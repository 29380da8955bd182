-- The reader's shared reference data: not owned by an organization, read by the reporting views
-- (which run with the reader's rights, security_invoker). Its organization-owned tables are granted,
-- under row-level security, by sql/row_security.sql; it is granted nothing else, and never a write.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_reader') THEN
        GRANT SELECT ON nightshift.task_kinds, nightshift.settings, nightshift.compliance_requirements,
                        nightshift.compliance_check_mappings TO nightshift_reader;
    END IF;
END
$$;
