-- load_framework: a framework file's requirements and check mappings, replacing what the same source
-- loaded before (a new Prowler version may drop a requirement or move a check), in one statement each.
--
-- p_requirements: [{requirement, title, section, assessment, mappings: [{scanner, check_id, source,
-- judgement}]}]. Requirements of p_source_name not in the list are deleted with their mappings.
-- Returns (requirements, mappings) loaded.
CREATE OR REPLACE FUNCTION nightshift.load_framework(
    p_source_name text, p_framework text, p_version text, p_provider text, p_requirements jsonb,
    OUT requirements integer, OUT mappings integer
)
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    /* replace the requirements and mappings of framework file p_source_name */
    DELETE FROM nightshift.compliance_requirements AS r
     WHERE r.source_name = p_source_name
       AND r.requirement NOT IN (SELECT e.doc ->> 'requirement' FROM jsonb_array_elements(p_requirements) AS e(doc));

    WITH input AS (
        SELECT e.doc FROM jsonb_array_elements(p_requirements) AS e(doc)
    ), up AS (
        INSERT INTO nightshift.compliance_requirements AS r
               (framework, framework_version, provider, source_name, requirement, title, section, assessment)
        SELECT p_framework, coalesce(p_version, ''), p_provider, p_source_name, i.doc ->> 'requirement',
               i.doc ->> 'title', i.doc ->> 'section', coalesce(i.doc ->> 'assessment', 'automated')
          FROM input AS i
        ON CONFLICT ON CONSTRAINT compliance_requirements_source_key DO UPDATE
           SET framework = EXCLUDED.framework, framework_version = EXCLUDED.framework_version,
               provider = EXCLUDED.provider, title = EXCLUDED.title, section = EXCLUDED.section,
               assessment = EXCLUDED.assessment, loaded_at = now()
        RETURNING r.id, r.requirement
    )
    SELECT count(*) INTO requirements FROM up;

    DELETE FROM nightshift.compliance_check_mappings AS m
     USING nightshift.compliance_requirements AS r
     WHERE m.requirement_id = r.id AND r.source_name = p_source_name;

    INSERT INTO nightshift.compliance_check_mappings (requirement_id, scanner, check_id, source, judgement)
    SELECT DISTINCT ON (r.id, m.doc ->> 'scanner', m.doc ->> 'check_id')
           r.id, m.doc ->> 'scanner', m.doc ->> 'check_id', m.doc ->> 'source',
           coalesce((m.doc ->> 'judgement')::boolean, false)
      FROM jsonb_array_elements(p_requirements) AS e(doc)
      JOIN nightshift.compliance_requirements AS r
        ON r.source_name = p_source_name AND r.requirement = e.doc ->> 'requirement'
     CROSS JOIN LATERAL jsonb_array_elements(coalesce(e.doc -> 'mappings', '[]')) AS m(doc);
    GET DIAGNOSTICS mappings = ROW_COUNT;
END
$$;
