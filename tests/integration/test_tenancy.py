"""Roles and tenancy (sql/row_security.sql, sql/functions/tenant_membership.sql, sql/grants/).

A reader of organization A, logged in as a member of a team role listed for A in
nightshift.organization_members, must not read, infer or change anything of organization B through
any view, table or function. Every check enumerates the catalog, so a table, view or function added
later is covered, or makes a test here fail with its name.

The proof of "nothing of B" is non-interference: in one transaction (one now()), the reader reads
every view and table while only A exists, then B is seeded (committed by another connection), and
the reader reads again. Any row, count, maximum or age that B's data could move would differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from tests.support.pgserver import PgServer
from tests.support.roles import group_role, login_role

READER = "nightshift_reader"

# Tables that belong to no organization, and why. A table that is neither under row-level security nor
# listed here fails test_every_table_is_tenant_data_or_declared_shared.
SHARED = {
    "alembic_version": "the schema's migration revision",
    "applied_sql": "checksums of the applied sql/ files",
    "api_tokens": "HTTP intake tokens: hashes only, the dispatcher's (find_api_token)",
    "settings": "operator settings (retention, stagger, the scan URL): no organization's data",
    "task_kinds": "what each task kind does: reference data",
    "compliance_requirements": "published framework requirements: reference data",
    "compliance_check_mappings": "scanner check to requirement mappings: reference data",
    "stateful_resource_types": "resource types remediation never recreates unasked: reference data",
}
# Of those, what the reporting views read, so the reader may too.
READER_SHARED = {"settings", "task_kinds", "compliance_requirements", "compliance_check_mappings"}

# The SECURITY DEFINER functions each service role may call (their files grant them).
DISPATCHER_FUNCTIONS = sorted([
    "claim_notifications", "claim_tasks", "claim_tasks_after", "complete_and_claim", "complete_task",
    "complete_tasks", "enqueue", "enqueue_pr_review", "fail_notifications", "fail_task", "find_api_token",
    "heartbeat", "mark_notifications_sent", "match_github_repository", "queue_stats",
    "receive_github_deliveries", "receive_github_delivery", "record_result", "record_scan",
    "release_notification_channels", "release_notifications", "release_tasks", "requeue_expired",
    "requeue_expired_notifications",
    "retry_notification", "task_targets", "use_api_token"])
SCHEDULER_FUNCTIONS = sorted([
    "enqueue_due", "prune_history", "requeue_expired", "resolve_schedule", "run_now", "set_active",
    "set_frequency", "upcoming_runs"])

# Views that may stay empty for a seeded organization, and why. Every other view must show A
# something, or its isolation check would prove nothing: extend seed_organization() instead.
MAY_BE_EMPTY: dict[str, str] = {}

NOW = datetime.now(UTC).replace(microsecond=0)


def one(conn: psycopg.Connection, query: str, *params: object) -> object:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def seed_reference(conn: psycopg.Connection) -> None:
    """Shared reference data: one compliance requirement and the check that maps to it."""
    requirement = one(conn, "INSERT INTO nightshift.compliance_requirements"
                            " (framework, provider, source_name, requirement, title)"
                            " VALUES ('CIS', 'aws', 'test:cis', '2.1.1', 'S3 logging') RETURNING id")
    conn.execute("INSERT INTO nightshift.compliance_check_mappings"
                 " (requirement_id, scanner, check_id, source) VALUES (%s, 'checkov', 'CKV_AWS_18', 'test')",
                 (requirement,))


def seed_organization(conn: psycopg.Connection, name: str) -> dict[str, object]:
    """An organization with a bit of everything: targets, schedules, tasks of each kind, scans,
    findings of every finding kind, a remediation, notifications, a suppression, cost rows."""
    org = one(conn, "INSERT INTO nightshift.organizations"
                    " (name, cost_optimization_enabled, compliance_enabled, auto_remediate)"
                    " VALUES (%s, true, true, true) RETURNING id", name)
    repo = one(conn, "INSERT INTO nightshift.repositories (organization_id, name, url)"
                     " VALUES (%s, 'infra', %s) RETURNING id", org, f"https://git.example.com/{name}.git")
    pipeline = one(conn, "INSERT INTO nightshift.pipelines (repository_id, name)"
                         " VALUES (%s, 'prod') RETURNING id", repo)
    conn.execute("INSERT INTO nightshift.remediation_freezes (organization_id, starts_at, ends_at, reason)"
                 " VALUES (%s, now(), now() + interval '7 days', %s)", (org, f"release week of {name}"))
    conn.execute("INSERT INTO nightshift.pull_requests (repository_id, number, head_ref, base_ref, title)"
                 " VALUES (%s, 1, 'nightshift/fix', 'main', %s)", (repo, f"fix of {name}"))
    integration = one(conn, "INSERT INTO nightshift.cloud_integrations"
                            " (organization_id, provider, account_id, frameworks)"
                            " VALUES (%s, 'aws', %s, '{CIS}') RETURNING id", org, f"{name}-account")
    conn.execute("INSERT INTO nightshift.cloud_integration_pipelines (cloud_integration_id, pipeline_id)"
                 " VALUES (%s, %s)", (integration, pipeline))
    conn.execute("INSERT INTO nightshift.schedules (kind, organization_id, frequency, next_run_at)"
                 " VALUES ('cost-analysis', %s, 'DAILY', now() + interval '1 hour')"
                 " ON CONFLICT DO NOTHING", (org,))
    conn.execute("UPDATE nightshift.schedules"
                 " SET frequency = 'DAILY', next_run_at = now() + interval '1 hour'"
                 " WHERE pipeline_id = %s OR cloud_integration_id = %s OR organization_id = %s",
                 (pipeline, integration, org))
    conn.execute("INSERT INTO nightshift.notification_channels (organization_id, name, kind)"
                 " VALUES (%s, %s, 'log')", (org, f"{name}-log"))
    conn.execute("INSERT INTO nightshift.suppressions (kind, subject_pattern, address_pattern, owner, reason)"
                 " VALUES ('drift', %s, 'aws_s3_bucket.logs', %s, 'accepted')",
                 (f"pipeline/{pipeline}", name))

    targets = {"drift-scan": (f"pipeline/{pipeline}", "DRIFTED", ["drift", "pending-change"]),
               "compliance-scan": (f"cloud_integration/{integration}", "FAILED_CHECKS", ["compliance"]),
               "cost-analysis": (f"organization/{org}", "FAILED_CHECKS", ["cost"]),
               "pr-review": (f"pr/{repo}/7", "FAILED_CHECKS", ["pr-review"])}
    resource = f"arn:aws:s3:::{name}-logs"
    for kind, (subject, bad, finding_kinds) in targets.items():
        one(conn, "SELECT nightshift.enqueue(%s, %s)", kind, subject)  # queued
        task = one(conn, "INSERT INTO nightshift.tasks"
                         " (kind, subject, status, attempt, started_at, finished_at)"
                         " VALUES (%s, %s, 'done', 1, now() - interval '2 hours', now() - interval '1 hour')"
                         " RETURNING id", kind, subject)
        conn.execute("INSERT INTO nightshift.tasks (kind, subject, status, attempt, last_error, finished_at)"
                     " VALUES (%s, %s, 'dead', 3, 'gave up', now() - interval '3 hours')", (kind, subject))
        scans = [one(conn, "INSERT INTO nightshift.scans"
                           " (task_id, attempt, kind, subject, status, summary, error, started_at,"
                           "  finished_at)"
                           " VALUES (%s, %s, %s, %s, %s, '{}', %s, %s, %s) RETURNING id",
                     task, attempt, kind, subject, status, "boom" if status == "ERROR" else None,
                     NOW - ago - timedelta(minutes=5), NOW - ago)
                 for attempt, (status, ago) in enumerate(
                     (("CLEAN", timedelta(days=3)), (bad, timedelta(days=1)),
                      (bad, timedelta(hours=2)), ("ERROR", timedelta(hours=1))), start=1)]
        conn.execute("INSERT INTO nightshift.notifications"
                     " (channel, template, payload, scan_id, status, last_error)"
                     " VALUES (%s, 'findings', '{}', %s, 'pending', NULL),"
                     "        (%s, 'findings', '{}', %s, 'dead', 'gone')",
                     (f"{name}-log", scans[-1], f"{name}-log", scans[1]))
        conn.execute("INSERT INTO nightshift.webhook_deliveries (delivery_id, source, event, task_id)"
                     " VALUES (%s, 'github', 'pull_request', %s)", (f"{name}-{kind}", task))
        for finding_kind in finding_kinds:
            for status, severity in (("OPEN", "high"), ("RESOLVED", "low")):
                conn.execute(
                    "INSERT INTO nightshift.findings (kind, subject, fingerprint, resource_address,"
                    " resource_type, provider_id, change_type, check_id, severity, status, first_seen,"
                    " last_seen, resolved_at, first_scan_id, last_scan_id, details)"
                    " VALUES (%s, %s, %s, 'aws_s3_bucket.logs', 'aws_s3_bucket', %s, 'update', 'CKV_AWS_18',"
                    "         %s, %s, %s, %s, %s, %s, %s, %s)",
                    (finding_kind, subject, f"{finding_kind}-{status}", resource, severity, status,
                     NOW - timedelta(days=2), NOW - timedelta(hours=1),
                     NOW - timedelta(hours=1) if status == "RESOLVED" else None, scans[1], scans[-1],
                     psycopg.types.json.Jsonb({"estimated_monthly_saving": "12.50", "framework": "CIS"})))
    conn.execute("INSERT INTO nightshift.remediations (subject, finding_ids, status, branch)"
                 " SELECT subject, array_agg(id), 'pr_opened', 'nightshift/fix' FROM nightshift.findings"
                 " WHERE subject = %s GROUP BY subject", (f"pipeline/{pipeline}",))

    source = one(conn, "INSERT INTO nightshift.cost_sources (organization_id, uri) VALUES (%s, %s)"
                       " RETURNING id",
                 org, f"file:///billing/{name}")
    month = NOW.replace(day=1, hour=0, minute=0, second=0)
    conn.execute("SELECT nightshift.cost_ensure_partitions(%s, %s)", (month, month + timedelta(days=32)))
    ingest = one(conn, "INSERT INTO nightshift.cost_ingests (source_id, object_key, sha256, bytes, rows,"
                       " focus_version, billing_periods) VALUES (%s, 'focus.csv', 'ab', 10, 1, '1.0', %s)"
                       " RETURNING id", source, [month])
    conn.execute("INSERT INTO nightshift.cost_line_items (source_id, ingest_id, charge_period_start,"
                 " charge_period_end, billed_cost, effective_cost, resource_id, service_name)"
                 " VALUES (%s, %s, %s, %s, 42, 40, %s, 'Amazon S3')",
                 (source, ingest, month, month + timedelta(hours=1), resource))
    conn.execute("INSERT INTO nightshift.cost_line_summary (source_id, ingest_id, billing_period_start,"
                 " charge_period_start, service_name, committed, line_items, billed_cost, effective_cost)"
                 " VALUES (%s, %s, %s, %s, 'Amazon S3', false, 1, 42, 40)", (source, ingest, month, month))
    return {"id": org, "repository": repo, "pipeline": pipeline, "integration": integration}


def relations(conn: psycopg.Connection, kinds: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'nightshift'::regnamespace AND relkind = ANY(%s)"
        " AND NOT relispartition ORDER BY relname", (list(kinds),))]


def snapshot(conn: psycopg.Connection, names: list[str]) -> dict[str, list[str] | str]:
    """Every row of each relation as text, sorted; or the error the reader got. Inside the caller's
    transaction (each read is a savepoint)."""
    seen: dict[str, list[str] | str] = {}
    for name in names:
        query = sql.SQL("SELECT row_to_json(r)::text FROM nightshift.{} AS r").format(sql.Identifier(name))
        try:
            with conn.transaction():  # a savepoint: a refusal must not end the reader's transaction
                seen[name] = sorted(row[0] for row in conn.execute(query))
        except psycopg.errors.InsufficientPrivilege as error:
            seen[name] = f"refused: {error.sqlstate}"
    return seen


def stable_functions_without_arguments(conn: psycopg.Connection, role: str) -> list[str]:
    """Reader-callable functions a report would call: no arguments, STABLE or IMMUTABLE."""
    return [r[0] for r in conn.execute(
        "SELECT p.proname FROM pg_proc AS p WHERE p.pronamespace = 'nightshift'::regnamespace"
        " AND p.pronargs = 0 AND p.provolatile IN ('s', 'i') AND p.prokind = 'f'"
        " AND p.prorettype <> 'trigger'::regtype AND has_function_privilege(%s, p.oid, 'EXECUTE')"
        " ORDER BY 1", (role,))]


def call_all(conn: psycopg.Connection, functions: list[str]) -> dict[str, list[str] | str]:
    seen: dict[str, list[str] | str] = {}
    for name in functions:
        query = sql.SQL("SELECT f::text FROM nightshift.{}() AS f").format(sql.Identifier(name))
        try:
            with conn.transaction():
                seen[name] = sorted(str(row[0]) for row in conn.execute(query))
        except psycopg.Error as error:
            seen[name] = f"error: {error.sqlstate}"
    return seen


@contextmanager
def reader_of(pg_server: PgServer, db_url: str, admin: psycopg.Connection,
              organization: object | None) -> Iterator[psycopg.Connection]:
    """A login role in nightshift_reader and in a team role listed for the organization (None: no
    membership at all), connected, as a DBA would set one up (README, Roles and ownership)."""
    with group_role(pg_server.admin_url) as team, \
            login_role(pg_server.admin_url, READER, team) as (user, password):
        if organization is not None:
            admin.execute("INSERT INTO nightshift.organization_members (organization_id, member) VALUES"
                          " (%s, %s)",
                          (organization, team))
        try:
            with psycopg.connect(db_url, user=user, password=password) as reader:
                yield reader
        finally:
            admin.execute("DELETE FROM nightshift.organization_members WHERE member = %s", (team,))


def organization_functions(conn: psycopg.Connection) -> list[tuple[str, int]]:
    """Set-returning functions the reader may call that take an organization id, then only time bounds
    (or defaults): the cost reports. Their name and how many arguments to pass."""
    return [(name, nargs) for name, nargs in conn.execute(
        "SELECT p.proname, p.pronargs - p.pronargdefaults FROM pg_proc p"
        " WHERE p.pronamespace = 'nightshift'::regnamespace AND p.proretset"
        "   AND p.proargnames[1] = 'p_organization_id' AND p.proargtypes[0] = 'bigint'::regtype"
        "   AND has_function_privilege(%s, p.oid, 'EXECUTE')"
        "   AND (SELECT bool_and(t = 'timestamptz'::regtype) FROM unnest(p.proargtypes[1:]) WITH ORDINALITY"
        "         AS a(t, i) WHERE i <= p.pronargs - p.pronargdefaults - 1) IS NOT FALSE ORDER BY 1",
        (READER,))]


def call_for_organization(conn: psycopg.Connection, name: str, nargs: int, organization: object) -> int:
    """Rows the function returns for the organization over a window around the seed's month."""
    bounds = [NOW - timedelta(days=70), NOW + timedelta(days=40)] * nargs
    query = sql.SQL("SELECT count(*) FROM nightshift.{}({})").format(
        sql.Identifier(name), sql.SQL(", ").join([sql.Placeholder()] * nargs))
    return int(one(conn, query.as_string(conn), organization, *bounds[:nargs - 1]))


