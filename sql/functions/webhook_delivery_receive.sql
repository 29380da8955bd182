-- receive_github_deliveries: what the HTTP intake does with GitHub webhook deliveries once their
-- signatures are verified — record each delivery id (replay protection) and, for a pull request
-- opened, synchronized or reopened on a known repository with PR review on, enqueue its review — for a
-- whole batch in one transaction: one commit (one WAL flush) for every delivery that arrived while the
-- intake's previous batch was committing. Each element is {"delivery_id": ..., "event": ...,
-- "payload": {...}}; one row comes back per element, ordinal being its 1-based position (the
-- reviews come last: ORDER BY ordinal for the batch's order).
--
-- Outcomes, per delivery:
--   'invalid'             no id or event, or a pull_request without a usable number or head sha (with
--                         the error); nothing is recorded, the others of the batch go on
--   'recheck'             the element carries "secret_ref", the secret reference its signature was
--                         verified with (null: the global secret), and that is no longer the
--                         repository's (changed, or the repository is gone since the caller looked it
--                         up): nothing is recorded; the caller looks the repository up again
--   'unknown-repository'  the payload names a repository Nightshift does not know: not recorded, so
--                         GitHub's redelivery goes through once it is registered
--   'duplicate'           this delivery id was received before (also earlier in the same batch, or by
--                         a concurrent batch: the insert waits for that one and then conflicts)
--   'ignored'             another event or action; 'review-disabled' when the repository has PR review off
--   'remediation-merged'  a pull request closed and merged whose branch is an open drift remediation's
--                         (nightshift.remediation_merged: the next drift scan verifies it)
--   or enqueue_pr_review's outcome: 'enqueued', 'replaced', 'superseded', 'in-flight', 'stale'.
--
-- Cost: the deliveries are recorded one by one (each must know whether it is a replay), but their
-- reviews are inserted by ONE statement (one run of the tasks NOTIFY trigger per batch) and linked to
-- their deliveries by one UPDATE; only a pull request that already has a review in flight (or two
-- deliveries of one pull request in the batch) goes through enqueue_pr_review's replace/supersede rules.
CREATE OR REPLACE FUNCTION nightshift.receive_github_deliveries(p_deliveries jsonb)
RETURNS TABLE (ordinal integer, outcome text, task_id bigint, repository_id bigint, error text)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_item record;
    v_payload jsonb;
    v_number numeric;
    v_record boolean;  -- whether the delivery id is recorded (refused deliveries are not)
    -- reviews to enqueue, in batch order
    v_ordinals integer[] := '{}';
    v_repositories bigint[] := '{}';
    v_numbers integer[] := '{}';
    v_payloads jsonb[] := '{}';
    v_inserted jsonb;  -- delivery id -> id of the task the one INSERT made for it
    -- deliveries that got a task, to link in one UPDATE
    v_linked_deliveries text[] := '{}';
    v_linked_tasks bigint[] := '{}';
