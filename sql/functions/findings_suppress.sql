-- suppress_finding: accept one finding as expected (`nightshift findings suppress ID`). Creates a
-- suppression for exactly that finding's kind, subject and resource address (every attribute), and
-- marks the finding SUPPRESSED at once rather than at its next scan. Like any suppression it expires
-- (p_expires_at) and the finding comes back OPEN at the first scan after that.
--   SELECT * FROM nightshift.suppress_finding(17, 'alice@example.com', 'tag edited by FinOps', now() + interval '90 days');
-- Globs have no escape: an address holding '*' or '?' also covers addresses those wildcards match.
CREATE OR REPLACE FUNCTION nightshift.suppress_finding(
    p_finding_id bigint,
    p_owner text,
    p_reason text,
    p_expires_at timestamptz DEFAULT NULL
)
RETURNS TABLE (suppression_id bigint, finding_id bigint, subject text, address text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_finding nightshift.findings%ROWTYPE;
    v_suppression_id bigint;
BEGIN
    /* one suppression covering exactly this finding; the finding SUPPRESSED now */
    SELECT * INTO v_finding FROM nightshift.findings AS f WHERE f.id = p_finding_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no finding with id %', p_finding_id USING ERRCODE = 'no_data_found';
    END IF;
    IF coalesce(btrim(p_owner), '') = '' OR coalesce(btrim(p_reason), '') = '' THEN
        RAISE EXCEPTION 'a suppression needs an owner and a reason' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_expires_at IS NOT NULL AND p_expires_at <= now() THEN
        RAISE EXCEPTION 'expiry % is in the past', p_expires_at USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO nightshift.suppressions (kind, subject_pattern, address_pattern, attribute_pattern, owner,
                                         reason, expires_at)
    VALUES (v_finding.kind, v_finding.subject, coalesce(v_finding.resource_address, '*'), '*', p_owner,
            p_reason, p_expires_at)
    RETURNING id INTO v_suppression_id;

    UPDATE nightshift.findings AS f
       SET status = 'SUPPRESSED', suppression_id = v_suppression_id
     WHERE f.id = p_finding_id;

    RETURN QUERY SELECT v_suppression_id, v_finding.id, v_finding.subject, v_finding.resource_address;
END
$$;

REVOKE EXECUTE ON FUNCTION nightshift.suppress_finding(bigint, text, text, timestamptz) FROM PUBLIC;
