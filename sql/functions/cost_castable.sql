-- cost_castable: whether p_value reads as p_type (numeric, timestamptz, jsonb). Only the ingest's error
-- path calls it, to name the column of a file whose value has the wrong type (PostgreSQL 15 has no
-- pg_input_is_valid).
CREATE OR REPLACE FUNCTION nightshift.cost_castable(p_value text, p_type text)
RETURNS boolean
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    /* true when p_value is NULL or casts to p_type */
    IF p_value IS NULL THEN
        RETURN true;
    END IF;
    EXECUTE format('SELECT %L::%s', p_value, p_type::regtype);
    RETURN true;
EXCEPTION
    WHEN data_exception THEN
        RETURN false;
END
$$;