def test_every_table_is_tenant_data_or_declared_shared(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
        "       EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname ="
        " 'nightshift_tenant'),"
        "       EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0"
        "                  AND NOT a.attisdropped AND a.attname IN ('organization_id', 'subject'))"
        "  FROM pg_class c WHERE c.relnamespace = 'nightshift'::regnamespace AND c.relkind IN ('r', 'p')"
        "   AND NOT c.relispartition").fetchall()
    assert len(rows) > 20
    tenant = {name for name, rls, force, policy, _ in rows if rls and force and policy}
    keyed = {name for name, *_, has_key in rows if has_key}
    # every table with an organization_id or a subject is under forced row-level security
    assert keyed - tenant == set()
    # every other table is declared shared, with a reason; nothing is both
    assert {name for name, *_ in rows} - tenant == set(SHARED), \
        "a table is neither under row-level security (sql/row_security.sql) nor declared in SHARED"
    # a child reached through its parent: every table with a foreign key to tenant data is tenant data
    children = {r[0] for r in conn.execute(
        "SELECT DISTINCT c.conrelid::regclass::text FROM pg_constraint c WHERE c.contype = 'f'"
        " AND c.connamespace = 'nightshift'::regnamespace AND c.confrelid::regclass::text = ANY(%s)",
        ([f"nightshift.{t}" for t in tenant],))}
    assert {c.removeprefix("nightshift.") for c in children} - tenant == set()


