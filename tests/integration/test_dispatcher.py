"""The dispatcher as users run it: real `nightshift dispatcher run` processes against a real Postgres.

Leases are short (2 s) so crashes and stalls play out in seconds. Every process is killed in a
finally, whatever the test's outcome.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support.pgserver import PgServer

ROOT = Path(__file__).resolve().parents[2]
LEASE = 2.0


class DispatcherProcess:
    def __init__(self, db_url: str, log_path: Path, name: str, *options: str) -> None:
        self.name = name
        self.log_path = log_path
        argv = [sys.executable, "-m", "dispatcher", "dispatcher", "run", "--database-url", db_url,
                "--log-json", "--worker", name, "--lease", str(LEASE), "--poll-interval", "0.3",
                *options]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("NIGHTSHIFT_DATABASE_URL", None)
        self._log = open(log_path, "w")  # closed in close()
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and (event is None or record.get("event") == event):
                lines.append(record)
        return lines

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def close(self) -> None:
        if self.proc.poll() is None:
            if sys.platform != "win32":
                with_suppress(lambda: os.kill(self.proc.pid, signal.SIGCONT))
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


def with_suppress(action: Callable[[], object]) -> None:
    try:
        action()
    except ProcessLookupError:
        pass


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def query(db_url: str, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def enqueue(db_url: str, kind: str, subject: str, payload: dict | None = None, max_attempts: int = 3) -> int:
    rows = query(db_url, "SELECT nightshift.enqueue(%s, %s, %s::jsonb, 0, NULL, %s) AS id",
                 (kind, subject, json.dumps(payload or {}), max_attempts))
    assert rows[0]["id"] is not None
    return int(rows[0]["id"])


def task(db_url: str, task_id: int) -> dict[str, Any]:
    rows = query(db_url, "SELECT *, status::text AS status FROM nightshift.tasks WHERE id = %s", (task_id,))
    return rows[0]


def running_in(db_url: str, task_id: int, worker: str) -> bool:
    row = task(db_url, task_id)
    return row["status"] == "running" and row["locked_by"] == worker


@pytest.mark.slow
def test_kill_9_mid_task_is_rerun_by_another_dispatcher_once(db_url: str, dispatchers: Callable) -> None:
    task_id = enqueue(db_url, "sleep", "crash/1", {"seconds": 1.0})
    a = dispatchers("a")
    wait_for(lambda: running_in(db_url, task_id, "a"), 15, "dispatcher a to claim the task")
    a.proc.kill()  # SIGKILL: no cleanup, the lease is left behind
    a.wait_exit(5)
    killed_at = time.monotonic()
    dispatchers("b")
    wait_for(lambda: task(db_url, task_id)["status"] == "done", 15, "the task to be re-run and done")
    assert time.monotonic() - killed_at < LEASE + 8
    row = task(db_url, task_id)
    assert (row["attempt"], row["locked_by"]) == (2, "b")
    assert len(row["errors"]) == 1 and "lease expired" in row["errors"][0]["error"]
    assert row["errors"][0]["worker"] == "a"


@pytest.mark.slow
def test_sigstop_past_the_lease_cannot_complete_or_fail(db_url: str, dispatchers: Callable) -> None:
    task_id = enqueue(db_url, "sleep", "stall/1", {"seconds": 2.5})
    a = dispatchers("a")
    wait_for(lambda: running_in(db_url, task_id, "a"), 15, "dispatcher a to claim the task")
    a.signal(signal.SIGSTOP)
    try:
        dispatchers("b")
        wait_for(lambda: running_in(db_url, task_id, "b"), LEASE + 10, "b to take over after a's lease")
    finally:
        a.signal(signal.SIGCONT)
    # a wakes up with its sleep long over: its completion (or its heartbeat) is refused
    wait_for(lambda: a.events("stale") or a.events("lease_lost"), 10, "a to learn it lost the task")
    row = task(db_url, task_id)
    assert (row["status"], row["attempt"], row["locked_by"]) == ("running", 2, "b")
    wait_for(lambda: task(db_url, task_id)["status"] == "done", 10, "b to complete the task")
    row = task(db_url, task_id)
    assert (row["attempt"], row["locked_by"]) == (2, "b")
    assert [e["attempt"] for e in row["errors"]] == [1]  # only the expired lease, nothing from a


@pytest.mark.slow
def test_listen_connection_terminated_reconnects_and_listens_again(
    db_url: str, dispatchers: Callable
) -> None:
    # a long poll interval: only NOTIFY (or the claim after reconnecting) can wake the dispatcher
    a = dispatchers("a", "--poll-interval", "60")

    def listen_pid() -> int | None:
        rows = query(db_url, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                             "AND application_name = 'nightshift listen a' AND query ILIKE 'LISTEN%%'")
        return rows[0]["pid"] if rows else None

    first = wait_for(listen_pid, 15, "the LISTEN connection")
    query(db_url, "SELECT pg_terminate_backend(%s)", (first,))
    during = enqueue(db_url, "noop", "outage/1")
    second = wait_for(lambda: (pid := listen_pid()) and pid != first and pid, 10, "a new LISTEN connection")
    assert second != first
    after = enqueue(db_url, "noop", "outage/2")
    for task_id in (during, after):
        wait_for(lambda t=task_id: task(db_url, t)["status"] == "done", 5, f"task {task_id} to be done")
    assert a.events("reconnect")


@pytest.mark.slow
def test_work_connection_terminated_while_idle_does_not_spin_and_recovers(
    db_url: str, dispatchers: Callable
) -> None:
    a = dispatchers("a", "--poll-interval", "60")
    first = enqueue(db_url, "noop", "idle/1")
    wait_for(lambda: task(db_url, first)["status"] == "done", 15, "the first task")  # pipeline in use
    [work] = query(db_url, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                           "AND application_name = 'nightshift work a'")
    query(db_url, "SELECT pg_terminate_backend(%s)", (work["pid"],))
    # the server's goodbye makes the socket readable while nothing is outstanding: the daemon must
    # take it in once, not be woken for it at every turn of its event loop
    cpu_before = _cpu_seconds(a.proc.pid)
    time.sleep(1.5)
    assert _cpu_seconds(a.proc.pid) - cpu_before < 0.5
    second = enqueue(db_url, "noop", "idle/2")  # the NOTIFY wakes it; the dead connection is replaced
    wait_for(lambda: task(db_url, second)["status"] == "done", 15, "the task after the termination")
    assert a.events("reconnect")


@pytest.mark.slow
def test_reconnect_backoff_starts_over_once_a_session_has_claimed(
    db_url: str, dispatchers: Callable
) -> None:
    """A connection that keeps dropping, but each time only after its session reconnected and claimed,
    is a string of short outages: the wait before reconnecting stays at its first step (0.1 s, +-20 %),
    instead of doubling towards the 10 s cap as for one long outage."""
    a = dispatchers("a", "--poll-interval", "60")

    def work_pid() -> int | None:
        rows = query(db_url, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                             "AND application_name = 'nightshift work a'")
        return rows[0]["pid"] if rows else None

    first = enqueue(db_url, "noop", "flaky/first")
    wait_for(lambda: task(db_url, first)["status"] == "done", 15, "the first claim")
    for round_ in range(4):
        pid = wait_for(work_pid, 15, "the work connection")
        query(db_url, "SELECT pg_terminate_backend(%s)", (pid,))
        # its NOTIFY wakes the pump, which finds the connection dead, reconnects and claims it
        after = enqueue(db_url, "noop", f"flaky/{round_}")
        wait_for(lambda t=after: task(db_url, t)["status"] == "done", 15, "a claim after reconnecting")
    waits = [event["retry_in_seconds"] for event in a.events("reconnect")]
    assert len(waits) >= 4 and max(waits) <= 0.12, waits


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
def test_postgres_restart_tasks_enqueued_meanwhile_are_claimed(
    pg_server: PgServer, db_url: str, dispatchers: Callable
) -> None:
    cluster = pg_server.cluster
    if cluster is None:
        pytest.skip("the test server is not ours to restart")
    a = dispatchers("a", "--poll-interval", "1")
    warmup = enqueue(db_url, "noop", "restart/0")
    wait_for(lambda: task(db_url, warmup)["status"] == "done", 15, "the first task")
    try:
        cluster.stop()
        time.sleep(2)  # the dispatcher sees the outage and backs off
    finally:
        cluster.start()
    started = time.monotonic()
    task_id = enqueue(db_url, "noop", "restart/1")
    wait_for(lambda: task(db_url, task_id)["status"] == "done", 1 + 10, "the task enqueued after the restart")
    assert time.monotonic() - started < 1 + 10
    assert a.proc.poll() is None, "the dispatcher never exits on a database restart"
    assert a.events("reconnect") and a.events("reconnected")


@pytest.mark.slow
def test_always_failing_task_ends_dead_with_every_error(db_url: str, dispatchers: Callable) -> None:
    query(db_url, "INSERT INTO nightshift.settings (key, value) VALUES ('queue.retry_base_seconds', '0.1') "
                  "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value")
    task_id = enqueue(db_url, "sleep", "fail/1", {"seconds": 0, "fail": True, "error": "always"},
                      max_attempts=3)
    a = dispatchers("a")
    wait_for(lambda: task(db_url, task_id)["status"] == "dead", 20, "the task to be dead")
    row = task(db_url, task_id)
    assert row["attempt"] == 3
    assert [(e["attempt"], e["error"], e["worker"]) for e in row["errors"]] == [
        (1, "always", "a"), (2, "always", "a"), (3, "always", "a")]
    wait_for(lambda: a.events("dead"), 5, "a `dead` log line")
    assert len(a.events("retry")) == 2
    # unknown kinds fail at once, naming the kinds this dispatcher knows
    unknown = enqueue(db_url, "no-such-agent", "x/1")
    wait_for(lambda: task(db_url, unknown)["status"] == "failed", 10, "the unknown kind to fail")
    assert "this dispatcher knows: command, " in task(db_url, unknown)["last_error"]


@pytest.mark.slow
def test_agent_past_its_timeout_is_stopped_and_the_attempt_fails(
    db_url: str, dispatchers: Callable, tmp_path: Path
) -> None:
    # a `sleep` agent (in-process) and a `command` agent whose child would outlive it
    slow = enqueue(db_url, "sleep", "timeout/sleep", {"seconds": 60, "timeout_seconds": 0.5}, max_attempts=1)
    marker = tmp_path / "survived"
    script = _write_script(tmp_path / "slow.sh", f"sleep 3 && touch {marker}\n")
    command = enqueue(db_url, "command", "timeout/command",
                      {"command": [str(script)], "timeout_seconds": 0.5}, max_attempts=1)
    a = dispatchers("a", "--allow-command", str(script))
    for task_id in (slow, command):
        wait_for(lambda t=task_id: task(db_url, t)["status"] == "dead", 15, f"task {task_id} to be dead")
        row = task(db_url, task_id)
        assert "timed out after" in row["last_error"], row["last_error"]
        assert [e["attempt"] for e in row["errors"]] == [1]
    assert not a.events("release")  # a timeout fails the attempt; it is not a shutdown release
    time.sleep(3.5)
    assert not marker.exists(), "the command's process group outlived its timeout"


def process_group(pid: int) -> int | None:
    """The process group of a live (not zombie) process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[2])


