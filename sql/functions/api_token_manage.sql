-- API tokens of external schedulers (`nightshift tokens create|list|revoke`, the table api_tokens).
-- The token itself never reaches the database: the caller stores its public prefix and the sha256 of
-- the whole token, and at use compares the hash in constant time (dispatcher/intake/tokens.py).

-- create_api_token: a new token row; its name must be new (unique_violation otherwise).
CREATE OR REPLACE FUNCTION nightshift.create_api_token(
    p_name text,
    p_prefix text,
    p_token_hash text,
    p_scopes text[],
    p_expires_at timestamptz DEFAULT NULL
) RETURNS bigint
LANGUAGE sql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    /* the new row's id */
    INSERT INTO nightshift.api_tokens (name, prefix, token_hash, scopes, expires_at)
    VALUES (p_name, p_prefix, p_token_hash, coalesce(p_scopes, '{}'), p_expires_at)
    RETURNING id
$$;

-- revoke_api_token: a revoked token is refused from then on; false when no live token has that name.
CREATE OR REPLACE FUNCTION nightshift.revoke_api_token(p_name text)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    /* mark the token revoked, once */
    UPDATE nightshift.api_tokens SET revoked_at = now() WHERE name = p_name AND revoked_at IS NULL;
    RETURN FOUND;
END
$$;

-- find_api_token: the row a presented token's prefix names, for the caller to check the hash of, and
-- use_api_token: the moment it was accepted (last_used_at).
CREATE OR REPLACE FUNCTION nightshift.find_api_token(p_prefix text)
RETURNS TABLE (id bigint, name text, token_hash text, scopes text[], expires_at timestamptz,
               revoked_at timestamptz)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    /* at most one row */
    SELECT t.id, t.name, t.token_hash, t.scopes, t.expires_at, t.revoked_at
      FROM nightshift.api_tokens AS t
     WHERE t.prefix = p_prefix
$$;

CREATE OR REPLACE FUNCTION nightshift.use_api_token(p_id bigint)
RETURNS void
LANGUAGE sql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    /* remember when the token was last accepted */
    UPDATE nightshift.api_tokens SET last_used_at = now() WHERE id = p_id
$$;

REVOKE ALL ON FUNCTION nightshift.create_api_token(text, text, text, text[], timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION nightshift.revoke_api_token(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION nightshift.find_api_token(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION nightshift.use_api_token(bigint) FROM PUBLIC;
DO $$
BEGIN
    -- the intake checks tokens; creating and revoking them is for operators (the owner)
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.find_api_token(text) TO nightshift_dispatcher;
        GRANT EXECUTE ON FUNCTION nightshift.use_api_token(bigint) TO nightshift_dispatcher;
    END IF;
END
$$;