def test_views_run_with_the_readers_rights(conn: psycopg.Connection) -> None:
    views = conn.execute(
        "SELECT relname, coalesce('security_invoker=true' = ANY (reloptions), false) FROM pg_class"
        " WHERE relnamespace = 'nightshift'::regnamespace AND relkind IN ('v', 'm')").fetchall()
    assert len(views) >= 5
    assert [name for name, invoker in views if not invoker] == []


def test_security_definer_functions_fix_search_path_and_are_not_public(conn: psycopg.Connection) -> None:
    definers = conn.execute(
        "SELECT p.oid::regprocedure::text, p.proconfig, has_function_privilege('public', p.oid, 'EXECUTE'),"
        "       has_function_privilege(%s, p.oid, 'EXECUTE')"
        "  FROM pg_proc p WHERE p.pronamespace = 'nightshift'::regnamespace AND"
        " p.prosecdef", (READER,)).fetchall()
    assert len(definers) >= 10
    for name, config, public, reader in definers:
        assert "search_path=pg_catalog, pg_temp" in (config or []), name
        assert not public, f"{name}: SECURITY DEFINER and executable by PUBLIC"
        # the reader reads through views, under row-level security; a definer function sees every
        # organization's rows
        assert not reader, f"{name}: SECURITY DEFINER and executable by {READER}"


