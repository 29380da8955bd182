-- The sender (dispatcher role) reads the channels; their settings hold secret references, never
-- secrets, so the reader role may see them too (`nightshift channels list`).
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT SELECT ON nightshift.notification_channels TO nightshift_dispatcher;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_reader') THEN
        GRANT SELECT ON nightshift.notification_channels TO nightshift_reader;
    END IF;
END
$$;
