-- finding_rows: a scan's findings (a JSON array) as rows of the columns of nightshift.findings, with the
-- suppression that covers each one. `kind` and `fingerprint` come out NULL when missing or empty: the
-- insert then fails on their NOT NULL, and upsert_findings names the finding (one pass over the JSON,
-- not a second one to check it first). A one-SELECT SQL function without SET: inlined into the
-- statements of upsert_findings.
CREATE OR REPLACE FUNCTION nightshift.finding_rows(p_findings jsonb, p_subject text, p_suppressible boolean)
RETURNS TABLE (kind text, fingerprint text, address text, type text, module text, provider_id text,
               change text, check_id text, severity text, suppression_id bigint, details jsonb)
LANGUAGE sql
STABLE
AS $$
    /* one row per element of p_findings; suppressions matched only when p_suppressible */
    SELECT nullif(i.kind, ''), nullif(i.fingerprint, ''), i.address, i.type, i.module, i.provider_id,
           i.change, i.check_id, i.severity,
           CASE WHEN p_suppressible THEN
               (SELECT sup.suppression_id
                  FROM nightshift.matching_suppression(i.kind, p_subject, i.address, i.attributes) AS sup)
           END,
           e.doc - ARRAY['kind', 'fingerprint', 'address', 'type', 'module', 'provider_id', 'change',
                         'check_id', 'severity']
      FROM jsonb_array_elements(p_findings) AS e(doc)
     CROSS JOIN LATERAL jsonb_to_record(e.doc) AS i(
           kind text, fingerprint text, address text, type text, module text, provider_id text,
           change text, check_id text, severity text, attributes jsonb)
$$;

-- upsert_findings: a scan's findings into nightshift.findings, in one statement.
--
-- p_findings is the scanner's JSON array; each element has at least `kind` and `fingerprint`, and
-- usually `address`, `type`, `module`, `provider_id`, `change`, `check_id`, `severity`, `attributes`.
-- Those become columns; everything else about the finding (attributes with before/after, name, ...)
-- is kept in `details`. Sensitive values arrive masked: what is given is stored as is.
--
-- A finding is keyed by (subject, fingerprint): the scanner's fingerprint identifies kind + resource +
-- rule, the unique key adds the target. Per finding:
--   new                           -> OPEN, or SUPPRESSED when an active suppression covers it
--   seen again                    -> last_seen, last_scan_id, occurrences + 1, details refreshed
--   seen again after RESOLVED     -> OPEN again, reopened_count + 1, resolved_at cleared
--   covered by a suppression      -> SUPPRESSED (recorded, never dropped), suppression_id set
--   suppression expired / removed -> OPEN again on the next sighting
--
-- Returns what changed, so the caller needs no second look at the table: how many findings were
-- seen, the ids of those that are new and OPEN, reopened (RESOLVED -> OPEN), unsuppressed
-- (SUPPRESSED -> OPEN) and suppressed (OPEN -> SUPPRESSED), the kinds seen, and whether the subject
-- had findings before (when it had none, none can have gone away).
--
-- Speed (100,000 findings, ~50 MB of JSON, bench/bench_compliance.py): one pass over the JSON; a
-- subject's first findings are plainly inserted (ON CONFLICT looks each key up in the unique index
-- before inserting it: a fifth of the time), falling back to the upsert should a concurrent writer
-- have inserted one of them; and generic plans: a custom plan copies the 50 MB parameter into the
-- plan as a constant, once per reference.
DROP FUNCTION IF EXISTS nightshift.upsert_findings(bigint, text, jsonb);
CREATE FUNCTION nightshift.upsert_findings(
    p_scan_id bigint,
    p_subject text,
    p_findings jsonb,
    OUT seen integer,
    OUT new_ids bigint[],
    OUT reopened_ids bigint[],
    OUT unsuppressed_ids bigint[],
    OUT suppressed_ids bigint[],
    OUT kinds text[],
    OUT known boolean
)
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
-- the pass over the findings (jsonb_array_elements) holds them all: a 100,000-finding scan is ~50 MB,
-- which at the default 4 MB went to a temporary file (bench/bench_compliance.py)
SET work_mem = '128MB'
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    v_bad jsonb;
    v_shared text;
    v_suppressible boolean;
