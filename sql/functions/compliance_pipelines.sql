-- compliance_pipelines: the pipelines a cloud integration's compliance scans check with Checkov, for
-- the agent (task_targets puts this array under `pipelines`).
--
-- Which pipelines: those linked in nightshift.cloud_integration_pipelines; an integration without links
-- covers every pipeline of every repository of its organization. A link to a pipeline of another
-- organization is ignored (an integration never scans a tenant it does not belong to).
--
-- Each element: {pipeline, repository, previous, open_findings}
--   previous       what the integration's last successful (non-ERROR) compliance scan recorded about
--                  this pipeline in its summary: tree_sha256, checkov_version, checks, resources; {} if
--                  that scan did not cover it
--   open_findings  the compliance findings that scan saw for this pipeline, as the agent reported them,
--                  so an unchanged tree can be reported again without running Checkov
CREATE OR REPLACE FUNCTION nightshift.compliance_pipelines(p_cloud_integration_id bigint)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_subject text := 'cloud_integration/' || p_cloud_integration_id;
    v_scan nightshift.scans;
    v_linked boolean;
    v_result jsonb;
BEGIN
    /* the pipelines of integration p_cloud_integration_id, each with its last scan's tree and findings */
    SELECT * INTO v_scan
      FROM nightshift.scans AS s
     WHERE s.subject = v_subject AND s.kind = 'compliance-scan' AND s.status <> 'ERROR'
     ORDER BY s.finished_at DESC, s.id DESC
     LIMIT 1;
    v_linked := EXISTS (SELECT FROM nightshift.cloud_integration_pipelines AS l
                         WHERE l.cloud_integration_id = p_cloud_integration_id);

    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'pipeline', to_jsonb(p),
               'repository', to_jsonb(r),
               'previous', coalesce((
                   SELECT e.doc FROM jsonb_array_elements(coalesce(v_scan.summary -> 'pipelines', '[]')) AS e(doc)
                    WHERE e.doc ->> 'pipeline_id' = p.id::text LIMIT 1), '{}'),
               'open_findings', coalesce((
                   SELECT jsonb_agg(f.details || jsonb_build_object(
                              'kind', f.kind, 'fingerprint', f.fingerprint, 'address', f.resource_address,
                              'type', f.resource_type, 'check_id', f.check_id, 'severity', f.severity,
                              'provider_id', f.provider_id) ORDER BY f.id)
                     FROM nightshift.findings AS f
                    WHERE f.subject = v_subject AND f.kind = 'compliance'
                      AND f.last_scan_id = v_scan.id
                      AND f.details ->> 'scanner' = 'checkov'
                      AND f.details ->> 'pipeline_id' = p.id::text), '[]')
           ) ORDER BY p.id), '[]')
      INTO v_result
      FROM nightshift.cloud_integrations AS c
      JOIN nightshift.repositories AS r ON r.organization_id = c.organization_id
      JOIN nightshift.pipelines AS p ON p.repository_id = r.id
     WHERE c.id = p_cloud_integration_id
       AND (NOT v_linked OR EXISTS (SELECT FROM nightshift.cloud_integration_pipelines AS l
                                     WHERE l.cloud_integration_id = c.id AND l.pipeline_id = p.id));
    RETURN v_result;
END
$$;