def test_each_role_holds_only_what_it_needs(pg_server: PgServer, conn: psycopg.Connection) -> None:
    database = one(conn, "SELECT current_database()")
    for role in ("nightshift_dispatcher", "nightshift_scheduler", READER):
        # no DDL: no CREATE in the schema, the database or public; no role attributes
        assert conn.execute(
            "SELECT has_schema_privilege(%s, 'nightshift', 'CREATE'), has_database_privilege(%s, %s,"
            " 'CREATE'),"
            "       has_schema_privilege(%s, 'public', 'CREATE'), rolcanlogin, rolsuper, rolcreaterole,"
            "       rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = %s",
            (role, role, database, role, role)).fetchone() == (False,) * 8, role
    writable = conn.execute(
        "SELECT r.rolname, c.relname FROM pg_class c CROSS JOIN pg_roles r"
        " WHERE c.relnamespace = 'nightshift'::regnamespace AND c.relkind IN ('r', 'p')"
        "   AND r.rolname IN ('nightshift_dispatcher', 'nightshift_scheduler', %s)"
        "   AND has_table_privilege(r.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')",
        (READER,)).fetchall()
    assert writable == []  # every write goes through a function
    readable = conn.execute(
        "SELECT r.rolname, c.relname FROM pg_class c CROSS JOIN pg_roles r"
        " WHERE c.relnamespace = 'nightshift'::regnamespace AND c.relkind IN ('r', 'p')"
        "   AND r.rolname IN ('nightshift_dispatcher', 'nightshift_scheduler')"
        "   AND has_table_privilege(r.oid, c.oid, 'SELECT') ORDER BY 1, 2").fetchall()
    assert readable == [("nightshift_dispatcher", "notification_channels"),
                        ("nightshift_scheduler", "settings")]
    # the definer functions each role may call, exactly: a new one must be granted on purpose
    executes = {role: sorted(name for (name,) in conn.execute(
        "SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'nightshift'::regnamespace AND p.prosecdef"
        " AND has_function_privilege(%s, p.oid, 'EXECUTE')", (role,)))
        for role in ("nightshift_dispatcher", "nightshift_scheduler")}
    assert executes == {"nightshift_dispatcher": DISPATCHER_FUNCTIONS,
                        "nightshift_scheduler": SCHEDULER_FUNCTIONS}
    # pg_cron: neither the dispatcher nor the reader may touch cron.job, in pg_cron's own database
    with psycopg.connect(pg_server.url(pg_server.cron_database()), autocommit=True) as cron:
        for role in ("nightshift_dispatcher", READER):
            assert cron.execute(
                "SELECT has_schema_privilege(%s, 'cron', 'USAGE'),"
                "       has_table_privilege(%s, 'cron.job', 'INSERT, UPDATE, DELETE'),"
                "       has_function_privilege(%s, 'cron.schedule(text, text, text)', 'EXECUTE')"
                "       AND has_schema_privilege(%s, 'cron', 'USAGE')",
                (role, role, role, role)).fetchone() == (False, False, False), role


