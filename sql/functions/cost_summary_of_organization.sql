-- cost_summary: the summary rows (cost_line_summary, see cost_summarize) of an organization's cost
-- sources charged in [p_from, p_to): the base of the analyses by service and account. A plain SQL
-- function, inlined like cost_items.
CREATE OR REPLACE FUNCTION nightshift.cost_summary(p_organization_id bigint, p_from timestamptz,
                                                   p_to timestamptz)
RETURNS SETOF nightshift.cost_line_summary
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT s.*
      FROM nightshift.cost_line_summary AS s
     WHERE s.source_id IN (SELECT cs.id FROM nightshift.cost_sources AS cs
                            WHERE cs.organization_id = p_organization_id)
       AND s.charge_period_start >= p_from
       AND s.charge_period_start < p_to
$$;
