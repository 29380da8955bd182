-- cost_analyze_line_items: fresh planner statistics of the cost line items after a load, for the
-- columns the analyses filter and group by (p_columns). ANALYZE needs the table's owner; the cost
-- loader role (sql/grants/cost_loader.sql) calls this instead. The analysis runs right after a load,
-- before autovacuum would have looked, and a month of rows planned as an empty table is a slow plan.
-- A statistics target of 10 (3,000 sampled rows a table instead of 30,000): the analyses by service
-- read the summary, and the per-resource ones only need the row counts and the common values right;
-- the default target took 36 of the 518 s of bench-cost's ingest of 5,000,000 rows.
CREATE OR REPLACE FUNCTION nightshift.cost_analyze_line_items(p_columns text[])
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET default_statistics_target = 10
AS $$
DECLARE
    v_columns text;
BEGIN
    /* ANALYZE cost_sources, and the line items (parent and partitions) on the given columns */
    SELECT string_agg(format('%I', a.attname), ', ') INTO v_columns
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = 'nightshift.cost_line_items'::regclass AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname = ANY (p_columns);
    ANALYZE nightshift.cost_sources;
    EXECUTE format('ANALYZE nightshift.cost_line_items%s',
                   CASE WHEN v_columns IS NULL THEN '' ELSE ' (' || v_columns || ')' END);
END
$$;
