"""Who owns the schema, and what SECURITY DEFINER functions may do (sql/ownership.sql).

nightshift_owner, a NOLOGIN role without superuser rights, owns every object, so a function the
dispatcher calls runs with that role's rights, never with those of the superuser who migrated.
The proof: a probe trigger on nightshift.tasks, fired inside nightshift.enqueue() called by a login
role of nightshift_dispatcher, records who it runs as and tries what only a superuser can.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from dispatcher.db import quote_ident_sql
from dispatcher.migrate import migrate
from dispatcher.schema import OWNERSHIP_FILE, sql_dir
from tests.support.pgserver import PgServer
from tests.support.roles import login_role

OWNER = "nightshift_owner"

# Every object of the schema and its owner (array types and table row types follow their element/table).
OWNED = """
    SELECT 'schema nightshift', nspowner::regrole::text FROM pg_namespace WHERE nspname = 'nightshift'
    UNION ALL
    SELECT 'relation ' || relname, relowner::regrole::text
      FROM pg_class WHERE relnamespace = 'nightshift'::regnamespace
    UNION ALL
    SELECT 'function ' || proname || '(' || pg_get_function_identity_arguments(oid) || ')',
           proowner::regrole::text
      FROM pg_proc WHERE pronamespace = 'nightshift'::regnamespace
    UNION ALL
    SELECT 'type ' || typname, typowner::regrole::text
      FROM pg_type WHERE typnamespace = 'nightshift'::regnamespace
"""

PROBE = """
CREATE SCHEMA probe;
GRANT USAGE ON SCHEMA probe TO PUBLIC;
CREATE TABLE probe.seen (who text, superuser boolean, pg_authid text, create_role text, read_file text);
GRANT INSERT ON probe.seen TO PUBLIC;
CREATE FUNCTION probe.record() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_authid text := 'read';
    v_role text := 'created';
    v_file text := 'read';
BEGIN
    BEGIN
        PERFORM count(*) FROM pg_catalog.pg_authid;
    EXCEPTION WHEN insufficient_privilege THEN v_authid := SQLERRM;
    END;
    BEGIN
        EXECUTE format('CREATE ROLE %I SUPERUSER', TG_ARGV[0]);
        EXECUTE format('DROP ROLE %I', TG_ARGV[0]);
    EXCEPTION WHEN insufficient_privilege THEN v_role := SQLERRM;
    END;
    BEGIN
        PERFORM pg_catalog.pg_read_file('PG_VERSION');
    EXCEPTION WHEN insufficient_privilege THEN v_file := SQLERRM;
    END;
    INSERT INTO probe.seen
    SELECT current_user, r.rolsuper, v_authid, v_role, v_file FROM pg_catalog.pg_roles AS r
     WHERE r.rolname = current_user;
    RETURN NEW;
