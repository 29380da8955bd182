-- receive_github_delivery: what the HTTP intake does with a GitHub webhook delivery once its signature
-- is verified — record the delivery id (replay protection) and, for a pull request opened,
-- synchronized or reopened on a known repository with PR review on, enqueue its review — all in one
-- transaction. A DBA can replay a delivery by hand the same way:
--   SELECT * FROM nightshift.receive_github_delivery('72d3162e-cc78-11e3-81ab-4c9367dc0958',
--                                                    'pull_request', pg_read_file('opened.json')::jsonb);
--
-- Outcomes: 'unknown-repository' (the payload names a repository Nightshift does not know: nothing is
-- recorded), 'duplicate' (this delivery id was received before: nothing happens, also when the same id
-- arrives twice at the same moment — the second insert waits for the first and then conflicts),
-- 'ignored' (another event or action, or no repository), or enqueue_pr_review's outcome
-- ('enqueued', 'replaced', 'superseded', 'in-flight', 'stale', 'review-disabled'), or for a pull request
-- closed and merged whose branch is an open drift remediation's, 'remediation-merged'
-- (nightshift.remediation_merged: the next drift scan verifies it).
CREATE OR REPLACE FUNCTION nightshift.receive_github_delivery(
    p_delivery_id text,
    p_event text,
    p_payload jsonb
) RETURNS TABLE (outcome text, task_id bigint, repository_id bigint)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_pr jsonb := p_payload -> 'pull_request';
BEGIN
    /* record the delivery once; enqueue a pr-review when it asks for one */
    IF coalesce(p_delivery_id, '') = '' OR coalesce(p_event, '') = '' THEN
        RAISE EXCEPTION 'a delivery needs its id and event name' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT m.id INTO repository_id FROM nightshift.match_github_repository(p_payload -> 'repository') AS m;
    IF repository_id IS NULL AND p_payload ? 'repository' THEN
        -- not recorded: once the repository is registered, GitHub's redelivery goes through
        outcome := 'unknown-repository';
        RETURN NEXT;
        RETURN;
    END IF;
    INSERT INTO nightshift.webhook_deliveries (delivery_id, source, event)
    VALUES (p_delivery_id, 'github', p_event)
    ON CONFLICT (delivery_id) DO NOTHING;
    IF NOT FOUND THEN
        outcome := 'duplicate';
        RETURN NEXT;
        RETURN;
    END IF;

    IF p_event = 'pull_request' AND p_payload ->> 'action' = 'closed' THEN
        outcome := CASE WHEN repository_id IS NOT NULL AND jsonb_typeof(v_pr -> 'merged') = 'boolean'
                              AND (v_pr ->> 'merged')::boolean
                              AND nightshift.remediation_merged(
                                      repository_id, v_pr -> 'head' ->> 'ref',
                                      coalesce((v_pr ->> 'merged_at')::timestamptz, now())) IS NOT NULL
                        THEN 'remediation-merged' ELSE 'ignored' END;
    ELSIF p_event <> 'pull_request'
       OR NOT coalesce(p_payload ->> 'action' = ANY (ARRAY['opened', 'synchronize', 'reopened']), false) THEN
        outcome := 'ignored';
    ELSIF jsonb_typeof(p_payload -> 'number') IS DISTINCT FROM 'number'
          OR jsonb_typeof(v_pr -> 'head' -> 'sha') IS DISTINCT FROM 'string' THEN
        RAISE EXCEPTION 'a pull_request delivery without number or head sha'
            USING ERRCODE = 'invalid_parameter_value';
    ELSE
        SELECT e.task_id, e.outcome INTO task_id, outcome
          FROM nightshift.enqueue_pr_review(
                   repository_id, (p_payload ->> 'number')::integer,
                   jsonb_strip_nulls(jsonb_build_object(
                       'action', p_payload ->> 'action',
                       'delivery_id', p_delivery_id,
                       'full_name', p_payload -> 'repository' ->> 'full_name',
                       'clone_url', p_payload -> 'repository' ->> 'clone_url',
                       'base_ref', v_pr -> 'base' ->> 'ref',
                       'base_sha', v_pr -> 'base' ->> 'sha',
                       'head_ref', v_pr -> 'head' ->> 'ref',
                       'head_sha', v_pr -> 'head' ->> 'sha',
                       -- a fork's head lives in another repository
                       'head_clone_url', v_pr -> 'head' -> 'repo' ->> 'clone_url',
                       'html_url', v_pr ->> 'html_url',
                       'draft', v_pr -> 'draft',
                       'updated_at', v_pr ->> 'updated_at'))) AS e;
        UPDATE nightshift.webhook_deliveries AS d SET task_id = receive_github_delivery.task_id
         WHERE d.delivery_id = p_delivery_id AND receive_github_delivery.task_id IS NOT NULL;
    END IF;
    RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION nightshift.receive_github_delivery(text, text, jsonb) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.receive_github_delivery(text, text, jsonb) TO nightshift_dispatcher;
    END IF;
END
$$;

-- receive_github_deliveries: receive_github_delivery for many deliveries in one transaction — one
-- commit (one WAL flush) for a whole batch. The intake sends what arrived while its previous batch was
-- committing. Each element is {"delivery_id": ..., "event": ..., "payload": {...}}; each runs in its own
-- subtransaction, so one refused delivery (outcome 'invalid', with the error) leaves the others alone.
-- Rows come back in the order of the array (ordinal is 1-based).
-- An element may carry "secret_ref": the secret reference its signature was verified with (null: the
-- global secret). When that is no longer the repository's (its secret was changed, or it is gone
-- since the caller looked it up), the outcome is 'recheck' and nothing is recorded: the caller must
-- look the repository up again and verify anew.
CREATE OR REPLACE FUNCTION nightshift.receive_github_deliveries(p_deliveries jsonb)
RETURNS TABLE (ordinal integer, outcome text, task_id bigint, repository_id bigint, error text)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_delivery jsonb;
    v_position bigint;
BEGIN
    /* one row per delivery, in order */
    FOR v_delivery, v_position IN
        SELECT d.value, d.ordinality FROM jsonb_array_elements(p_deliveries) WITH ORDINALITY AS d
    LOOP
        ordinal := v_position;
        error := NULL;
        IF v_delivery ? 'secret_ref' AND NOT EXISTS (
               SELECT FROM nightshift.match_github_repository(v_delivery -> 'payload' -> 'repository') AS m
                WHERE m.webhook_secret_ref IS NOT DISTINCT FROM v_delivery ->> 'secret_ref') THEN
            outcome := 'recheck';
            task_id := NULL;
            repository_id := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        BEGIN
            SELECT r.outcome, r.task_id, r.repository_id INTO outcome, task_id, repository_id
              FROM nightshift.receive_github_delivery(v_delivery ->> 'delivery_id', v_delivery ->> 'event',
                                                      v_delivery -> 'payload') AS r;
        EXCEPTION WHEN invalid_parameter_value OR invalid_text_representation
                       OR numeric_value_out_of_range THEN
            outcome := 'invalid';
            task_id := NULL;
            repository_id := NULL;
            error := SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION nightshift.receive_github_deliveries(jsonb) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.receive_github_deliveries(jsonb) TO nightshift_dispatcher;
    END IF;
END
$$;
