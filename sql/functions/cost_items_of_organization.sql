-- cost_items: the line items of an organization's cost sources charged in [p_from, p_to).
-- Every cost analysis starts here. A plain SQL function (no SECURITY DEFINER, no SET) so the planner
-- inlines it: the ChargePeriodStart range then prunes the month partitions.
CREATE OR REPLACE FUNCTION nightshift.cost_items(p_organization_id bigint, p_from timestamptz,
                                                 p_to timestamptz)
RETURNS SETOF nightshift.cost_line_items
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT li.*
      FROM nightshift.cost_line_items AS li
     WHERE li.source_id IN (SELECT cs.id FROM nightshift.cost_sources AS cs
                             WHERE cs.organization_id = p_organization_id)
       AND li.charge_period_start >= p_from
       AND li.charge_period_start < p_to
$$;
