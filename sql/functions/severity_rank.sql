-- severity_rank: severities as numbers, so that "the worst" and "at least high" can be computed.
-- Scanners spell them differently (Checkov HIGH, Prowler Critical/Informational, cost high/medium/low);
-- unknown or missing ones rank as info.
CREATE OR REPLACE FUNCTION nightshift.severity_rank(p_severity text)
RETURNS integer
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    /* 4 critical, 3 high, 2 medium, 1 low, 0 anything else */
    SELECT CASE lower(p_severity)
               WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1
               ELSE 0 END
$$;
