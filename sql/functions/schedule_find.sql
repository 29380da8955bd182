-- subject_schedule: the schedule row of kind p_kind whose target is p_subject ('pipeline/42', ...),
-- or NULL when it has none. The one place that maps a subject to its schedule's target column.
CREATE OR REPLACE FUNCTION nightshift.subject_schedule(p_subject text, p_kind text)
RETURNS nightshift.schedules
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    /* the schedules row of (p_kind, p_subject) */
    SELECT s.*
      FROM nightshift.parse_subject(p_subject) AS ref
      JOIN nightshift.schedules AS s
        ON s.kind = p_kind
       AND CASE ref.target_type
               WHEN 'pipeline' THEN s.pipeline_id
               WHEN 'cloud_integration' THEN s.cloud_integration_id
               WHEN 'organization' THEN s.organization_id
           END = ref.target_id
$$;
