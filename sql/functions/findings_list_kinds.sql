-- Which finding kinds a task kind is responsible for (task_kinds.finding_kinds). A successful scan
-- resolves the open findings of its subject that it did not see again, but only those of its own
-- kinds: a clean drift scan must not resolve the compliance findings of the same target.
CREATE OR REPLACE FUNCTION nightshift.finding_kinds(p_task_kind text)
RETURNS text[]
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    /* the finding kinds owned by tasks of kind p_task_kind; empty for kinds that produce none */
    SELECT coalesce((SELECT k.finding_kinds FROM nightshift.task_kinds AS k WHERE k.kind = p_task_kind),
                    ARRAY[]::text[])
$$;