def live_members(pgid: int) -> list[int]:
    """Processes of a process group that are not zombies (PID 1 here may never reap orphans)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _write_script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


@pytest.mark.slow
def test_sigterm_finishes_short_tasks_kills_and_releases_long_ones(
    db_url: str, dispatchers: Callable, tmp_path: Path
) -> None:
    pid_file = tmp_path / "long.pid"
    long_script = _write_script(tmp_path / "long.sh", f"echo $$ > {pid_file}\nsleep 60\necho '{{}}'\n")
    short_script = _write_script(tmp_path / "short.sh", "cat >/dev/null\nsleep 1\n"
                                 "echo '{\"ok\": true, \"summary\": {\"n\": 1}}'\n")
    long_id = enqueue(db_url, "command", "term/long", {"command": [str(long_script)]})
    short_id = enqueue(db_url, "command", "term/short", {"command": [str(short_script)]})
    a = dispatchers("a", "--shutdown-timeout", "2", "--allow-command", f"{tmp_path}/*")
    wait_for(lambda: running_in(db_url, long_id, "a") and running_in(db_url, short_id, "a")
             and pid_file.exists() and pid_file.read_text().strip(), 15, "both tasks to run")
    child = int(pid_file.read_text())
    group = process_group(child)  # the run's group (its leader is the reaper, not the script)
    a.signal(signal.SIGTERM)
    sent = time.monotonic()
    time.sleep(0.3)
    late = enqueue(db_url, "noop", "term/late")  # after SIGTERM: not claimed any more
    assert a.wait_exit(15) == 0
    assert 2 <= time.monotonic() - sent < 2 + 8
    assert task(db_url, short_id)["status"] == "done"
    released = task(db_url, long_id)
    assert (released["status"], released["attempt"], released["max_attempts"]) == ("queued", 1, 4)
    assert "released by a" in released["errors"][-1]["error"]
    assert task(db_url, late)["status"] == "queued"
    assert live_members(group) == []  # the agent's whole process group is gone, the script with it
    assert process_group(child) is None
    # a second signal exits at once
    b = dispatchers("b", "--shutdown-timeout", "30", "--allow-command", f"{tmp_path}/*")
    wait_for(lambda: running_in(db_url, long_id, "b"), 15, "b to claim the long task")
    b.signal(signal.SIGTERM)
    time.sleep(0.3)
    b.signal(signal.SIGTERM)
    assert b.wait_exit(3) == 128 + signal.SIGTERM


@pytest.mark.slow
def test_four_dispatchers_drain_20000_noop_tasks_exactly_once(db_url: str, dispatchers: Callable) -> None:
    query(db_url, "INSERT INTO nightshift.tasks (kind, subject) "
                  "SELECT 'noop', 'many/' || g FROM generate_series(1, 20000) AS g")
    procs = [dispatchers(f"d{i}", "--concurrency", "16") for i in range(4)]

    def done() -> bool:
        rows = query(db_url, "SELECT count(*) AS n FROM nightshift.tasks WHERE status = 'done'")
        return bool(rows[0]["n"] == 20000)

    wait_for(done, 90, "20,000 tasks to be done")
    for proc in procs:
        proc.signal(signal.SIGTERM)
    for proc in procs:
        assert proc.wait_exit(15) == 0
    stops = [proc.events("stop")[-1] for proc in procs]
    assert sum(s["claimed"] for s in stops) == 20000
    assert sum(s["succeeded"] for s in stops) == 20000
    assert all(s["stale"] == 0 for s in stops)
    assert sum(1 for s in stops if s["claimed"] > 0) >= 2, stops
    rows = query(db_url, "SELECT status::text AS status, attempt, count(*) AS n FROM nightshift.tasks "
                         "GROUP BY 1, 2")
    assert rows == [{"status": "done", "attempt": 1, "n": 20000}]  # each claimed exactly once


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_metrics_and_healthz(db_url: str, dispatchers: Callable) -> None:
    port = _free_port()
    dispatchers("a", "--metrics-port", str(port))
    ids = [enqueue(db_url, "noop", f"m/{i}") for i in range(5)]
    enqueue(db_url, "sleep", "m/later", {"seconds": 0})
    query(db_url, "UPDATE nightshift.tasks SET run_after = now() + interval '1 hour' "
                  "WHERE subject = 'm/later'")
    wait_for(lambda: all(task(db_url, i)["status"] == "done" for i in ids), 15, "the tasks")

    def get(path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return str(response.read().decode())

    assert get("/healthz") == "ok\n"
    text = wait_for(lambda: (t := get("/metrics")) and 'nightshift_queue_depth{kind="sleep"} 1.0' in t and t,
                    15, "queue depth gauges")
    assert 'nightshift_tasks_claimed_total{kind="noop"} 5.0' in text
    assert 'nightshift_tasks_succeeded_total{kind="noop"} 5.0' in text
    assert "nightshift_task_run_seconds_bucket" in text
    assert "nightshift_listener_reconnects_total 0.0" in text


def test_tasks_cli(db_url: str) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dispatcher", *args, "--database-url", db_url],
                              capture_output=True, text=True, cwd=ROOT, timeout=30)

    out = cli("enqueue", "sleep", "--subject", "cli/1", "--payload", '{"seconds": 1}')
    assert out.returncode == 0, out.stderr
    task_id = int(out.stdout)
    again = cli("enqueue", "sleep", "--subject", "cli/1")
    assert again.returncode == 1 and "already queued or running" in again.stderr
    listed = cli("tasks", "list", "--status", "queued")
    assert f"{task_id}" in listed.stdout and "cli/1" in listed.stdout
    assert cli("tasks", "cancel", str(task_id)).returncode == 0
    shown = cli("tasks", "show", str(task_id), "--json")
    assert json.loads(shown.stdout)["status"] == "cancelled"
    assert cli("tasks", "retry", str(task_id)).returncode == 0
    assert task(db_url, task_id)["status"] == "queued"
    bad = cli("enqueue", "noop", "--payload", "[1]")
    assert bad.returncode == 2 and "JSON object" in bad.stderr
