-- apply_forge_changes: store what an agent did on the local forge (dispatcher/forge/local.py), in the
-- transaction that completes its task (record_result calls it with the result's `forge` list).
-- Each element is one operation:
--   {"op": "open", "repository_id", "head_ref", "base_ref", "head_sha", "title", "body"}
--        a pull request, numbered here (the repository's next number); an open one for the same
--        branch is kept (opening twice is finding it)
--   {"op": "comment", "repository_id", "number" | "head_ref", "marker", "body"}
--        the comment holding `marker` replaced, else added: one comment per marker
--   {"op": "status", "repository_id", "sha", "context", "state", "description", "target_url", "number"?}
--        a commit status on the open pull requests whose head is `sha` (or on pull request `number`)
-- Returns how many operations changed a row. An operation naming no known repository is an error.
CREATE OR REPLACE FUNCTION nightshift.apply_forge_changes(p_task_id bigint, p_changes jsonb)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_op jsonb;
    v_repository bigint;
    v_count integer;
    v_changed integer := 0;
BEGIN
    /* apply the local forge's operations of one task result */
    IF p_changes IS NULL OR jsonb_typeof(p_changes) = 'null' THEN
        RETURN 0;
    END IF;
    IF jsonb_typeof(p_changes) <> 'array' THEN
        RAISE EXCEPTION 'forge changes must be a JSON array, not %', jsonb_typeof(p_changes)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR v_op IN SELECT e FROM jsonb_array_elements(p_changes) AS e LOOP
        -- the repository row is locked: numbering is max + 1 per repository
        SELECT r.id INTO v_repository FROM nightshift.repositories AS r
         WHERE r.id = (v_op ->> 'repository_id')::bigint FOR UPDATE;
        IF v_repository IS NULL THEN
            RAISE EXCEPTION 'forge change % names no known repository', v_op ->> 'op'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        CASE v_op ->> 'op'
            WHEN 'open' THEN
                INSERT INTO nightshift.pull_requests (repository_id, number, head_ref, base_ref, head_sha,
                                                      title, body, task_id)
                SELECT v_repository,
                       coalesce((SELECT max(p.number) FROM nightshift.pull_requests AS p
                                  WHERE p.repository_id = v_repository), 0) + 1,
                       v_op ->> 'head_ref', v_op ->> 'base_ref', v_op ->> 'head_sha',
                       coalesce(v_op ->> 'title', ''), coalesce(v_op ->> 'body', ''), p_task_id
                ON CONFLICT (repository_id, head_ref) WHERE state = 'open' DO NOTHING;
            WHEN 'comment' THEN
                UPDATE nightshift.pull_requests AS p
                   SET comments = p.comments || jsonb_build_object(v_op ->> 'marker', v_op ->> 'body'),
                       updated_at = now()
                 WHERE p.repository_id = v_repository
                   AND CASE WHEN v_op ? 'number' THEN p.number = (v_op ->> 'number')::integer
                            ELSE p.head_ref = v_op ->> 'head_ref' AND p.state = 'open' END;
            WHEN 'status' THEN
                UPDATE nightshift.pull_requests AS p
                   SET statuses = p.statuses || jsonb_build_object(coalesce(v_op ->> 'context', 'default'),
                           jsonb_build_object('sha', v_op ->> 'sha', 'state', v_op ->> 'state',
                                              'description', v_op ->> 'description',
                                              'target_url', v_op -> 'target_url', 'at', now())),
                       updated_at = now()
                 WHERE p.repository_id = v_repository
                   AND CASE WHEN v_op ? 'number' THEN p.number = (v_op ->> 'number')::integer
                            ELSE p.state = 'open' AND p.head_sha = v_op ->> 'sha' END;
            ELSE
                RAISE EXCEPTION 'unknown forge change %', quote_nullable(v_op ->> 'op')
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'operations are open, comment, status';
        END CASE;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        v_changed := v_changed + v_count;
    END LOOP;
    RETURN v_changed;
END
$$;

REVOKE ALL ON FUNCTION nightshift.apply_forge_changes(bigint, jsonb) FROM PUBLIC;
