-- The suppression that covers a finding, if any: active (no expiry, or expiry in the future), of the
-- finding's kind (or of any kind), and whose three globs match the subject, the resource address and
-- the changed attributes. The oldest matching suppression wins, so the answer is stable.
--
-- A one-SELECT set-returning SQL function without SET or SECURITY DEFINER: the planner inlines it into
-- the LATERAL join of upsert_findings, so 10,000 findings are matched in one statement, not 10,000 calls.
CREATE OR REPLACE FUNCTION nightshift.matching_suppression(
    p_kind text,
    p_subject text,
    p_address text,
    p_attributes jsonb
)
RETURNS TABLE (suppression_id bigint)
LANGUAGE sql
STABLE
AS $$
    /* zero or one row: the id of the oldest active suppression covering this finding */
    SELECT s.id
      FROM nightshift.suppressions AS s
     WHERE (s.expires_at IS NULL OR s.expires_at > now())
       AND (s.kind IS NULL OR s.kind = p_kind)
       AND p_subject ~ nightshift.glob_regex(s.subject_pattern)
       AND coalesce(p_address, '') ~ nightshift.glob_regex(s.address_pattern)
       AND nightshift.attributes_match(p_attributes, s.attribute_pattern)
     ORDER BY s.id
     LIMIT 1
$$;
