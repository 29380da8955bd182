-- run_maintenance: the housekeeping the pg_cron job nightshift-maintenance runs every five minutes.
--   * requeue tasks whose lease expired (nightshift.requeue_expired, owned by the queue);
--   * delete done, cancelled and dead tasks that finished before now() - setting 'retention.tasks';
--   * delete scans that finished before now() - 'retention.scans' (findings stay, with their history);
--   * delete notifications sent before now() - 'retention.notifications' (failed and dead ones stay
--     until an operator retries them: nightshift.notifications_undelivered lists them);
--   * delete webhook delivery ids received before now() - 'retention.webhook_deliveries' (never less
--     than 7 days: GitHub lets people redeliver a delivery for 3 days, Enterprise Server for 7, and a
--     delivery id still redeliverable must stay recorded, or its replay would enqueue again);
--   * delete rows of cron.job_run_details older than 'retention.cron_run_details' for Nightshift's own jobs
--     (jobname 'nightshift-%') — pg_cron never prunes it. Only when pg_cron lives in this database; when it
--     lives in another one, `nightshift cron install` adds a purge job there (see cron_job_specs).
-- Each delete takes at most 'retention.batch_size' rows per run, so a backlog drains over a few runs
-- instead of holding locks for minutes. Returns what it did as jsonb.
--
-- run_maintenance itself runs as its caller (the user the pg_cron job runs as): pg_cron's row-level
-- security lets a user see and delete only the run history of the jobs it scheduled, and the owner of
-- the SECURITY DEFINER functions (nightshift_owner) scheduled none. The queue's deletes run as that owner,
-- in prune_history(), so the caller needs no rights on the tables.
CREATE OR REPLACE FUNCTION nightshift.prune_history()
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_batch integer := coalesce((SELECT st.value FROM nightshift.settings AS st
                                  WHERE st.key = 'retention.batch_size')::integer, 10000);
    v_keep_tasks interval := coalesce((SELECT st.value FROM nightshift.settings AS st
                                        WHERE st.key = 'retention.tasks')::interval, '14 days');
    v_keep_scans interval := coalesce((SELECT st.value FROM nightshift.settings AS st
                                        WHERE st.key = 'retention.scans')::interval, '90 days');
    v_keep_notifications interval := coalesce((SELECT st.value FROM nightshift.settings AS st
                                                WHERE st.key = 'retention.notifications')::interval, '30 days');
    -- settings_validate refuses less than 7 days; greatest() also covers a row written before that check
    v_keep_deliveries interval := greatest(nightshift.setting_interval('retention.webhook_deliveries',
                                                                       '30 days'), interval '7 days');
    v_tasks integer;
    v_scans integer;
    v_notifications integer;
    v_deliveries integer;
    v_gone bigint[];
