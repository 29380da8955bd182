-- The line items of a deleted cost source (or of a deleted organization's sources) go with it.
-- cost_line_items has no foreign key to cost_sources: checking one per row cost 40% of an ingest of
-- millions of rows, and only the ingest writes source_id (the id of the source it has just read).
CREATE OR REPLACE FUNCTION nightshift.cost_sources_delete_items()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
AS $$
BEGIN
    /* delete the line items of the cost sources a statement deleted */
    DELETE FROM nightshift.cost_line_items AS li
     WHERE li.source_id IN (SELECT d.id FROM deleted_sources AS d);
    RETURN NULL;
END
$$;

-- DROP + CREATE rather than CREATE OR REPLACE TRIGGER, as the other trigger files
DROP TRIGGER IF EXISTS cost_sources_delete_items ON nightshift.cost_sources;
CREATE TRIGGER cost_sources_delete_items
    AFTER DELETE ON nightshift.cost_sources
    REFERENCING OLD TABLE AS deleted_sources
    FOR EACH STATEMENT
    EXECUTE FUNCTION nightshift.cost_sources_delete_items();
