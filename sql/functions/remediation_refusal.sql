-- remediation_refusal: why no remediation pull request may be opened now for a repository (NULL: it
-- may). The subject-wide guard rails of nightshift.request_remediation:
--   a freeze window (remediation_freezes) covering now, for the repository, its organization or all;
--   when p_new_pr, the repository's and the organization's remediation_daily_pr_limit, counting the
--   remediations whose pull request was opened in the last 24 hours or that are about to open one.
-- p_repo is NULL for a subject that is not a pipeline: only the organization's rails apply.
CREATE OR REPLACE FUNCTION nightshift.remediation_refusal(
    p_org nightshift.organizations,
    p_repo nightshift.repositories,
    p_new_pr boolean
)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_freeze nightshift.remediation_freezes;
    v_count bigint;
BEGIN
    /* NULL when a remediation PR may be opened or updated now, else the reason */
    SELECT * INTO v_freeze FROM nightshift.remediation_freezes AS z
     WHERE now() >= z.starts_at AND now() < z.ends_at
       AND (z.organization_id IS NULL OR z.organization_id = p_org.id)
       AND (z.repository_id IS NULL OR z.repository_id = p_repo.id)
     ORDER BY z.ends_at DESC LIMIT 1;
    IF v_freeze.id IS NOT NULL THEN
        RETURN format('freeze window %s (%s) until %s: no remediation pull request is opened or updated',
                      v_freeze.id, v_freeze.reason,
                      to_char(v_freeze.ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'));
    END IF;
    IF NOT p_new_pr THEN
        RETURN NULL;
    END IF;

    IF p_repo.id IS NOT NULL THEN
        SELECT count(*) INTO v_count
          FROM nightshift.remediations AS m
          JOIN nightshift.pipelines AS p ON m.subject = 'pipeline/' || p.id
         WHERE p.repository_id = p_repo.id
           AND (m.pr_opened_at > now() - interval '24 hours' OR m.status IN ('pending', 'running'));
        IF v_count >= p_repo.remediation_daily_pr_limit THEN
            RETURN format('daily limit reached: repository %s has had %s remediation pull requests in the '
                          'last 24 hours (repositories.remediation_daily_pr_limit = %s)',
                          p_repo.name, v_count, p_repo.remediation_daily_pr_limit);
        END IF;
    END IF;

    SELECT count(*) INTO v_count
      FROM nightshift.remediations AS m
      JOIN nightshift.subjects AS t ON t.subject = m.subject
     WHERE t.organization_id = p_org.id
       AND (m.pr_opened_at > now() - interval '24 hours' OR m.status IN ('pending', 'running'));
    IF v_count >= p_org.remediation_daily_pr_limit THEN
        RETURN format('daily limit reached: organization %s has had %s remediation pull requests in the '
                      'last 24 hours (organizations.remediation_daily_pr_limit = %s)',
                      p_org.name, v_count, p_org.remediation_daily_pr_limit);
    END IF;
    RETURN NULL;
END
$$;