END
$$;
"""


def owners(conn: psycopg.Connection) -> dict[str, str]:
    return dict(conn.execute(OWNED).fetchall())  # type: ignore[arg-type]


def test_nightshift_owner_owns_everything_and_is_no_superuser(conn: psycopg.Connection) -> None:
    role = conn.execute("SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls,"
                        " rolreplication FROM pg_roles WHERE rolname = %s", (OWNER,)).fetchone()
    assert role == (False, False, False, False, False, False)
    owned = owners(conn)
    enqueue = ("function enqueue(p_kind text, p_subject text, p_payload jsonb, p_priority integer, "
               "p_run_after timestamp with time zone, p_max_attempts integer)")
    assert {"relation tasks", enqueue, "type frequency", "schema nightshift"} <= owned.keys()
    assert {what: who for what, who in owned.items() if who != OWNER} == {}
    definers = conn.execute("SELECT count(*) FROM pg_proc WHERE prosecdef"
                            " AND pronamespace = 'nightshift'::regnamespace").fetchone()
    assert definers is not None and definers[0] >= 10


def test_a_security_definer_function_called_by_the_dispatcher_cannot_act_as_superuser(
    pg_server: PgServer, db_url: str, conn: psycopg.Connection
) -> None:
    escalated = f"ns_test_escalated_{secrets.token_hex(4)}"
    conn.execute(PROBE)
    conn.execute(sql.SQL("CREATE TRIGGER zz_probe AFTER INSERT ON nightshift.tasks FOR EACH ROW "
                         "EXECUTE FUNCTION probe.record({})").format(sql.Literal(escalated)))
    with login_role(pg_server.admin_url, "nightshift_dispatcher") as (user, password), \
            psycopg.connect(db_url, user=user, password=password, autocommit=True) as dispatcher:
        (task_id,) = dispatcher.execute("SELECT nightshift.enqueue('noop', 'probe/1')").fetchone()  # type: ignore[misc]
        assert task_id is not None
        # the dispatcher reaches the tables through the functions only
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            dispatcher.execute("SELECT * FROM nightshift.tasks")
    seen = conn.execute("SELECT who, superuser, pg_authid, create_role, read_file FROM probe.seen").fetchall()
    assert len(seen) == 1
    who, superuser, authid, create_role, read_file = seen[0]
    assert (who, superuser) == (OWNER, False)
    assert authid.startswith("permission denied for table pg_authid")
    assert create_role != "created"  # "must be superuser to create superusers"
    assert read_file.startswith("permission denied for function pg_read_file")
    assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (escalated,)).fetchone() == (0,)


def test_the_dispatcher_and_scheduler_roles_do_their_work_through_owned_functions(
    pg_server: PgServer, db_url: str, conn: psycopg.Connection
) -> None:
    with login_role(pg_server.admin_url, "nightshift_dispatcher") as (user, password), \
            psycopg.connect(db_url, user=user, password=password, autocommit=True) as dispatcher:
        (task_id,) = dispatcher.execute(  # type: ignore[misc]
            "SELECT nightshift.enqueue('noop', 'roles/1', '{\"n\": 1}', 0, NULL, 3)").fetchone()
        claimed = dispatcher.execute(
            "SELECT id, attempt FROM nightshift.complete_and_claim('{}', '{}', 'w1', NULL, 10, '1 minute',"
            " NULL, NULL, NULL) WHERE id IS NOT NULL").fetchall()
        assert claimed == [(task_id, 1)]
        assert dispatcher.execute("SELECT nightshift.heartbeat(%s, 'w1', %s, '1 minute')",
                                  ([task_id], [1])).fetchone() == ([task_id],)
        assert dispatcher.execute("SELECT nightshift.fail_task(%s, 1, 'try again', true)",
                                  (task_id,)).fetchone() == ("queued",)
        conn.execute("UPDATE nightshift.tasks SET run_after = now() WHERE id = %s", (task_id,))
        dispatcher.execute("SELECT nightshift.complete_and_claim('{}', '{}', 'w1', NULL, 10, '1 minute',"
                           " NULL, NULL, NULL)")
        done = dispatcher.execute("SELECT completed FROM nightshift.complete_and_claim(%s, %s, 'w1', NULL, 0,"
                                  " '1 minute', NULL, NULL, NULL)", ([task_id], [2])).fetchone()
        assert done == ([task_id],)
        assert dispatcher.execute("SELECT nightshift.requeue_expired()").fetchone() == (0,)
    status = conn.execute("SELECT status::text FROM nightshift.tasks WHERE id = %s", (task_id,)).fetchone()
    assert status == ("done",)
    # maintenance runs as its caller: a login role of nightshift_scheduler, like a pg_cron job's user
    conn.execute("UPDATE nightshift.tasks SET finished_at = now() - interval '30 days' WHERE id = %s",
                 (task_id,))
    with login_role(pg_server.admin_url, "nightshift_scheduler") as (user, password), \
            psycopg.connect(db_url, user=user, password=password, autocommit=True) as scheduler:
        report = scheduler.execute("SELECT nightshift.run_maintenance()").fetchone()[0]  # type: ignore[index]
        assert (report["tasks_deleted"], report["requeued"]) == (1, 0)
        scheduler.execute("SELECT * FROM nightshift.enqueue_due()")


def test_maintenance_prunes_the_cron_history_of_the_jobs_its_caller_scheduled(pg_server: PgServer) -> None:
    if pg_server.cluster is None:  # never migrate the pg_cron database of a server that is not ours
        pytest.skip(f"needs the embedded test cluster (tests run against {pg_server.source})")
    cron_url = pg_server.url(pg_server.cron_database())
    migrate(cron_url)
    name = f"nightshift-test-history-{secrets.token_hex(4)}"
    with psycopg.connect(cron_url, autocommit=True) as conn:
        (jobid,) = conn.execute("SELECT cron.schedule(%s, '0 3 1 1 *', 'SELECT 1')", (name,)).fetchone()  # type: ignore[misc]
        try:
            conn.execute(
                "INSERT INTO cron.job_run_details (jobid, runid, database, username, command, status,"
                " start_time, end_time) SELECT %s, nextval('cron.runid_seq'), current_database(),"
                " current_user, 'SELECT 1', 'succeeded', now() - %s, now() - %s FROM generate_series(1, 3)",
                (jobid, timedelta(days=30), timedelta(days=30)))
            report = conn.execute("SELECT nightshift.run_maintenance()").fetchone()[0]  # type: ignore[index]
            assert report["cron_run_details_deleted"] >= 3
            left = conn.execute("SELECT count(*) FROM cron.job_run_details WHERE jobid = %s",
                                (jobid,)).fetchone()
            assert left == (0,)
        finally:
            conn.execute("SELECT cron.unschedule(%s)", (jobid,))
            conn.execute("DELETE FROM cron.job_run_details WHERE jobid = %s", (jobid,))


@contextmanager
def database_owned_by(pg_server: PgServer, user: str) -> Iterator[str]:
    name = pg_server.create_database()
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(quote_ident_sql("ALTER DATABASE {} OWNER TO {}", name, user))
    try:
        yield name
    finally:
        pg_server.drop_database(name)


def user_url(pg_server: PgServer, database: str, user: str, password: str) -> str:
    url = urlsplit(pg_server.url(database))
    return url._replace(netloc=f"{user}:{password}@{url.hostname}:{url.port}").geturl()


# The migrating user of a managed service reads settings (pg_read_all_settings, through pg_monitor or
# the provider's admin role): that is how `nightshift migrate` sees that pg_cron is loaded.
def test_a_migrating_user_with_createrole_hands_everything_to_the_owner(pg_server: PgServer) -> None:
    with login_role(pg_server.admin_url, "pg_read_all_settings", options="CREATEROLE") as (user, password), \
            database_owned_by(pg_server, user) as database:
        url = pg_server.url(database)
        migrate(user_url(pg_server, database, user, password))
        with psycopg.connect(url, autocommit=True) as conn:
            assert {what: who for what, who in owners(conn).items() if who != OWNER} == {}
            assert conn.execute("SELECT pg_has_role(%s, %s, 'USAGE')", (user, OWNER)).fetchone() == (True,)


def test_a_migrating_user_without_createrole_keeps_the_objects_and_is_told(pg_server: PgServer) -> None:
    with login_role(pg_server.admin_url, "pg_read_all_settings") as (user, password), \
            database_owned_by(pg_server, user) as database:
        url = user_url(pg_server, database, user, password)
        migrate(url)  # works, as on a managed service without CREATEROLE
        with psycopg.connect(url, autocommit=True) as conn:
            notices: list[str] = []
            conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
            conn.execute((sql_dir() / OWNERSHIP_FILE).read_text())
            assert notices == [f"cannot act as {OWNER} (no CREATEROLE): the nightshift objects stay owned by "
                               f"{user}, and SECURITY DEFINER functions run as that user"]
            assert set(owners(conn).values()) == {user}


def test_an_owner_role_made_by_hand_as_a_login_superuser_is_put_back(conn: psycopg.Connection) -> None:
    try:
        conn.execute(quote_ident_sql("ALTER ROLE {} SUPERUSER LOGIN", OWNER))
        conn.execute((sql_dir() / OWNERSHIP_FILE).read_text())
        role = conn.execute("SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = %s", (OWNER,))
        assert role.fetchone() == (False, False)
    finally:
        conn.execute(quote_ident_sql("ALTER ROLE {} NOSUPERUSER NOLOGIN", OWNER))