BEGIN
    /* record every delivery, enqueue the reviews they ask for; one row per delivery */
    FOR v_item IN
        SELECT d.ordinality::integer AS ord, d.value ->> 'delivery_id' AS delivery_id,
               d.value ->> 'event' AS event, d.value -> 'payload' AS payload,
               d.value ? 'secret_ref' AS checks_secret, d.value ->> 'secret_ref' AS secret_ref,
               m.id AS repository_id, m.pr_review_enabled, m.webhook_secret_ref
          FROM jsonb_array_elements(p_deliveries) WITH ORDINALITY AS d
          LEFT JOIN LATERAL nightshift.match_github_repository(d.value -> 'payload' -> 'repository') AS m ON true
         ORDER BY d.ordinality
    LOOP
        ordinal := v_item.ord;
        task_id := NULL;
        repository_id := v_item.repository_id;
        error := NULL;
        v_payload := v_item.payload;
        v_record := false;
        IF coalesce(v_item.delivery_id, '') = '' OR coalesce(v_item.event, '') = '' THEN
            outcome := 'invalid';
            error := 'a delivery needs its id and event name';
        ELSIF v_item.checks_secret AND (v_item.repository_id IS NULL
                                        OR v_item.webhook_secret_ref IS DISTINCT FROM v_item.secret_ref) THEN
            outcome := 'recheck';
            repository_id := NULL;
        ELSIF v_item.repository_id IS NULL AND v_payload ? 'repository' THEN
            outcome := 'unknown-repository';
        ELSE
            v_record := true;
        END IF;
        IF NOT v_record THEN
            NULL;  -- refused above: nothing recorded
        ELSIF v_item.event = 'pull_request' AND v_payload ->> 'action' = 'closed'
              AND jsonb_typeof(v_payload -> 'pull_request' -> 'merged') = 'boolean'
              AND (v_payload -> 'pull_request' ->> 'merged')::boolean AND v_item.repository_id IS NOT NULL THEN
            outcome := 'merged';  -- recorded below, then looked up among the drift remediations
        ELSIF v_item.event <> 'pull_request'
              OR NOT coalesce(v_payload ->> 'action' = ANY (ARRAY['opened', 'synchronize', 'reopened']), false) THEN
            outcome := 'ignored';
        ELSE
            v_number := CASE WHEN jsonb_typeof(v_payload -> 'number') = 'number'
                             THEN (v_payload -> 'number')::numeric END;
            IF v_number IS NULL OR v_number <> trunc(v_number) OR v_number NOT BETWEEN 1 AND 2147483647
               OR jsonb_typeof(v_payload -> 'pull_request' -> 'head' -> 'sha') IS DISTINCT FROM 'string' THEN
                outcome := 'invalid';
                error := 'a pull_request delivery needs a positive integer number and pull_request.head.sha';
                v_record := false;
            ELSIF v_item.repository_id IS NULL THEN  -- the payload names no repository at all
                outcome := 'unknown-repository';
            ELSIF NOT v_item.pr_review_enabled THEN
                outcome := 'review-disabled';
            ELSE
                outcome := 'review';  -- recorded below, enqueued after the loop
            END IF;
        END IF;

        IF v_record THEN
            INSERT INTO nightshift.webhook_deliveries (delivery_id, source, event)
            VALUES (v_item.delivery_id, 'github', v_item.event)
            ON CONFLICT (delivery_id) DO NOTHING;
            IF NOT FOUND THEN
                outcome := 'duplicate';
            END IF;
        END IF;

        IF outcome = 'merged' THEN
            -- a pull request closed and merged whose branch is an open drift remediation's: the next
            -- drift scan verifies it (nightshift.remediation_merged)
            outcome := CASE WHEN nightshift.remediation_merged(
                                     v_item.repository_id, v_payload -> 'pull_request' -> 'head' ->> 'ref',
                                     coalesce((v_payload -> 'pull_request' ->> 'merged_at')::timestamptz, now()))
                                 IS NOT NULL
                            THEN 'remediation-merged' ELSE 'ignored' END;
        END IF;

        IF outcome = 'review' THEN
            v_ordinals := v_ordinals || v_item.ord;
            v_repositories := v_repositories || v_item.repository_id;
            v_numbers := v_numbers || v_number::integer;
            v_payloads := v_payloads || nightshift.pr_review_payload(v_item.delivery_id, v_payload);
        ELSE
            RETURN NEXT;
        END IF;
    END LOOP;

    IF cardinality(v_ordinals) = 0 THEN
        RETURN;
    END IF;
    -- every review whose pull request has none in flight, in one statement. Sorted by pull request, so
    -- that concurrent batches wait for each other's pull requests in one order rather than deadlock;
    -- in batch order within one: of two deliveries of a pull request the first is inserted here and
    -- the second replaces it below
    WITH inserted AS (
        INSERT INTO nightshift.tasks (kind, subject, payload)
        SELECT 'pr-review', 'pr/' || w.repository_id || '/' || w.number,
               -- as enqueue_pr_review does: the forge (a token's reference, never its value), plans, tool
               w.payload || jsonb_build_object('repository_id', w.repository_id, 'number', w.number)
                         || nightshift.pr_review_context(w.repository_id)
          FROM unnest(v_ordinals, v_repositories, v_numbers, v_payloads) AS w(ord, repository_id, number, payload)
         ORDER BY w.repository_id, w.number, w.ord
        ON CONFLICT (kind, subject) WHERE status IN ('queued', 'running') DO NOTHING
        RETURNING id, payload ->> 'delivery_id' AS delivery_id
    )
    SELECT coalesce(jsonb_object_agg(i.delivery_id, i.id), '{}') INTO v_inserted FROM inserted AS i;

    FOR i IN 1 .. cardinality(v_ordinals) LOOP
        ordinal := v_ordinals[i];
        repository_id := v_repositories[i];
        error := NULL;
        task_id := (v_inserted ->> (v_payloads[i] ->> 'delivery_id'))::bigint;
        IF task_id IS NOT NULL THEN
            outcome := 'enqueued';
        ELSE  -- a review of this pull request is in flight: replace, supersede or keep it
            SELECT e.task_id, e.outcome INTO task_id, outcome
              FROM nightshift.enqueue_pr_review(v_repositories[i], v_numbers[i], v_payloads[i]) AS e;
        END IF;
        IF task_id IS NOT NULL THEN
            v_linked_deliveries := v_linked_deliveries || (v_payloads[i] ->> 'delivery_id');
            v_linked_tasks := v_linked_tasks || task_id;
        END IF;
        RETURN NEXT;
    END LOOP;

    UPDATE nightshift.webhook_deliveries AS d SET task_id = l.task_id
      FROM unnest(v_linked_deliveries, v_linked_tasks) AS l(delivery_id, task_id)
     WHERE d.delivery_id = l.delivery_id;
END
$$;

-- pr_review_payload: the pr-review task's payload taken from a pull_request delivery (enqueue_pr_review
-- adds repository_id and number). The pr-review agent reads these fields: keep their names.
CREATE OR REPLACE FUNCTION nightshift.pr_review_payload(p_delivery_id text, p_payload jsonb)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    /* refs and SHAs of both sides, the clone URLs, and what orders deliveries (updated_at) */
    SELECT jsonb_strip_nulls(jsonb_build_object(
               'action', p_payload ->> 'action',
               'delivery_id', p_delivery_id,
               'full_name', p_payload -> 'repository' ->> 'full_name',
               'clone_url', p_payload -> 'repository' ->> 'clone_url',
               'base_ref', p_payload -> 'pull_request' -> 'base' ->> 'ref',
               'base_sha', p_payload -> 'pull_request' -> 'base' ->> 'sha',
               'head_ref', p_payload -> 'pull_request' -> 'head' ->> 'ref',
               'head_sha', p_payload -> 'pull_request' -> 'head' ->> 'sha',
               -- a fork's head lives in another repository
               'head_clone_url', p_payload -> 'pull_request' -> 'head' -> 'repo' ->> 'clone_url',
               'html_url', p_payload -> 'pull_request' ->> 'html_url',
               'draft', p_payload -> 'pull_request' -> 'draft',
               'updated_at', p_payload -> 'pull_request' ->> 'updated_at'))
$$;

-- receive_github_delivery: receive_github_deliveries for one delivery, as a DBA replays one by hand:
--   SELECT * FROM nightshift.receive_github_delivery('72d3162e-cc78-11e3-81ab-4c9367dc0958',
--                                                    'pull_request', pg_read_file('opened.json')::jsonb);
-- An invalid delivery is an error here (invalid_parameter_value) rather than an outcome.
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
    v_error text;
BEGIN
    /* one delivery through the batch function */
    SELECT r.outcome, r.task_id, r.repository_id, r.error INTO outcome, task_id, repository_id, v_error
      FROM nightshift.receive_github_deliveries(jsonb_build_array(jsonb_build_object(
               'delivery_id', p_delivery_id, 'event', p_event, 'payload', p_payload))) AS r;
    IF outcome = 'invalid' THEN
        RAISE EXCEPTION '%', v_error USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION nightshift.receive_github_deliveries(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION nightshift.receive_github_delivery(text, text, jsonb) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.receive_github_deliveries(jsonb) TO nightshift_dispatcher;
        GRANT EXECUTE ON FUNCTION nightshift.receive_github_delivery(text, text, jsonb) TO nightshift_dispatcher;
    END IF;
END
$$;
