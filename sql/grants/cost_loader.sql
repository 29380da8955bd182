-- nightshift_cost_loader: the role of the connection the dispatcher hands the cost-analysis agent
-- (dispatcher/cost/loader.py). It loads billing exports and runs the cost analyses, and nothing else:
-- no tasks, scans, findings, schedules, notification channels, tokens or settings. Findings are
-- recorded by the dispatcher through record_result, like every agent's.
--   cost_sources          read (the organization's sources)
--   cost_ingests          the manifest: read, add, mark replaced
--   cost_line_items       INSERT the rows, DELETE a restated period's, read for the analyses
--   cost_line_items_months  COPY the rows (its partition without row-level security, where COPY FROM
--                         is allowed; dispatcher/models.py): INSERT only, never read
--   cost_line_summary     read for the analyses, DELETE a restated period's (cost_summarize adds)
--   TEMPORARY             the staging table of files with non-FOCUS columns
-- Partitions are created (cost_ensure_partitions) and analysed (cost_analyze_line_items) by SECURITY
-- DEFINER functions; the analyses are plain SQL functions over the tables above; the join to drift
-- findings (cost_terraform_addresses) is SECURITY DEFINER and answers for one organization only.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_cost_loader') THEN
        GRANT SELECT ON nightshift.cost_sources TO nightshift_cost_loader;
        GRANT SELECT, INSERT, UPDATE ON nightshift.cost_ingests TO nightshift_cost_loader;
        GRANT USAGE ON SEQUENCE nightshift.cost_ingests_id_seq TO nightshift_cost_loader;
        GRANT SELECT, INSERT, DELETE ON nightshift.cost_line_items TO nightshift_cost_loader;
        GRANT INSERT ON nightshift.cost_line_items_months TO nightshift_cost_loader;
        GRANT SELECT, DELETE ON nightshift.cost_line_summary TO nightshift_cost_loader;
        EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO nightshift_cost_loader', current_database());
        GRANT EXECUTE ON FUNCTION nightshift.cost_ensure_partitions(timestamptz, timestamptz),
                                  nightshift.cost_analyze_line_items(text[]),
                                  nightshift.cost_summarize(bigint, bigint[], timestamptz, timestamptz),
                                  nightshift.cost_terraform_addresses(bigint, text[])
              TO nightshift_cost_loader;
    END IF;
END
$$;
