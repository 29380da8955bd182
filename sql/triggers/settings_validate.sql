-- Settings are checked when they are written: a value that is not of its key's type is refused with
-- an error naming the key, the expected type and an example, so a typo such as an interval of 'banana'
-- never reaches enqueue_due or maintenance. Keys this file does not know (settings of plug-ins) are
-- free text. The readers (sql/functions/settings_value.sql) still fall back to defaults, with a
-- WARNING, for a row written before this check existed.
CREATE OR REPLACE FUNCTION nightshift.settings_validate()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    v_type text;  -- what the value must be, tested below
    v_expected text;  -- the same, for people
    v_example text;
    v_ok boolean := true;
BEGIN
    /* refuse a value that is not of the type its key holds */
    CASE
        WHEN NEW.key LIKE 'schedule.stagger.%' THEN
            v_expected := 'an interval of 0 or more'; v_example := '5 minutes'; v_type := 'interval >= 0';
        WHEN NEW.key IN ('retention.tasks', 'retention.scans', 'retention.cron_run_details',
                         'retention.notifications') THEN
            v_expected := 'a positive interval'; v_example := '14 days'; v_type := 'interval > 0';
        WHEN NEW.key = 'retention.webhook_deliveries' THEN
            -- shorter would forget delivery ids GitHub can still redeliver (3 days; Enterprise Server: 7)
            v_expected := 'an interval of at least 7 days'; v_example := '30 days'; v_type := 'interval >= 7 days';
        WHEN NEW.key IN ('retention.batch_size', 'cost.lookback_days', 'schedule.batch_size') THEN
            v_expected := 'a whole number of 1 or more'; v_example := '30'; v_type := 'integer >= 1';
        WHEN NEW.key = 'notifications.max_findings' THEN
            v_expected := 'a whole number of 0 or more'; v_example := '50'; v_type := 'integer >= 0';
        WHEN NEW.key IN ('queue.retry_base_seconds', 'queue.retry_max_seconds', 'queue.lease_seconds') THEN
            v_expected := 'a number of seconds more than 0'; v_example := '10'; v_type := 'seconds';
        WHEN NEW.key LIKE 'schedule.default_frequency.%' THEN
            v_expected := 'a frequency (UNMONITORED, HOURLY, DAILY, WEEKLY or MONTHLY)'; v_example := 'DAILY'; v_type := 'frequency';
        WHEN NEW.key = 'cost.actions' THEN
            v_expected := 'a JSON array of strings'; v_example := '["identify-unused"]'; v_type := 'string array';
        WHEN NEW.key LIKE 'cron.%.schedule' THEN
            v_expected := 'a pg_cron schedule of five fields'; v_example := '*/5 * * * *'; v_type := 'cron';
        ELSE
            RETURN NEW;  -- a key of a plug-in or a later version: free text
    END CASE;

    BEGIN
        v_ok := CASE
            WHEN v_type = 'interval >= 0' THEN NEW.value::interval >= interval '0'
            WHEN v_type = 'interval > 0' THEN NEW.value::interval > interval '0'
            WHEN v_type = 'interval >= 7 days' THEN NEW.value::interval >= interval '7 days'
            WHEN v_type = 'integer >= 1' THEN NEW.value::integer >= 1
            WHEN v_type = 'integer >= 0' THEN NEW.value::integer >= 0
            WHEN v_type = 'seconds' THEN NEW.value::double precision > 0
                                       AND NEW.value::double precision < 'infinity'
            WHEN v_type = 'frequency' THEN NEW.value::nightshift.frequency IS NOT NULL
            WHEN v_type = 'string array' THEN
                jsonb_typeof(NEW.value::jsonb) = 'array'
                AND NOT EXISTS (SELECT FROM jsonb_array_elements(NEW.value::jsonb) AS e
                                 WHERE jsonb_typeof(e) <> 'string')
            ELSE btrim(NEW.value) ~ '^\S+(\s+\S+){4}$'
        END;
    EXCEPTION WHEN data_exception THEN
        v_ok := false;
    END;
    IF v_ok IS NOT TRUE THEN
        RAISE EXCEPTION 'setting %: % is not %', NEW.key, quote_nullable(NEW.value), v_expected
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('for example: UPDATE nightshift.settings SET value = %L WHERE key = %L',
                                v_example, NEW.key);
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS settings_validate ON nightshift.settings;
CREATE TRIGGER settings_validate
    BEFORE INSERT OR UPDATE OF key, value ON nightshift.settings
    FOR EACH ROW EXECUTE FUNCTION nightshift.settings_validate();
