-- Reading a setting as the type it holds, with a default when the row is missing OR unreadable.
-- settings_validate (sql/triggers) refuses malformed values when they are written; these readers
-- also survive a row written before that check existed: a WARNING names the key, the default is used,
-- and the caller goes on. A bad stagger window of one kind must never stop enqueue_due for the others.
--   SELECT nightshift.setting_interval('schedule.stagger.drift-scan', '5 minutes');
CREATE OR REPLACE FUNCTION nightshift.setting_interval(p_key text, p_default interval)
RETURNS interval
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_value text := (SELECT st.value FROM nightshift.settings AS st WHERE st.key = p_key);
BEGIN
    /* the setting as an interval; the default (and a WARNING naming the key) when it is not one */
    RETURN coalesce(v_value::interval, p_default);
EXCEPTION WHEN data_exception THEN
    RAISE WARNING 'setting % = % is not an interval; using %', p_key, quote_literal(v_value), p_default
        USING HINT = format('UPDATE nightshift.settings SET value = %L WHERE key = %L', p_default, p_key);
    RETURN p_default;
END
$$;

CREATE OR REPLACE FUNCTION nightshift.setting_integer(p_key text, p_default integer)
RETURNS integer
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_value text := (SELECT st.value FROM nightshift.settings AS st WHERE st.key = p_key);
BEGIN
    /* the setting as an integer; the default (and a WARNING naming the key) when it is not one */
    RETURN coalesce(v_value::integer, p_default);
EXCEPTION WHEN data_exception THEN
    RAISE WARNING 'setting % = % is not an integer; using %', p_key, quote_literal(v_value), p_default
        USING HINT = format('UPDATE nightshift.settings SET value = %L WHERE key = %L', p_default, p_key);
    RETURN p_default;
END
$$;

CREATE OR REPLACE FUNCTION nightshift.setting_jsonb(p_key text, p_default jsonb)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_value text := (SELECT st.value FROM nightshift.settings AS st WHERE st.key = p_key);
BEGIN
    /* the setting as JSON; the default (and a WARNING naming the key) when it is not JSON */
    RETURN coalesce(v_value::jsonb, p_default);
EXCEPTION WHEN data_exception THEN
    RAISE WARNING 'setting % = % is not JSON; using %', p_key, quote_literal(v_value), p_default
        USING HINT = format('UPDATE nightshift.settings SET value = %L WHERE key = %L', p_default, p_key);
    RETURN p_default;
END
$$;