def test_a_reader_of_one_organization_reads_and_infers_nothing_of_another(
    pg_server: PgServer, db_url: str, conn: psycopg.Connection
) -> None:
    seed_reference(conn)
    a = seed_organization(conn, "tenant-a")
    views, tables = relations(conn, "vm"), relations(conn, "rp")
    functions = stable_functions_without_arguments(conn, READER)
    # one transaction, one now(): ages and "in the last day" counts read the same clock both times
    with reader_of(pg_server, db_url, conn, a["id"]) as reader, reader.transaction():
        before = snapshot(reader, views + tables)
        called_before = call_all(reader, functions)
        b = seed_organization(conn, "tenant-b")  # committed by the admin connection meanwhile
        after = snapshot(reader, views + tables)
        called_after = call_all(reader, functions)
        assert one(reader, "SELECT nightshift.member_organizations()") == [a["id"]]
        # the functions a report calls with an organization id run with the reader's rights
        cost_reports = organization_functions(conn)
        assert {"cost_items", "cost_top_movers"} <= {name for name, _ in cost_reports}
        of_b = {name: call_for_organization(reader, name, nargs, b["id"]) for name, nargs in cost_reports}
        of_a = {name: call_for_organization(reader, name, nargs, a["id"]) for name, nargs in cost_reports}
        b_subjects = [f"organization/{b['id']}", f"repository/{b['repository']}", f"pipeline/{b['pipeline']}",
                      f"cloud_integration/{b['integration']}", f"pr/{b['repository']}/7"]
        direct = reader.execute(
            "SELECT (SELECT count(*) FROM nightshift.findings WHERE subject = ANY(%s)),"
            "       (SELECT count(*) FROM nightshift.organizations WHERE id = %s),"
            "       (SELECT count(*) FROM nightshift.pipelines WHERE id = %s)",
            (b_subjects, b["id"], b["pipeline"])).fetchone()
        assert one(reader, "SELECT now() < statement_timestamp()") is True  # still the same transaction
    assert direct == (0, 0, 0)
    assert of_b == dict.fromkeys(of_b, 0)
    assert of_a["cost_items"] == 1  # A's own line item
    # the admin gets B's from the same calls: the seed wrote rows these functions return
    assert call_for_organization(conn, "cost_items", dict(cost_reports)["cost_items"], b["id"]) == 1
    # the admin sees B's rows: the seed did write them
    assert one(conn, "SELECT count(*) FROM nightshift.findings WHERE subject = ANY(%s)", b_subjects) == 10

    changed = sorted(name for name in before if before[name] != after[name])
    assert changed == [], f"seeding organization B changed what A's reader sees in {changed}"
    assert called_before == called_after
    for name in views:
        assert isinstance(before[name], list), f"view {name}: {before[name]} for a reader"
        assert before[name] or name in MAY_BE_EMPTY, f"view {name} shows A nothing: extend the seed"
    for name in tables:
        expected_refused = name in SHARED and name not in READER_SHARED
        assert isinstance(before[name], str) == expected_refused, f"table {name}: {before[name]!r:.80}"
        if name not in SHARED:
            assert before[name], f"table {name} shows A nothing: extend seed_organization()"
    # every row of anything with an organization_id is A's
    # (NULL: a row keyed otherwise, a pipeline's schedule, or one whose subject names no target, a pull
    # request review in findings_report; the non-interference above proves it is not B's)
    org_columns = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
        " WHERE c.relnamespace = 'nightshift'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')"
        " AND NOT c.relispartition AND a.attname = 'organization_id'").fetchall()
    assert ("findings_report",) in org_columns
    for (name,) in org_columns:
        rows = before[name]
        assert isinstance(rows, list)
        ours = {f'"organization_id":{a["id"]}', '"organization_id":null'}
        assert all(any(f"{mark}," in row or f"{mark}}}" in row for mark in ours) for row in rows), name


