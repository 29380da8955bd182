-- task_targets: the rows describing a task's subject, for agents that ask for them (needs_targets).
--
--   pipeline/<id>           {pipeline, repository, organization, schedule,   schedule: its drift-scan row
--                            remediations, forge}                           remediations: its open pull
--                                                  requests [{id, branch, commit, pr_number, opened_at}],
--                                                  so the scan can tell which the default branch merged;
--                                                  forge: forge_of_repository, when there are any
--   cloud_integration/<id>  {cloud_integration, organization, schedule,      schedule: its compliance-scan row
--                            pipelines}                                     pipelines: compliance_pipelines()
--   organization/<id>       {organization, schedule}                         schedule: its cost-analysis row
--   repository/<id>         {repository, organization}
--
-- Each value is the row as jsonb (to_jsonb), `schedule` is null when the target has none. An unknown or
-- malformed subject, or one whose row is gone, is an error: the dispatcher fails the task with it.
CREATE OR REPLACE FUNCTION nightshift.task_targets(p_subject text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_ref record;
    v_targets jsonb;
BEGIN
    /* the subject's target rows as one jsonb object */
    v_ref := nightshift.parse_subject(p_subject);
    CASE v_ref.target_type
        WHEN 'pipeline' THEN
            SELECT jsonb_build_object('pipeline', to_jsonb(p), 'repository', to_jsonb(r),
                                      'organization', to_jsonb(o), 'schedule', to_jsonb(s),
                                      'remediations', coalesce(m.open, '[]'),
                                      'forge', CASE WHEN m.open IS NOT NULL
                                                    THEN nightshift.forge_of_repository(r.id) END)
              INTO v_targets
              FROM nightshift.pipelines AS p
              JOIN nightshift.repositories AS r ON r.id = p.repository_id
              JOIN nightshift.organizations AS o ON o.id = r.organization_id
              LEFT JOIN nightshift.schedules AS s ON s.pipeline_id = p.id AND s.kind = 'drift-scan'
              -- the pull requests a scan of the default branch may find merged (remediations_seen_merged)
              LEFT JOIN LATERAL (
                  SELECT jsonb_agg(jsonb_build_object('id', x.id, 'branch', x.branch, 'commit', x.commit_sha,
                                                      'pr_number', x.pr_number, 'opened_at', x.pr_opened_at)
                                   ORDER BY x.id) AS open
                    FROM nightshift.remediations AS x
                   WHERE x.subject = 'pipeline/' || p.id AND x.status = 'pr_opened' AND x.branch IS NOT NULL
              ) AS m ON true
             WHERE p.id = v_ref.target_id;
        WHEN 'cloud_integration' THEN
            SELECT jsonb_build_object('cloud_integration', to_jsonb(c), 'organization', to_jsonb(o),
                                      'schedule', to_jsonb(s),
                                      'pipelines', nightshift.compliance_pipelines(c.id))
              INTO v_targets
              FROM nightshift.cloud_integrations AS c
              JOIN nightshift.organizations AS o ON o.id = c.organization_id
              LEFT JOIN nightshift.schedules AS s
                     ON s.cloud_integration_id = c.id AND s.kind = 'compliance-scan'
             WHERE c.id = v_ref.target_id;
        WHEN 'organization' THEN
            SELECT jsonb_build_object('organization', to_jsonb(o), 'schedule', to_jsonb(s))
              INTO v_targets
              FROM nightshift.organizations AS o
              LEFT JOIN nightshift.schedules AS s ON s.organization_id = o.id AND s.kind = 'cost-analysis'
             WHERE o.id = v_ref.target_id;
        WHEN 'repository' THEN
            SELECT jsonb_build_object('repository', to_jsonb(r), 'organization', to_jsonb(o))
              INTO v_targets
              FROM nightshift.repositories AS r
              JOIN nightshift.organizations AS o ON o.id = r.organization_id
             WHERE r.id = v_ref.target_id;
        ELSE
            RAISE EXCEPTION 'task_targets: malformed subject %', quote_nullable(p_subject)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'a subject is pipeline/<id>, cloud_integration/<id>, organization/<id> '
                             'or repository/<id>';
    END CASE;
    IF v_targets IS NULL THEN
        RAISE EXCEPTION 'task_targets: % does not exist', p_subject
            USING ERRCODE = 'no_data_found',
                  HINT = 'the target was deleted after the task was queued';
    END IF;
    RETURN v_targets;
END
$$;

-- SECURITY DEFINER: nobody but the roles granted below may call it
REVOKE ALL ON FUNCTION nightshift.task_targets(text) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.task_targets(text) TO nightshift_dispatcher;
    END IF;
END
$$;
