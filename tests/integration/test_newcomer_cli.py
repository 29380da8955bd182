"""Issue 11: the command line as a newcomer types it. One clear line and a documented exit status
instead of tracebacks, options that refuse nonsense, a bounded forecast, validated settings, the
inventory commands, findings and scans, the embedded cluster found from a subdirectory."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dispatcher.cli import main
from tests.support.pgserver import ROOT, PgServer

NIGHTSHIFT = [sys.executable, "-m", "dispatcher"]


def run(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`nightshift ARGS` in a subprocess, as a user types it."""
    return subprocess.run(
        [*NIGHTSHIFT, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd or ROOT,
        env={**os.environ, **(env or {})},
        input=stdin,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, *phrases: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nightshift: error: "), proc.stderr
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`nightshift ARGS` in this process (faster), through the same main()."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def scratch(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A directory inside the work tree: as root, the cluster's service user cannot enter /tmp/pytest-of-root,
    and the cluster would be looked for elsewhere."""
    path = ROOT / ".nightshift" / "test-scratch" / request.node.name[:40]
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def fake_cluster(root: Path, password: str = "pw") -> Path:
    """What `db start` leaves behind, enough to be found (never started)."""
    (root / "data").mkdir(parents=True)
    (root / "data" / "PG_VERSION").write_text("15\n")
    (root / "password").write_text(password + "\n")
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- errors without tracebacks --------------------------------------------------------------------
def test_a_database_never_migrated_says_so(pg_server: PgServer) -> None:
    with pg_server.database(template=None) as url:  # an empty database
        for args in (("schedule", "list"), ("tasks", "list"), ("orgs", "list"), ("findings", "list")):
            one_line_error(run(*args, "--database-url", url), 3, "not migrated", "nightshift migrate")


def test_a_database_that_stops_mid_command(db_url: str, conn: psycopg.Connection) -> None:
    # pg_terminate_backend is what a server shutdown does to a session (AdminShutdown, 57P01)
    script = textwrap.dedent(f"""
        import psycopg, sys
        from dispatcher.cli import main
        from dispatcher import inventory
        real = inventory.rows
        def rows(url, query, **params):
            with psycopg.connect({db_url!r}, autocommit=True) as other:
                pid = other.execute("SELECT pg_backend_pid()").fetchone()[0]
            with psycopg.connect(url, autocommit=True) as victim:
                pid = victim.execute("SELECT pg_backend_pid()").fetchone()[0]
                with psycopg.connect({db_url!r}, autocommit=True) as killer:
                    killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
                victim.execute("SELECT 1")
        inventory.rows = rows
        sys.exit(main(["orgs", "list", "--database-url", {db_url!r}]))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    one_line_error(proc, 3, "lost the connection to the database", "terminating connection")


def test_a_database_that_stops_during_a_store_command(db_url: str) -> None:
    """The same through the queue's store (`tasks list`): one line, exit 3."""
    script = textwrap.dedent(f"""
        import psycopg, sys
        from dispatcher.cli import main
        from dispatcher.store import Store
        real = Store.list
        async def listing(self, *args, **kwargs):
            pid = (await (await self.conn.execute("SELECT pg_backend_pid()")).fetchone())["pg_backend_pid"]
            with psycopg.connect({db_url!r}, autocommit=True) as killer:
                killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
            return await real(self, *args, **kwargs)
        Store.list = listing
        sys.exit(main(["tasks", "list", "--database-url", {db_url!r}]))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    one_line_error(proc, 3, "lost the connection to", "terminating connection due to administrator command")


def test_libpq_first_line_and_the_hint_only_for_the_embedded_cluster(scratch: Path) -> None:
    given = run("tasks", "list", "--database-url", "postgresql://someone:s3cretpw@127.0.0.1:9/nowhere")
    one_line_error(
        given,
        3,
        "cannot connect to postgresql://someone:***@127.0.0.1:9/nowhere",
        "Connection refused",
        "--database-url",
    )
    assert "nightshift db start" not in given.stderr and "s3cretpw" not in given.stderr
    # an embedded cluster that exists but is stopped: the hint says how to start it
    root = fake_cluster(scratch / "cluster")
    embedded = run(
        "tasks",
        "list",
        env={"NIGHTSHIFT_DATA_DIR": str(root), "NIGHTSHIFT_PG_PORT": "9", "NIGHTSHIFT_DATABASE_URL": ""},
    )
    one_line_error(embedded, 3, "Connection refused", "nightshift db start")


def test_metrics_port_in_use(db_url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run("dispatcher", "run", "--database-url", db_url, "--metrics-port", str(port))
    one_line_error(proc, 1, f"cannot serve metrics on 127.0.0.1:{port}", "in use")


def test_a_reader_that_leaves_is_not_an_error(db_url: str) -> None:
    for i in range(300):
        run_sql(db_url, "INSERT INTO nightshift.organizations (name) VALUES (%s)", f"org-{i:04d}")
    proc = subprocess.run(
        f"{sys.executable} -m dispatcher orgs list --json --database-url '{db_url}' | head -2",
        shell=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert len(proc.stdout.splitlines()) == 2
    assert proc.stderr == "", proc.stderr


def run_sql(url: str, statement: str, *params: object) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as connection:
        cur = connection.execute(statement, params or None)
        return cur.fetchall() if cur.description else []


def test_bad_payloads_and_values(db_url: str, tmp_path: Path) -> None:
    one_line_error(run("enqueue", "noop", "--payload", "{nope", "--database-url", db_url), 2, "is not JSON")
    one_line_error(run("enqueue", "noop", "--payload", "[1]", "--database-url", db_url), 2, "JSON object")
    one_line_error(
        run("enqueue", "noop", "--payload", "@/nonexistent.json", "--database-url", db_url),
        2,
        "cannot read the file",
    )
    for delay in ("1e300", "nan", "inf", "-1"):
        proc = run("enqueue", "noop", "--delay", delay, "--database-url", db_url)
        assert proc.returncode == 2 and "argument --delay" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("enqueue", "noop", "--priority", "99999", "--database-url", db_url)
    assert proc.returncode == 2 and "between -32768 and 32767" in proc.stderr


def test_payload_from_a_file_and_from_stdin(db_url: str, tmp_path: Path) -> None:
    big = {"seconds": 0, "blob": "x" * 5000}
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(big))
    from_file = run("enqueue", "noop", "--payload", f"@{path}", "--database-url", db_url)
    assert from_file.returncode == 0, from_file.stderr
    from_stdin = run(
        "enqueue",
        "noop",
        "--subject",
        "s/2",
        "--payload",
        "-",
        "--database-url",
        db_url,
        stdin=json.dumps({"seconds": 1}),
    )
    assert from_stdin.returncode == 0, from_stdin.stderr
    [(payload,)] = run_sql(
        db_url, "SELECT payload FROM nightshift.tasks WHERE id = %s", int(from_file.stdout)
    )
    assert payload == big
    assert run_sql(db_url, "SELECT payload FROM nightshift.tasks WHERE id = %s", int(from_stdin.stdout)) == [
        ({"seconds": 1},)
    ]
    # tasks show cuts a huge payload unless --full
    shown = run("tasks", "show", from_file.stdout.strip(), "--database-url", db_url)
    assert "--full shows all" in shown.stdout and "x" * 5000 not in shown.stdout
    full = run("tasks", "show", from_file.stdout.strip(), "--full", "--database-url", db_url)
    assert "x" * 5000 in full.stdout


def test_enqueue_warns_about_a_kind_nobody_runs(db_url: str) -> None:
    bogus = run("enqueue", "bogus-kind", "--database-url", db_url)
    assert bogus.returncode == 0 and int(bogus.stdout) > 0
    assert "warning: no agent is installed here for kind 'bogus-kind'" in bogus.stderr
    known = run("enqueue", "noop", "--database-url", db_url)
    assert known.returncode == 0 and known.stderr == ""
    seeded = run("enqueue", "pr-review", "--database-url", db_url)  # a task_kinds row and its agent
    assert seeded.returncode == 0 and "warning" not in seeded.stderr


def test_verbose_after_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "tasks", "list", "-v", "--database-url", "postgresql://u:p@127.0.0.1:9/x")
    assert code == 3 and "Traceback" in err  # -v shows the traceback, after the command too
    code, _, err = cli(capsys, "tasks", "list", "--database-url", "postgresql://u:p@127.0.0.1:9/x")
    assert code == 3 and "Traceback" not in err


# -- options that accept nonsense -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--lease", "0", "must be more than 0"),
        ("--lease", "-5", "must be more than 0"),
        ("--lease", "0.5", "at least 1 second"),
        ("--metrics-port", "99999", "between 1 and 65535"),
        ("--metrics-port", "0", "between 1 and 65535"),
        ("--kinds", ",", "expected kinds separated by commas"),
        ("--kinds", "noop,", "expected kinds separated by commas"),
        ("--concurrency", "0", "must be at least 1"),
        ("--poll-interval", "nan", "finite number"),
    ],
)
def test_dispatcher_options_refuse_nonsense(
    capsys: pytest.CaptureFixture[str], option: str, value: str, says: str
) -> None:
    code, _, err = cli(
        capsys, "dispatcher", "run", "--database-url", "postgresql://u@127.0.0.1:9/x", f"{option}={value}"
    )
    assert code == 2 and says in err, err


def test_dispatcher_settings_from_the_environment_and_a_config_file(tmp_path: Path) -> None:
    from dispatcher.cli import build_parser
    from dispatcher.cli.dispatcher_cmd import settings_from

    config = tmp_path / "nightshift.toml"
    config.write_text(
        '[dispatcher]\nconcurrency = 4\nkinds = ["drift-scan", "noop"]\nlease = 60\n'
        'metrics_port = 9555\nallow_command = ["/opt/agents/*"]\n'
    )
    parser = build_parser()
    args = parser.parse_args(["dispatcher", "run", "--config", str(config), "--lease", "45"])
    values = settings_from(args, {"NIGHTSHIFT_CONCURRENCY": "6"})
    assert values["concurrency"] == 6  # the environment over the file
    assert values["lease"] == 45  # the option over everything
    assert values["kinds"] == ("drift-scan", "noop") and values["metrics_port"] == 9555
    assert values["allow_command"] == ["/opt/agents/*"] and values["poll_interval"] == 2.0
    config.write_text("[dispatcher]\nlease = 0\n")
    proc = run("dispatcher", "run", "--config", str(config), "--database-url", "postgresql://u@127.0.0.1:9/x")
    one_line_error(proc, 2, "lease in the config file", "more than 0")
    config.write_text("[dispatcher]\nconcurency = 3\n")
    proc = run("dispatcher", "run", "--config", str(config), "--database-url", "postgresql://u@127.0.0.1:9/x")
    one_line_error(proc, 2, "unknown setting(s) in the [dispatcher] table: concurency")


# -- a bounded forecast ---------------------------------------------------------------------------
def test_upcoming_is_bounded(db_url: str, conn: psycopg.Connection) -> None:
    org = conn.execute("INSERT INTO nightshift.organizations (name) VALUES ('o') RETURNING id").fetchone()[0]
    repo = conn.execute(
        "INSERT INTO nightshift.repositories (organization_id, name, url) VALUES (%s, 'r', 'x') RETURNING id",
        (org,),
    ).fetchone()[0]
    for i in range(30):
        pipe = conn.execute(
            "INSERT INTO nightshift.pipelines (repository_id, name) VALUES (%s, %s) RETURNING id",
            (repo, f"p{i}"),
        ).fetchone()[0]
        conn.execute("SELECT nightshift.set_frequency(%s, 'HOURLY')", (f"pipeline/{pipe}",))
    one_line_error(
        run("schedule", "upcoming", "--within", "100000y", "--database-url", db_url),
        2,
        "must be at most 366 days",
    )
    one_line_error(
        run("schedule", "upcoming", "--within", "0", "--database-url", db_url),
        2,
        "must be a positive interval",
    )
    one_line_error(
        run("schedule", "upcoming", "--within", "-1 hour", "--database-url", db_url),
        2,
        "must be a positive interval",
    )
    capped = run("schedule", "upcoming", "--within", "366 days", "--limit", "50", "--database-url", db_url)
    assert capped.returncode == 0, capped.stderr
    lines = capped.stdout.splitlines()
    assert len(lines) == 51 and "the first 50; --limit shows more" in lines[-1]
    for statement in (
        "SELECT * FROM nightshift.upcoming_runs('0')",
        "SELECT * FROM nightshift.upcoming_runs('-1 day')",
        "SELECT * FROM nightshift.upcoming_runs('100000 years')",
    ):
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute(statement)
    # the earliest rows, the same as an unbounded forecast's first ones; one transaction, so that both
    # forecasts start at the same now() (an overdue target shows at now())
    with conn.transaction():
        first = conn.execute(
            "SELECT run_at, subject FROM nightshift.upcoming_runs('30 days', NULL, 40)"
        ).fetchall()
        every = conn.execute(
            "SELECT run_at, subject FROM nightshift.upcoming_runs('3 days', NULL, 10000)"
        ).fetchall()
    assert len(first) == 40 and first == every[:40]
    assert "366 days" in run("schedule", "upcoming", "--help").stdout


# -- settings validated when written -------------------------------------------------------------
def test_settings_are_validated_when_written(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as refused:
        conn.execute(
            "UPDATE nightshift.settings SET value = 'banana' WHERE key = 'schedule.stagger.drift-scan'"
        )
    assert "schedule.stagger.drift-scan" in str(refused.value) and "interval" in str(refused.value)
    for key, bad in (
        ("retention.batch_size", "lots"),
        ("schedule.default_frequency.cost-analysis", "FORTNIGHTLY"),
        ("cost.actions", '{"a": 1}'),
        ("cron.maintenance.schedule", "every minute"),
        ("queue.retry_base_seconds", "-3"),
        ("retention.tasks", "-1 day"),
    ):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=key.replace(".", r"\.")):
            conn.execute(
                "INSERT INTO nightshift.settings (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (key, bad),
            )
    conn.execute(
        "UPDATE nightshift.settings SET value = '2 minutes' WHERE key = 'schedule.stagger.drift-scan'"
    )
    conn.execute("INSERT INTO nightshift.settings (key, value) VALUES ('plugin.anything', 'free text')")


def test_a_bad_setting_for_one_kind_never_stops_the_others(conn: psycopg.Connection) -> None:
    org = conn.execute(
        "INSERT INTO nightshift.organizations (name, cost_optimization_enabled) "
        "VALUES ('o', true) RETURNING id"
    ).fetchone()[0]
    repo = conn.execute(
        "INSERT INTO nightshift.repositories (organization_id, name, url) VALUES (%s, 'r', 'x') RETURNING id",
        (org,),
    ).fetchone()[0]
    pipe = conn.execute(
        "INSERT INTO nightshift.pipelines (repository_id, name) VALUES (%s, 'p') RETURNING id", (repo,)
    ).fetchone()[0]
    conn.execute("SELECT nightshift.set_frequency(%s, 'DAILY')", (f"pipeline/{pipe}",))
    conn.execute("UPDATE nightshift.schedules SET next_run_at = now() - interval '1 minute'")
    # a row written before validation existed (the trigger switched off to simulate it)
    conn.execute("ALTER TABLE nightshift.settings DISABLE TRIGGER settings_validate")
    conn.execute("UPDATE nightshift.settings SET value = 'banana' WHERE key = 'schedule.stagger.drift-scan'")
    conn.execute("UPDATE nightshift.settings SET value = 'many' WHERE key = 'cost.lookback_days'")
    conn.execute("ALTER TABLE nightshift.settings ENABLE TRIGGER settings_validate")
    warnings: list[str] = []
    conn.add_notice_handler(lambda diag: warnings.append(diag.message_primary or ""))
    counts = dict(conn.execute("SELECT kind, enqueued FROM nightshift.enqueue_due()").fetchall())
    assert counts["drift-scan"] == 1 and counts["cost-analysis"] == 1
    assert any("schedule.stagger.drift-scan" in w for w in warnings), warnings
    assert any("cost.lookback_days" in w for w in warnings), warnings


# -- the embedded cluster, found like git finds its repository -------------------------------------
def test_the_embedded_cluster_is_found_from_a_subdirectory(scratch: Path, tmp_path: Path) -> None:
    root = fake_cluster(scratch / "project" / ".nightshift" / "postgres")
    deep = scratch / "project" / "infra" / "modules"
    deep.mkdir(parents=True)
    env = {"NIGHTSHIFT_DATA_DIR": "", "NIGHTSHIFT_PG_PORT": "9"}
    status = run("db", "status", cwd=deep, env=env)
    assert status.returncode == 3  # initialised, not running
    assert (
        f"data in {root / 'data'}" in status.stdout and "found in this directory or a parent" in status.stdout
    )
    # outside the work tree (inside it, a cluster of the work tree's own would be found, as designed)
    nowhere = run("db", "status", cwd=tmp_path, env=env)
    assert nowhere.returncode == 3 and "not created" in nowhere.stdout
    assert "no cluster in this directory or its parents" in nowhere.stdout


def test_db_psql_passes_options_and_never_the_password_in_argv(scratch: Path) -> None:
    # a stand-in psql that reports what it was given: argv and PGPASSWORD
    bindir = scratch / "bin"
    bindir.mkdir()
    fake = bindir / "psql"
    fake.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        "print(json.dumps({'argv': sys.argv[1:], 'password': os.environ.get('PGPASSWORD')}))\n"
    )
    fake.chmod(0o755)
    root = fake_cluster(scratch / "c", "s3cret-pw")
    proc = run(
        "db",
        "--data-dir",
        str(root),
        "--port",
        "6001",
        "psql",
        "-c",
        "select 1",
        "-At",
        env={"PATH": f"{bindir}:{os.environ['PATH']}"},
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["password"] == "s3cret-pw"
    assert "s3cret-pw" not in " ".join(seen["argv"])
    assert seen["argv"] == [
        "--dbname",
        "postgresql://nightshift@127.0.0.1:6001/nightshift",
        "-c",
        "select 1",
        "-At",
    ]


# -- inventory, findings and scans ---------------------------------------------------------------
def test_inventory_from_the_command_line(db_url: str) -> None:
    def ok(*args: str) -> str:
        proc = run(*args, "--database-url", db_url)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert "created organization 1: acme" in ok("orgs", "add", "acme", "--cost")
    one_line_error(run("orgs", "add", "acme", "--database-url", db_url), 2, "exists already")
    assert "created repository 1" in ok(
        "repos", "add", "--org", "acme", "infra", "https://git.example/infra.git"
    )
    one_line_error(
        run("repos", "add", "--org", "nobody", "x", "y", "--database-url", db_url),
        3,
        "no organization nobody",
    )
    out = ok(
        "pipelines",
        "add",
        "--repo",
        "1",
        "network-with-a-long-name",
        "--directory",
        "envs/prod",
        "--var-file",
        "prod.tfvars",
        "--env",
        "TF_VAR_*",
        "--frequency",
        "daily",
    )
    assert "created pipeline 1" in out and "drift-scan DAILY, next run" in out
    one_line_error(
        run("pipelines", "add", "--repo", "1", "bad", "--directory", "../up", "--database-url", db_url),
        2,
        "relative path inside the repository",
    )
    assert "created cloud integration 1" in ok(
        "integrations", "add", "--org", "1", "aws", "123456789012", "--framework", "CIS", "--compliance"
    )
    assert "created suppression 1" in ok(
        "suppressions",
        "add",
        "--owner",
        "alice",
        "--reason",
        "FinOps tags",
        "--address",
        "aws_s3_bucket.*",
        "--attribute",
        "tags*.*",
        "--expires",
        "90d",
    )
    listed = ok("pipelines", "list")
    assert "network-with-a-long-name" in listed and "acme/infra" in listed  # never cut at 16 characters
    [pipeline] = [json.loads(line) for line in ok("pipelines", "list", "--json").splitlines()]
    assert pipeline["frequency"] == "DAILY" and pipeline["directory"] == "envs/prod"
    assert json.loads(ok("orgs", "show", "acme", "--json"))["cost_optimization_enabled"] is True
    assert [json.loads(line)["provider"] for line in ok("integrations", "list", "--json").splitlines()] == [
        "aws"
    ]
    assert "integration 1" in ok("integrations", "remove", "1")
    assert ok("integrations", "list", "--json") == ""
    assert len(ok("integrations", "list", "--deleted", "--json").splitlines()) == 1
    assert "removed suppression 1" in ok("suppressions", "remove", "1")
    one_line_error(run("suppressions", "show", "1", "--database-url", db_url), 3, "no suppression 1")
    assert "removed organization 1 (acme)" in ok("orgs", "remove", "acme")
    assert run_sql(db_url, "SELECT count(*) FROM nightshift.pipelines") == [(0,)]


def claim(conn: psycopg.Connection) -> None:
    """What a dispatcher does before it records a result: attempt 1 of the queued task."""
    assert conn.execute(
        "SELECT count(*) FROM nightshift.claim_tasks('test', NULL, 1, '1 minute')"
    ).fetchone() == (1,)


def test_findings_and_scans_from_the_command_line(db_url: str, conn: psycopg.Connection) -> None:
    org = conn.execute("INSERT INTO nightshift.organizations (name) VALUES ('demo') RETURNING id").fetchone()[
        0
    ]
    repo = conn.execute(
        "INSERT INTO nightshift.repositories (organization_id, name, url) "
        "VALUES (%s, 'infra', 'x') RETURNING id",
        (org,),
    ).fetchone()[0]
    pipe = conn.execute(
        "INSERT INTO nightshift.pipelines (repository_id, name) VALUES (%s, 'net') RETURNING id", (repo,)
    ).fetchone()[0]
    subject = f"pipeline/{pipe}"
    task = conn.execute("SELECT nightshift.enqueue('drift-scan', %s)", (subject,)).fetchone()[0]
    claim(conn)
    findings = [
        {
            "kind": "drift",
            "fingerprint": f"fp{i}",
            "severity": "medium",
            "address": f"aws_s3_bucket.b{i}",
            "type": "aws_s3_bucket",
            "change": "update",
        }
        for i in range(2)
    ]
    scan = conn.execute(
        "SELECT nightshift.record_scan(%s, 1, 'DRIFTED', '{}'::jsonb, %s::jsonb, '{}'::jsonb, NULL, now())",
        (task, json.dumps(findings)),
    ).fetchone()[0]
    assert scan is not None

    def ok(*args: str) -> str:
        proc = run(*args, "--database-url", db_url)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    rows = [
        json.loads(line)
        for line in ok(
            "findings", "list", "--status", "open", "--target", "demo/infra/net", "--since", "1h", "--json"
        ).splitlines()
    ]
    assert {r["address"] for r in rows} == {"aws_s3_bucket.b0", "aws_s3_bucket.b1"}
    assert ok("findings", "list", "--kind", "compliance", "--json") == ""
    first = rows[0]["id"]
    assert json.loads(ok("findings", "show", str(first), "--json"))["fingerprint"].startswith("fp")
    out = ok(
        "findings", "suppress", str(first), "--owner", "alice", "--reason", "expected", "--expires", "30d"
    )
    assert f"finding {first} suppressed" in out
    statuses = {
        json.loads(line)["id"]: json.loads(line)["status"]
        for line in ok("findings", "list", "--json").splitlines()
    }
    assert statuses[first] == "SUPPRESSED" and list(statuses.values()).count("OPEN") == 1
    [listed] = [
        json.loads(line) for line in ok("scans", "list", "--status", "drifted", "--json").splitlines()
    ]
    assert listed["id"] == scan and listed["target"] == "demo/infra/net"
    assert "DRIFTED" in ok("scans", "show", str(scan))
    one_line_error(run("scans", "show", "999999", "--database-url", db_url), 3, "no scan 999999")
    one_line_error(
        run("findings", "suppress", "999999", "--owner", "a", "--reason", "b", "--database-url", db_url),
        3,
        "no finding with id 999999",
    )


def test_tasks_show_tells_an_error_scan_from_success(db_url: str, conn: psycopg.Connection) -> None:
    task = conn.execute("SELECT nightshift.enqueue('drift-scan', 'pipeline/12345')").fetchone()[0]
    claim(conn)
    conn.execute(
        "SELECT nightshift.record_scan(%s, 1, 'ERROR', '{}'::jsonb, '[]'::jsonb, '{}'::jsonb, "
        "'terraform init failed: no provider', now())",
        (task,),
    )
    shown = run("tasks", "show", str(task), "--database-url", db_url)
    assert shown.returncode == 0, shown.stderr
    assert "status      done" in shown.stdout
    assert (
        ": ERROR, finished" in shown.stdout
        and "scan error  terraform init failed: no provider" in shown.stdout
    )
    as_json = json.loads(run("tasks", "show", str(task), "--json", "--database-url", db_url).stdout)
    assert as_json["scan"]["status"] == "ERROR"


def test_drift_parse_detailed_exitcode(tmp_path: Path) -> None:
    plans = ROOT / "tests" / "fixtures" / "plans"
    assert run("drift", "parse", str(plans / "clean.json"), "--detailed-exitcode").returncode == 0
    drifted = run("drift", "parse", str(plans / "bucket_tags_changed.json"), "--detailed-exitcode")
    assert drifted.returncode == 2 and drifted.stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    one_line_error(run("drift", "parse", str(bad), "--detailed-exitcode"), 1)
    one_line_error(run("drift", "parse", str(bad)), 2)


def test_shell_completion() -> None:
    proc = run("completion", "bash")
    assert proc.returncode == 0 and "complete" in proc.stdout and "nightshift" in proc.stdout
    # what the shell does on <TAB>: argcomplete answers from the same parser
    answer = ROOT / ".nightshift" / "completion-test"
    answer.parent.mkdir(exist_ok=True)
    env = {
        "_ARGCOMPLETE": "1",
        "COMP_LINE": "nightshift fin",
        "COMP_POINT": "14",
        "_ARGCOMPLETE_IFS": "\n",
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
    }
    try:
        subprocess.run(NIGHTSHIFT, env={**os.environ, **env}, cwd=ROOT, timeout=60, capture_output=True)
        assert answer.read_text().split() == ["findings"]
    finally:
        answer.unlink(missing_ok=True)


def test_a_second_demo_keeps_the_schedule_the_user_changed(conn: psycopg.Connection) -> None:
    from dispatcher.cli.demo_cmd import SAMPLE

    conn.execute(SAMPLE, {"repo_url": "examples/demo"})
    [(subject,)] = conn.execute("SELECT 'pipeline/' || id FROM nightshift.pipelines").fetchall()
    conn.execute("SELECT nightshift.set_frequency(%s, 'HOURLY')", (subject,))
    conn.execute(SAMPLE, {"repo_url": "examples/demo"})
    assert conn.execute(
        "SELECT frequency::text FROM nightshift.schedules WHERE kind = 'drift-scan'"
    ).fetchall() == [("HOURLY",)]


def test_the_demo_notifies_the_log_channel_unless_the_user_chose_one(conn: psycopg.Connection) -> None:
    from dispatcher.cli.demo_cmd import DEMO_CHANNEL, SAMPLE

    conn.execute("INSERT INTO nightshift.organizations (name) VALUES ('someone-else')")
    conn.execute(SAMPLE, {"repo_url": "examples/demo"})
    conn.execute(DEMO_CHANNEL)
    assert conn.execute("SELECT kind FROM nightshift.notification_channels WHERE name = 'demo-log'"
                        ).fetchall() == [("log",)]
    channels = "SELECT kind, notification_channel FROM nightshift.schedules ORDER BY kind, organization_id"
    demo_org = "(SELECT id FROM nightshift.organizations WHERE name = 'demo')"
    assert conn.execute(f"SELECT kind, notification_channel FROM nightshift.schedules"
                        f" WHERE organization_id = {demo_org} OR pipeline_id IS NOT NULL ORDER BY kind"
                        ).fetchall() == [("cost-analysis", "demo-log"), ("drift-scan", "demo-log")]
    assert ("cost-analysis", None) in conn.execute(channels).fetchall()  # another tenant's stays
    conn.execute("UPDATE nightshift.schedules SET notification_channel = 'ops-slack'"
                 " WHERE kind = 'drift-scan'")
    conn.execute(SAMPLE, {"repo_url": "examples/demo"})
    conn.execute(DEMO_CHANNEL)
    chosen = conn.execute("SELECT notification_channel FROM nightshift.schedules WHERE kind = 'drift-scan'")
    assert chosen.fetchall() == [("ops-slack",)]


def test_tables_never_cut_a_long_kind(db_url: str) -> None:
    long_kind = "a-very-long-plugin-kind-name"
    assert run("enqueue", long_kind, "--database-url", db_url).returncode == 0
    listed = run("tasks", "list", "--database-url", db_url)
    assert long_kind in listed.stdout
    assert all(line == line.rstrip() for line in listed.stdout.splitlines())