def test_a_reader_cannot_change_another_organizations_rows(
    pg_server: PgServer, db_url: str, conn: psycopg.Connection
) -> None:
    a = seed_organization(conn, "tenant-a")
    seed_organization(conn, "tenant-b")
    tables = relations(conn, "rp")
    counts = {t: one(conn, sql.SQL("SELECT count(*) FROM"
                                   " nightshift.{}").format(sql.Identifier(t)).as_string(conn))
              for t in tables}
    with reader_of(pg_server, db_url, conn, a["id"]) as reader:
        reader.autocommit = True
        for table in tables:
            name = sql.Identifier("nightshift", table)
            column = sql.Identifier(first_column(conn, table))
            for statement in (sql.SQL("DELETE FROM {}").format(name),
                              sql.SQL("UPDATE {} SET {} = {}").format(name, column, column),
                              sql.SQL("INSERT INTO {} DEFAULT VALUES").format(name),
                              sql.SQL("TRUNCATE {}").format(name)):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    reader.execute(statement)
        # nor through a function: the definer functions are not the reader's
        for call in ("SELECT nightshift.enqueue('drift-scan', 'pipeline/1')",
                     "SELECT nightshift.cancel_task(1)",
                     "SELECT nightshift.record_result(1, 1, '{}')",
                     "SELECT * FROM nightshift.suppress_finding(1, 'me', 'why', NULL)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(call)
    assert {t: one(conn, sql.SQL("SELECT count(*) FROM"
                                 " nightshift.{}").format(sql.Identifier(t)).as_string(conn))
            for t in tables} == counts


def test_line_item_partitions_are_closed_to_readers_and_write_only_for_the_loader(
    pg_server: PgServer, db_url: str, conn: psycopg.Connection
) -> None:
    """The loader COPYs into cost_line_items_months, the partition of cost_line_items without
    row-level security (Postgres refuses COPY FROM where it applies). Nobody reads through it: the
    reader has no right on it or on the month partitions, and the loader may only INSERT there."""
    a = seed_organization(conn, "tenant-a")
    seed_organization(conn, "tenant-b")
    partitions = [r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_class AS c WHERE c.relnamespace = 'nightshift'::regnamespace"
        " AND c.relispartition AND c.relkind IN ('r', 'p')"
        " AND c.relname LIKE 'cost\\_line\\_items\\_%' ORDER BY 1")]
    assert "cost_line_items_months" in partitions and len(partitions) >= 2
    with reader_of(pg_server, db_url, conn, a["id"]) as reader, reader.transaction():
        assert set(snapshot(reader, partitions).values()) == {"refused: 42501"}
        assert one(reader, "SELECT count(*) FROM nightshift.cost_line_items") == 1  # A's row only
    with login_role(pg_server.admin_url, "nightshift_cost_loader") as (user, password), \
            psycopg.connect(db_url, user=user, password=password, autocommit=True) as loader:
        loader.execute("SET ROLE nightshift_cost_loader")
        assert one(loader, "SELECT count(*) FROM nightshift.cost_line_items") == 2  # the service policy
        with pytest.raises(psycopg.errors.FeatureNotSupported), loader.cursor() as cur, \
                cur.copy("COPY nightshift.cost_line_items (charge_period_start) FROM STDIN"):
            pass  # refused where row-level security applies
        for name in partitions:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                loader.execute(sql.SQL("SELECT 1 FROM nightshift.{}").format(sql.Identifier(name)))
        with loader.cursor() as cur, \
                cur.copy("COPY nightshift.cost_line_items_months (source_id, ingest_id, charge_period_start)"
                         " FROM STDIN") as copy:
            copy.write_row((1, 1, NOW))
    assert one(conn, "SELECT count(*) FROM nightshift.cost_line_items") == 3  # routed to its month


