-- cost_summarize: add the line items of an organization's ingests not summed yet to cost_line_summary,
-- one row per ingest, billing period, ChargePeriodStart, currency, service, sub account, charge
-- category, commitment status and whether a commitment applied. The analyses by service and account
-- (coverage, anomalies, top movers, totals) read that summary: a few rows per hour instead of every
-- resource's, and exact for any window since ChargePeriodStart is kept as it is.
--
-- Called by the ingest for the files of a delivery (p_ingests), in the delivery's transaction, right
-- after their COPY (dispatcher/cost/ingest.py), and by the analysis before it reads, for whatever is
-- pending (p_ingests NULL; a no-op when nothing is). Rows of an ingest a later delivery restates leave
-- the summary with its line items (the ingest deletes both in the load's transaction). Returns the
-- summary rows added. p_from/p_to bound the ChargePeriodStart of the rows to read, so a delivery's
-- summary reads its own month partitions, not every month loaded before it.
DROP FUNCTION IF EXISTS nightshift.cost_summarize(bigint);
DROP FUNCTION IF EXISTS nightshift.cost_summarize(bigint, bigint[]);
CREATE OR REPLACE FUNCTION nightshift.cost_summarize(p_organization_id bigint, p_ingests bigint[] DEFAULT NULL,
                                                     p_from timestamptz DEFAULT NULL,
                                                     p_to timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- The rows just loaded have no statistics yet: the planner expected a group per row, sorted 400,000
-- rows of a delivery on disk and walked the index row by row. A hash of its few thousand groups and a
-- bitmap scan of its pages took half the time (bench-cost, 5,000,000 rows).
SET work_mem = '64MB'
SET enable_sort = off
SET enable_indexscan = off
AS $$
DECLARE
    v_ingests bigint[];
    v_sources bigint[];
    v_added bigint;
BEGIN
    /* sum the pending ingests' line items into cost_line_summary, mark them summarized */
    -- locked: a second caller for the same organization waits, then finds them summarized
    SELECT array_agg(p.id), array_agg(DISTINCT p.source_id) INTO v_ingests, v_sources
      FROM (SELECT i.id, i.source_id
              FROM nightshift.cost_ingests AS i
              JOIN nightshift.cost_sources AS s ON s.id = i.source_id
             WHERE s.organization_id = p_organization_id AND i.summarized_at IS NULL
               AND (p_ingests IS NULL OR i.id = ANY (p_ingests))
               FOR UPDATE OF i) AS p;
    IF v_ingests IS NULL THEN
        RETURN 0;
    END IF;
    INSERT INTO nightshift.cost_line_summary
           (source_id, ingest_id, billing_period_start, charge_period_start, charge_period_end,
            billing_currency, service_name, sub_account_id, charge_category, commitment_discount_status,
            committed, line_items, billed_cost, effective_cost, list_cost)
    SELECT li.source_id, li.ingest_id, li.billing_period_start, li.charge_period_start,
           max(li.charge_period_end), li.billing_currency, li.service_name, li.sub_account_id,
           li.charge_category, li.commitment_discount_status, li.commitment_discount_id IS NOT NULL,
           count(*), sum(li.billed_cost), sum(li.effective_cost), sum(li.list_cost)
      FROM nightshift.cost_line_items AS li
     WHERE li.source_id = ANY (v_sources) AND li.ingest_id = ANY (v_ingests)
       AND li.charge_period_start >= coalesce(p_from, '-infinity')
       AND li.charge_period_start < coalesce(p_to, 'infinity')
     GROUP BY li.source_id, li.ingest_id, li.billing_period_start, li.charge_period_start,
              li.billing_currency, li.service_name, li.sub_account_id, li.charge_category,
              li.commitment_discount_status, li.commitment_discount_id IS NOT NULL;
    GET DIAGNOSTICS v_added = ROW_COUNT;
    UPDATE nightshift.cost_ingests SET summarized_at = now() WHERE id = ANY (v_ingests);
    RETURN v_added;
END
$$;
