-- resource_key: the name one cloud resource goes by in drift, compliance and cost findings alike.
-- Scanners name the same resource differently: Terraform's state has the bucket name or instance id
-- (provider_id), Prowler and FOCUS billing rows often the ARN. An ARN is reduced to its resource part
-- without the type prefix (arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc -> i-0abc,
-- arn:aws:s3:::logs -> logs); another provider id is kept; without one, the Terraform address.
CREATE OR REPLACE FUNCTION nightshift.resource_key(p_provider_id text, p_address text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    /* 'i-0abc' for ('arn:aws:ec2:eu-west-1:1:instance/i-0abc', NULL); p_address when p_provider_id is NULL */
    SELECT CASE WHEN p_provider_id ~ '^arn:[^:]*:[^:]*:[^:]*:[^:]*:.'
                THEN pg_catalog.regexp_replace(p_provider_id, '^arn:[^:]*:[^:]*:[^:]*:[^:]*:([^/:]*[/:])?', '')
                ELSE coalesce(nullif(p_provider_id, ''), p_address) END
$$;