def first_column(conn: psycopg.Connection, table: str) -> str:
    return str(one(conn, "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
                         " AND NOT attisdropped AND attidentity = '' AND attgenerated = '' ORDER BY"
                         " attnum LIMIT 1",
                   f"nightshift.{table}"))


def test_a_reader_without_membership_sees_empty_results_not_errors(
    pg_server: PgServer, db_url: str, conn: psycopg.Connection
) -> None:
    seed_organization(conn, "tenant-a")
    # a membership naming a role that does not exist (dropped since) grants nothing and breaks nothing
    a_id = one(conn, "SELECT id FROM nightshift.organizations")
    conn.execute("INSERT INTO nightshift.organization_members (organization_id, member) VALUES (%s, 'no"
                 " such role')",
                 (a_id,))
    views, tables = relations(conn, "vm"), relations(conn, "rp")
    with reader_of(pg_server, db_url, conn, None) as reader:
        seen = snapshot(reader, views + tables)
        assert one(reader, "SELECT nightshift.member_organizations()") == []
    shown = {name: rows for name, rows in seen.items() if name not in SHARED and rows != []}
    assert shown == {}


def test_the_owner_sees_every_organization_inside_definer_functions(
    pg_server: PgServer, db_url: str, conn: psycopg.Connection
) -> None:
    a = seed_organization(conn, "tenant-a")
    b = seed_organization(conn, "tenant-b")
    with login_role(pg_server.admin_url, "nightshift_dispatcher") as (user, password), \
            psycopg.connect(db_url, user=user, password=password, autocommit=True) as dispatcher:
        targets = one(dispatcher, "SELECT nightshift.task_targets(%s)", f"pipeline/{b['pipeline']}")
        assert targets is not None
        claimed = dispatcher.execute(
            "SELECT DISTINCT subject FROM nightshift.claim_tasks('w1', NULL, 100, '1 minute')").fetchall()
        assert {f"pipeline/{a['pipeline']}", f"pipeline/{b['pipeline']}"} <= {s for (s,) in claimed}
        # the sender reads every organization's channels (its one table grant)
        channels = dispatcher.execute("SELECT name FROM nightshift.notification_channels ORDER BY"
                                      " 1").fetchall()
        assert channels == [("tenant-a-log",), ("tenant-b-log",)]