BEGIN
    /* Delete old finished tasks, scans, sent notifications and webhook delivery ids, at most
       retention.batch_size of each. */
    DELETE FROM nightshift.tasks AS t
     WHERE t.id IN (SELECT o.id
                      FROM nightshift.tasks AS o
                     WHERE o.finished_at < now() - v_keep_tasks
                       AND o.status IN ('done', 'cancelled', 'dead')
                     ORDER BY o.finished_at
                     LIMIT v_batch
                       FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_tasks = ROW_COUNT;

    WITH gone AS (
        DELETE FROM nightshift.scans AS s
         WHERE s.id IN (SELECT o.id
                          FROM nightshift.scans AS o
                         WHERE o.finished_at < now() - v_keep_scans
                         ORDER BY o.finished_at
                         LIMIT v_batch
                           FOR UPDATE SKIP LOCKED)
        RETURNING s.id
    )
    SELECT coalesce(array_agg(gone.id), '{}') INTO v_gone FROM gone;
    v_scans := cardinality(v_gone);
    -- findings name their first and last scan without a foreign key (migration 0017: a check per
    -- recorded finding); what ON DELETE SET NULL did, in one statement per batch
    IF v_scans > 0 THEN
        UPDATE nightshift.findings AS f SET first_scan_id = NULL
          FROM unnest(v_gone) AS g(id) WHERE f.first_scan_id = g.id;
        UPDATE nightshift.findings AS f SET last_scan_id = NULL
          FROM unnest(v_gone) AS g(id) WHERE f.last_scan_id = g.id;
    END IF;

    -- notifications_sent_idx: the sent rows by sent_at, never the pending ones
    DELETE FROM nightshift.notifications AS n
     WHERE n.id IN (SELECT o.id
                      FROM nightshift.notifications AS o
                     WHERE o.status = 'sent'
                       AND o.sent_at < now() - v_keep_notifications
                     ORDER BY o.sent_at
                     LIMIT v_batch
                       FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_notifications = ROW_COUNT;

    DELETE FROM nightshift.webhook_deliveries AS d
     WHERE d.delivery_id IN (SELECT o.delivery_id
                               FROM nightshift.webhook_deliveries AS o
                              WHERE o.received_at < now() - v_keep_deliveries
                              ORDER BY o.received_at
                              LIMIT v_batch
                                FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_deliveries = ROW_COUNT;

    RETURN jsonb_build_object('tasks_deleted', v_tasks, 'scans_deleted', v_scans,
                              'notifications_deleted', v_notifications,
                              'webhook_deliveries_deleted', v_deliveries);
END
$$;

CREATE OR REPLACE FUNCTION nightshift.run_maintenance()
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_batch integer := coalesce((SELECT st.value FROM nightshift.settings AS st
                                  WHERE st.key = 'retention.batch_size')::integer, 10000);
    v_keep_runs interval := coalesce((SELECT st.value FROM nightshift.settings AS st
                                       WHERE st.key = 'retention.cron_run_details')::interval, '7 days');
    v_requeued integer;
    v_pruned jsonb;
    v_runs integer;
BEGIN
    /* Requeue expired leases; prune old tasks, scans, sent notifications, delivery ids, pg_cron run
       history; report. */
    -- the queue's function may not exist on a partially migrated database: maintenance must not fail then
    IF to_regprocedure('nightshift.requeue_expired()') IS NOT NULL THEN
        EXECUTE 'SELECT nightshift.requeue_expired()' INTO v_requeued;
    END IF;
    v_pruned := nightshift.prune_history();

    -- dynamic: the cron schema exists only in pg_cron's database, and this function is created everywhere
    IF to_regclass('cron.job_run_details') IS NOT NULL THEN
        EXECUTE $sql$
            DELETE FROM cron.job_run_details AS d
             WHERE d.runid IN (SELECT o.runid
                                 FROM cron.job_run_details AS o
                                 JOIN cron.job AS j ON j.jobid = o.jobid
                                WHERE j.jobname LIKE 'nightshift-%'
                                  AND coalesce(o.end_time, o.start_time) < now() - $1
                                LIMIT $2)
        $sql$ USING v_keep_runs, v_batch;
        GET DIAGNOSTICS v_runs = ROW_COUNT;
    END IF;

    RETURN jsonb_build_object('requeued', v_requeued, 'tasks_deleted', v_pruned -> 'tasks_deleted',
                              'scans_deleted', v_pruned -> 'scans_deleted',
                              'notifications_deleted', v_pruned -> 'notifications_deleted',
                              'webhook_deliveries_deleted', v_pruned -> 'webhook_deliveries_deleted',
                              'cron_run_details_deleted', v_runs);
END
$$;

-- nightshift_scheduler may run it: it reads the retention settings and calls the two functions
REVOKE EXECUTE ON FUNCTION nightshift.run_maintenance() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nightshift.prune_history() FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nightshift_scheduler') THEN
        GRANT EXECUTE ON FUNCTION nightshift.run_maintenance() TO nightshift_scheduler;
        GRANT EXECUTE ON FUNCTION nightshift.prune_history() TO nightshift_scheduler;
        GRANT SELECT ON nightshift.settings TO nightshift_scheduler;
    END IF;
END
$$;
