-- remediations_seen_merged: the remediation pull requests a drift scan of the default branch found
-- merged, marked `merged` in the scan's own result transaction, so that the same scan then verifies
-- them or fails them with the drift that remains (nightshift.verify_remediations), exactly as after a
-- pull_request closed+merged webhook. Called by record_result with the result's "merged" section:
--   [{"remediation_id": 7, "branch": "nightshift/drift-network-7", "commit": "<sha>",
--     "how": "contained" | "forge", "merged_at": "2026-11-29T01:00:00Z" | null, "evidence": "..."}]
--   contained  the branch head the remediation pushed (remediations.commit_sha) is an ancestor of the
--              scanned commit (`git merge-base --is-ancestor`): a merge commit or a fast-forward
--   forge      the forge says the pull request (remediations.pr_number) was merged: a squash or
--              rebase merge, whose commits are new ones
-- The agent reports; this function decides: only a remediation of the scan's own subject whose pull
-- request is open, on the branch named, with the same head commit (contained) or pull request number
-- (forge), is marked. merged_at is the reported time, never later than the scan's start (the scan
-- saw the merged code, so the merge came first, whatever the clocks say).
CREATE OR REPLACE FUNCTION nightshift.remediations_seen_merged(p_scan_id bigint, p_seen jsonb)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_scan nightshift.scans;
    v_marked integer;
BEGIN
    /* mark merged the open remediations that scan p_scan_id saw merged; returns how many */
    IF jsonb_typeof(p_seen) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'a result''s "merged" must be a JSON array, not %', coalesce(jsonb_typeof(p_seen), 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO STRICT v_scan FROM nightshift.scans WHERE id = p_scan_id;
    UPDATE nightshift.remediations AS m
       SET status = 'merged', updated_at = now(),
           merged_at = least(coalesce(seen.merged_at, now()),
                             coalesce(v_scan.started_at, v_scan.finished_at, now()))
      FROM (SELECT (e.doc ->> 'remediation_id')::bigint AS id, e.doc ->> 'branch' AS branch,
                   e.doc ->> 'commit' AS commit_sha, e.doc ->> 'how' AS how,
                   (e.doc ->> 'pr_number')::integer AS pr_number,
                   (e.doc ->> 'merged_at')::timestamptz AS merged_at
              FROM jsonb_array_elements(p_seen) AS e(doc)
             WHERE jsonb_typeof(e.doc) = 'object') AS seen
     WHERE m.id = seen.id
       AND m.subject = v_scan.subject
       AND m.status = 'pr_opened'
       AND m.branch = seen.branch
       AND CASE seen.how
               WHEN 'contained' THEN m.commit_sha = seen.commit_sha
               WHEN 'forge' THEN m.pr_number = seen.pr_number
               ELSE false
           END;
    GET DIAGNOSTICS v_marked = ROW_COUNT;
    RETURN v_marked;
END
$$;
