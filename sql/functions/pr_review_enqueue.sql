-- enqueue_pr_review: one pr-review task for a pull request, subject 'pr/<repository id>/<number>'.
-- Called by the HTTP intake for pull_request opened/synchronize/reopened (receive_github_delivery),
-- and by anyone from psql:
--   SELECT * FROM nightshift.enqueue_pr_review(5, 2, '{"head_sha": "ec26c3e5", "base_ref": "master"}');
--
-- A pull request has at most one review in flight (rule 3). When one is already there:
--   queued   its payload is replaced by the newer one ('replaced'): a second push before the review
--            started reviews only the newest head, once;
--   running  on the same head nothing changes ('in-flight'); on another head the running review is
--            cancelled — its holder is fenced off, as by cancel_task — and the new head is queued
--            ('superseded'): a review of an outdated head is worth nothing.
-- Deliveries can arrive out of order: a payload whose updated_at is older than the in-flight one's
-- changes nothing ('stale'). The repository must exist and have pr_review_enabled; otherwise the
-- outcome is 'unknown-repository' or 'review-disabled' and nothing is enqueued.
CREATE OR REPLACE FUNCTION nightshift.enqueue_pr_review(
    p_repository_id bigint,
    p_number integer,
    p_payload jsonb DEFAULT '{}'
) RETURNS TABLE (task_id bigint, outcome text)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_subject constant text := 'pr/' || p_repository_id || '/' || p_number;
    v_payload jsonb;
    v_enabled boolean;
    v_task record;
    v_superseded boolean := false;
BEGIN
    /* enqueue, replace or supersede the review of one pull request; returns the task and what happened */
    IF p_number IS NULL OR p_number < 1 THEN
        RAISE EXCEPTION 'a pull request number is a positive integer, got %', p_number
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT r.pr_review_enabled INTO v_enabled FROM nightshift.repositories AS r WHERE r.id = p_repository_id;
    IF v_enabled IS NULL OR NOT v_enabled THEN
        task_id := NULL;
        outcome := CASE WHEN v_enabled IS NULL THEN 'unknown-repository' ELSE 'review-disabled' END;
        RETURN NEXT;
        RETURN;
    END IF;
    -- the agent never sees the database: how to reach the forge (a token's reference, never its
    -- value), which roots get a plan (the names of the variables it may see, never a value) and the
    -- repository's tool travel in the payload
    v_payload := coalesce(p_payload, '{}')
                 || jsonb_build_object('repository_id', p_repository_id, 'number', p_number)
                 || nightshift.pr_review_context(p_repository_id);

    -- The in-flight task can finish between the insert and the lock: then try again.
    FOR v_round IN 1..5 LOOP
        INSERT INTO nightshift.tasks (kind, subject, payload)
        VALUES ('pr-review', v_subject, v_payload)
        ON CONFLICT (kind, subject) WHERE status IN ('queued', 'running') DO NOTHING
        RETURNING id INTO task_id;
        IF task_id IS NOT NULL THEN
            outcome := CASE WHEN v_superseded THEN 'superseded' ELSE 'enqueued' END;
            RETURN NEXT;
            RETURN;
        END IF;

        SELECT t.id, t.status, t.payload INTO v_task
          FROM nightshift.tasks AS t
         WHERE t.kind = 'pr-review' AND t.subject = v_subject AND t.status IN ('queued', 'running')
           FOR UPDATE;
        CONTINUE WHEN NOT FOUND;
        task_id := v_task.id;

        IF nightshift.pr_review_is_older(v_payload, v_task.payload) THEN
            outcome := 'stale';
        ELSIF v_task.status = 'queued' THEN
            UPDATE nightshift.tasks SET payload = v_payload WHERE id = v_task.id;
            outcome := 'replaced';
        ELSIF (v_task.payload ->> 'head_sha') IS NOT DISTINCT FROM (v_payload ->> 'head_sha') THEN
            outcome := 'in-flight';
        ELSE
            UPDATE nightshift.tasks
               SET status = 'cancelled', locked_until = NULL, finished_at = now(),
                   last_error = 'superseded by a newer head of the pull request'
             WHERE id = v_task.id;
            v_superseded := true;
            CONTINUE;
        END IF;
        RETURN NEXT;
        RETURN;
    END LOOP;
    RAISE EXCEPTION 'could not enqueue the review of % (its in-flight task kept changing)', v_subject
        USING ERRCODE = 'serialization_failure';
END
$$;

-- pr_review_is_older: whether payload p_new describes the pull request as it was before p_old did,
-- by GitHub's pull_request.updated_at (kept in the payload as updated_at). Unknown or malformed
-- times count as newer: a delivery is never dropped for want of a timestamp.
CREATE OR REPLACE FUNCTION nightshift.pr_review_is_older(p_new jsonb, p_old jsonb)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    /* true only when both times are ISO 8601 UTC timestamps and the new one is earlier */
    SELECT coalesce(
        CASE WHEN p_new ->> 'updated_at' ~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$'
              AND p_old ->> 'updated_at' ~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$'
             THEN (p_new ->> 'updated_at')::timestamp < (p_old ->> 'updated_at')::timestamp
        END, false)
$$;

REVOKE ALL ON FUNCTION nightshift.enqueue_pr_review(bigint, integer, jsonb) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_dispatcher') THEN
        GRANT EXECUTE ON FUNCTION nightshift.enqueue_pr_review(bigint, integer, jsonb) TO nightshift_dispatcher;
    END IF;
END
$$;
