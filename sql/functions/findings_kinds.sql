-- Which finding kinds a task kind is responsible for. A successful scan resolves the open findings of
-- its subject that it did not see again, but only those of its own kinds: a clean drift scan must not
-- resolve the compliance findings of the same target. Scanners added later add their line here.
CREATE OR REPLACE FUNCTION nightshift.finding_kinds(p_task_kind text)
RETURNS text[]
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    /* the finding kinds owned by tasks of kind p_task_kind; empty for kinds that produce none */
    SELECT CASE p_task_kind
               WHEN 'drift-scan' THEN ARRAY['drift', 'pending-change']
               WHEN 'compliance-scan' THEN ARRAY['compliance']
               WHEN 'cost-analysis' THEN ARRAY['cost']
               ELSE ARRAY[]::text[]
           END
$$;
