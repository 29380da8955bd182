-- Wake-up call for dispatchers: one pg_notify per INSERT statement on nightshift.tasks, never one per row.
--
-- Channel:  nightshift_tasks
-- Payload:  {"kinds": ["compliance-scan", "drift-scan"], "count": 1000, "run_after": "2026-11-26T06:00:00+00:00"}
--           kinds      the distinct task kinds the statement inserted, sorted
--           count      how many tasks it inserted
--           run_after  the earliest run_after among them (staggered tasks may not be claimable yet)
--
-- The notification is only a hint (DESIGN.md rule 5): it is sent at commit, may be lost on a reconnect,
-- and a listener must still poll on a timeout. A statement that inserts nothing (every row hit the
-- in-flight index under ON CONFLICT DO NOTHING) sends nothing.
CREATE OR REPLACE FUNCTION nightshift.tasks_notify()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_payload jsonb;
BEGIN
    /* Send one small notification summarising the rows a statement inserted into nightshift.tasks. */
    -- per kind first (one hash aggregate): DISTINCT inside jsonb_agg sorted every inserted row
    SELECT pg_catalog.jsonb_build_object(
               'kinds', pg_catalog.jsonb_agg(k.kind ORDER BY k.kind),
               'count', pg_catalog.sum(k.count),
               'run_after', pg_catalog.min(k.run_after))
      INTO v_payload
      FROM (SELECT n.kind, pg_catalog.count(*) AS count, pg_catalog.min(n.run_after) AS run_after
              FROM new_tasks AS n
             GROUP BY n.kind) AS k
    HAVING pg_catalog.count(*) > 0;

    IF v_payload IS NOT NULL THEN
        -- a handful of kinds keeps the payload far below NOTIFY's 8000-byte limit
        PERFORM pg_catalog.pg_notify('nightshift_tasks', v_payload::text);
    END IF;
    RETURN NULL;
END
$$;

-- DROP + CREATE rather than CREATE OR REPLACE TRIGGER: the same file then works on PostgreSQL 13 too.
DROP TRIGGER IF EXISTS tasks_notify ON nightshift.tasks;
CREATE TRIGGER tasks_notify
    AFTER INSERT ON nightshift.tasks
    REFERENCING NEW TABLE AS new_tasks
    FOR EACH STATEMENT
    EXECUTE FUNCTION nightshift.tasks_notify();