BEGIN
    /* insert or update every finding of p_findings for p_subject, seen by scan p_scan_id */
    IF jsonb_typeof(p_findings) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'findings must be a JSON array, not %', coalesce(jsonb_typeof(p_findings), 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Most subjects have no active suppression: then no finding is matched against the table one by one.
    v_suppressible := EXISTS (SELECT FROM nightshift.suppressions AS s
                               WHERE (s.expires_at IS NULL OR s.expires_at > now())
                                 AND p_subject ~ nightshift.glob_regex(s.subject_pattern));
    known := EXISTS (SELECT FROM nightshift.findings AS f WHERE f.subject = p_subject);

    IF NOT known THEN
        BEGIN
            WITH ins AS (
                INSERT INTO nightshift.findings AS f (
                       kind, subject, fingerprint, resource_address, resource_type, module, provider_id,
                       change_type, check_id, severity, status, first_seen, last_seen, first_scan_id,
                       last_scan_id, suppression_id, details)
                SELECT m.kind, p_subject, m.fingerprint, m.address, m.type, m.module, m.provider_id,
                       m.change, m.check_id, m.severity,
                       CASE WHEN m.suppression_id IS NULL THEN 'OPEN' ELSE 'SUPPRESSED' END::nightshift.finding_status,
                       now(), now(), p_scan_id, p_scan_id, m.suppression_id, m.details
                  FROM nightshift.finding_rows(p_findings, p_subject, v_suppressible) AS m
                RETURNING f.id, f.kind, f.status
            )
            SELECT count(*), coalesce(array_agg(ins.id) FILTER (WHERE ins.status = 'OPEN'), '{}'),
                   coalesce(array_agg(DISTINCT ins.kind), '{}')
              INTO seen, new_ids, kinds
              FROM ins;
            reopened_ids := '{}';
            unsuppressed_ids := '{}';
            suppressed_ids := '{}';
            RETURN;
        EXCEPTION WHEN unique_violation THEN
            -- a writer that got there first, or two findings with one fingerprint: the upsert below
            -- takes the first in, and refuses the second by name
            known := true;
        END;
    END IF;

    -- Two findings with one fingerprint (one row: which would win?) are refused, as the agent contract
    -- refuses them (contract.checked): ON CONFLICT cannot touch a row twice in one statement.
    WITH up AS (
        INSERT INTO nightshift.findings AS f (
               kind, subject, fingerprint, resource_address, resource_type, module, provider_id,
               change_type, check_id, severity, status, first_seen, last_seen, first_scan_id,
               last_scan_id, suppression_id, details)
        SELECT m.kind, p_subject, m.fingerprint, m.address, m.type, m.module, m.provider_id,
               m.change, m.check_id, m.severity,
               CASE WHEN m.suppression_id IS NULL THEN 'OPEN' ELSE 'SUPPRESSED' END::nightshift.finding_status,
               now(), now(), p_scan_id, p_scan_id, m.suppression_id, m.details
          FROM nightshift.finding_rows(p_findings, p_subject, v_suppressible) AS m
        ON CONFLICT (subject, fingerprint) DO UPDATE
           SET kind = EXCLUDED.kind,
               resource_address = EXCLUDED.resource_address,
               resource_type = EXCLUDED.resource_type,
               module = EXCLUDED.module,
               provider_id = EXCLUDED.provider_id,
               change_type = EXCLUDED.change_type,
               check_id = EXCLUDED.check_id,
               severity = EXCLUDED.severity,
               status = EXCLUDED.status,
               suppression_id = EXCLUDED.suppression_id,
               last_seen = EXCLUDED.last_seen,
               last_scan_id = EXCLUDED.last_scan_id,
               occurrences = f.occurrences + 1,
               reopened_count = f.reopened_count
                   + CASE WHEN f.status = 'RESOLVED' AND EXCLUDED.status = 'OPEN' THEN 1 ELSE 0 END,
               resolved_at = NULL,
               details = EXCLUDED.details
        RETURNING f.id, f.kind, f.status
    )
    -- Every part of a WITH statement reads one snapshot, taken before the upsert: joined here, the
    -- table still holds each finding's former row (none for a new one), one primary-key lookup each.
    SELECT count(*),
           coalesce(array_agg(up.id) FILTER (WHERE up.status = 'OPEN' AND old.status IS NULL), '{}'),
           coalesce(array_agg(up.id) FILTER (WHERE up.status = 'OPEN' AND old.status = 'RESOLVED'), '{}'),
           coalesce(array_agg(up.id) FILTER (WHERE up.status = 'OPEN' AND old.status = 'SUPPRESSED'), '{}'),
           coalesce(array_agg(up.id) FILTER (WHERE up.status = 'SUPPRESSED' AND old.status = 'OPEN'), '{}'),
           coalesce(array_agg(DISTINCT up.kind), '{}')
      INTO seen, new_ids, reopened_ids, unsuppressed_ids, suppressed_ids, kinds
      FROM up
      LEFT JOIN nightshift.findings AS old ON old.id = up.id;
EXCEPTION
    WHEN cardinality_violation THEN
        SELECT e.doc ->> 'fingerprint' INTO v_shared
          FROM jsonb_array_elements(p_findings) AS e(doc)
         GROUP BY 1 HAVING count(*) > 1 LIMIT 1;
        RAISE EXCEPTION 'two findings share the fingerprint %: each finding needs its own', left(v_shared, 64)
            USING ERRCODE = 'invalid_parameter_value';
    WHEN not_null_violation OR invalid_parameter_value THEN
        -- a finding that is not an object, or has no kind or fingerprint: name it
        SELECT e.doc INTO v_bad
          FROM jsonb_array_elements(p_findings) AS e(doc)
         WHERE jsonb_typeof(e.doc) <> 'object'
            OR coalesce(e.doc ->> 'kind', '') = '' OR coalesce(e.doc ->> 'fingerprint', '') = ''
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'every finding needs a kind and a fingerprint; got %', left(v_bad::text, 200)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RAISE;
END
$$;

-- resolve_absent_findings: after a successful scan, the findings it owns (p_kinds) for p_subject that
-- it did not see (their last_scan_id is another scan) are RESOLVED. An ERROR scan never calls this:
-- a scan that could not look resolves nothing. Returns each resolved finding with its former status.
CREATE OR REPLACE FUNCTION nightshift.resolve_absent_findings(p_scan_id bigint, p_subject text, p_kinds text[])
RETURNS TABLE (id bigint, previous nightshift.finding_status)
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    /* mark OPEN and SUPPRESSED findings of p_subject and p_kinds that scan p_scan_id did not see RESOLVED */
    UPDATE nightshift.findings AS f
       SET status = 'RESOLVED',
           resolved_at = now()
      FROM (SELECT o.id, o.status
              FROM nightshift.findings AS o
             WHERE o.subject = p_subject
               AND o.status IN ('OPEN', 'SUPPRESSED')
               AND o.kind = ANY (p_kinds)
               AND o.last_scan_id IS DISTINCT FROM p_scan_id
               FOR UPDATE) AS old
     WHERE f.id = old.id
    RETURNING f.id, old.status
$$;
