-- saving_of: a cost finding's estimated monthly saving (details.estimated_monthly_saving, a decimal
-- string), 0 when absent or not a number: a malformed plug-in finding must not break a report.
CREATE OR REPLACE FUNCTION nightshift.saving_of(p_details jsonb)
RETURNS numeric
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    /* 12.50 for {"estimated_monthly_saving": "12.50"} */
    SELECT CASE WHEN p_details ->> 'estimated_monthly_saving' ~ '^-?[0-9]{1,15}(\.[0-9]{1,10})?$'
                THEN (p_details ->> 'estimated_monthly_saving')::numeric ELSE 0 END
$$;