@pytest.mark.parametrize("statement", [
    "SELECT nightshift.member_organizations()",
    "SELECT count(*) FROM nightshift.member_subjects()",
])
def test_membership_functions_refuse_a_role_without_grants(
    pg_server: PgServer, db_url: str, conn: psycopg.Connection, statement: str
) -> None:
    # the dispatcher has no SELECT on organization_members: a clear refusal, not another tenant's rows
    with login_role(pg_server.admin_url, "nightshift_dispatcher") as (user, password), \
            psycopg.connect(db_url, user=user, password=password, autocommit=True) as dispatcher, \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        dispatcher.execute(statement)


def explain(conn: psycopg.Connection, role: str, query: str) -> str:
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        conn.execute("SET LOCAL search_path = pg_catalog")  # the same names in every role's plan
        plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN (COSTS OFF) {query}"))
    return plan


def test_the_owner_pays_no_filter_and_the_reader_one_lookup_per_statement(conn: psycopg.Connection) -> None:
    # the owner's policy is USING (true): folded away, the claim plan is the one without row security
    claim = ("UPDATE nightshift.tasks SET status = 'running' WHERE id IN (SELECT id FROM nightshift.tasks"
             " WHERE status = 'queued' ORDER BY priority, run_after, id FOR UPDATE SKIP LOCKED LIMIT 5)"
             " RETURNING id")
    owner_plan = explain(conn, "nightshift_owner", claim)
    assert "SubPlan" not in owner_plan and "member" not in owner_plan
    assert owner_plan == explain(conn, str(one(conn, "SELECT current_user")), claim)  # a superuser: no RLS
    # the reader's: an index scan filtered by a hash of its subjects, built once per statement
    reader_plan = explain(conn, READER, "SELECT * FROM nightshift.scans WHERE subject = 'pipeline/1'")
    assert "Index Cond: (subject = 'pipeline/1'::text)" in reader_plan
    assert "hashed SubPlan" in reader_plan
    # findings: its subjects as one array (an InitPlan, once per statement), so that without any filter
    # of the reader's own the policy itself finds them through findings_scope_idx (migration 0024)
    reader_plan = explain(conn, READER, "SELECT * FROM nightshift.findings WHERE subject = 'pipeline/1'")
    assert "Index Cond: (subject = 'pipeline/1'::text)" in reader_plan
    assert reader_plan.count("InitPlan") == 1 and "= ANY ($0)" in reader_plan
    with conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")  # an empty table: the planner would not bother
        unfiltered = explain(conn, READER, "SELECT * FROM nightshift.findings")
    assert "findings_scope_idx" in unfiltered, unfiltered
