"""Benchmark: `nightshift serve` taking signed GitHub pull_request deliveries, against the same server
answering a bare GET /healthz, in the same run.

A real `nightshift serve` (uvicorn, the async pool, the access log) runs on a loopback port against a
database of its own on the embedded cluster (or $NIGHTSHIFT_DATABASE_URL's server). A load client in
another process (a small keep-alive HTTP/1.1 client on asyncio, so the client costs little of the two
cores) sends, at 1 and at 64 connections:

  healthz   GET /healthz: the server's own ceiling (HTTP parsing, routing, the access layer);
  webhooks  POST /webhooks/github: GitHub's pull_request.opened payload (../shared/corpora/github-webhooks),
            compact as GitHub sends it, each delivery a pull request of its own, signed with HMAC-SHA256;
            20% of the requests replay an earlier delivery id (sometimes while the original is still in
            flight). Each one: verify, match the repository, record the delivery, enqueue a pr-review.

It prints requests/s, p50 and p99 latency of both, their ratio (goal: webhooks >= 0.5 of healthz), and
checks the queue afterwards: every unique delivery has exactly one task (zero lost), no delivery has two
(zero duplicated), every replay was answered "duplicate". Run with `make bench-intake`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import multiprocessing
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dispatcher.config import URL_ENV, resolve_url  # noqa: E402
from dispatcher.db import connect, drop_database, recreate_database  # noqa: E402
from dispatcher.migrate import migrate  # noqa: E402

DATABASE = "nightshift_bench_intake"
CORPUS = ROOT.parent / "shared" / "corpora" / "github-webhooks"
SECRET = "bench secret, not a real one"
SECRET_ENV = "NIGHTSHIFT_BENCH_WEBHOOK_SECRET"


# -- the load client (runs in its own process) ---------------------------------------------------------

@dataclass
class Plan:
    """What one client run sends: either /healthz, or `count` deliveries with a share of replays."""

    port: int
    count: int
    concurrency: int
    webhooks: bool
    first_number: int = 1  # pull request numbers (and delivery ids) of this run start here
    replay_rate: float = 0.2
    seed: int = 1


def build_requests(plan: Plan) -> tuple[list[bytes], list[str], list[bool]]:
    """(raw HTTP requests, delivery ids, is-a-replay) in sending order."""
    host = f"127.0.0.1:{plan.port}"
    if not plan.webhooks:
        raw = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bench\r\n\r\n".encode()
        return [raw] * plan.count, [""] * plan.count, [False] * plan.count
    template = json.loads((CORPUS / "pull_request.opened.json").read_bytes())
    rng = random.Random(plan.seed)
    unique: list[bytes] = []
    requests, deliveries, replays = [], [], []
    number = plan.first_number
    for _ in range(plan.count):
        if unique and rng.random() < plan.replay_rate:
            index = rng.randrange(len(unique))
            requests.append(unique[index])
            deliveries.append(f"bench-{plan.first_number + index}")
            replays.append(True)
            continue
        template["number"] = template["pull_request"]["number"] = number
        body = json.dumps(template, separators=(",", ":")).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        raw = (f"POST /webhooks/github HTTP/1.1\r\nHost: {host}\r\nUser-Agent: GitHub-Hookshot/bench\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
               f"X-GitHub-Event: pull_request\r\nX-GitHub-Delivery: bench-{number}\r\n"
               f"X-Hub-Signature-256: {signature}\r\n\r\n").encode() + body
        unique.append(raw)
        requests.append(raw)
        deliveries.append(f"bench-{number}")
        replays.append(False)
        number += 1
    return requests, deliveries, replays


async def run_plan(plan: Plan) -> dict[str, Any]:
    requests, deliveries, replays = build_requests(plan)
    latencies = [0.0] * len(requests)
    answers: list[tuple[int, str]] = [(0, "")] * len(requests)
    next_index = 0

    async def connection() -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection("127.0.0.1", plan.port)
        try:
            while next_index < len(requests):
                i = next_index
                next_index += 1
                started = time.perf_counter()
                writer.write(requests[i])
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                latencies[i] = time.perf_counter() - started
                status = int(status_line.split()[1])
                outcome = json.loads(body).get("status", "") if plan.webhooks else ""
                answers[i] = (status, outcome)
        finally:
            writer.close()

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(connection() for _ in range(plan.concurrency)))
    elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "latencies": latencies, "answers": answers, "deliveries": deliveries,
            "replays": replays, "client_cpu": time.process_time() - cpu_started}


def client_process(plan: Plan) -> dict[str, Any]:
    try:
        import uvloop

        return uvloop.run(run_plan(plan))  # type: ignore[no-any-return]
    except ImportError:
        return asyncio.run(run_plan(plan))


def load(pool: Any, plan: Plan, server_pid: int | None = None,
         postmaster: int | None = None) -> dict[str, Any]:
    """Run one plan; with server_pid, also the server's CPU seconds spent meanwhile (a measure that
    other load on the machine does not skew the way it skews requests/s), and with postmaster the CPU
    seconds of the whole PostgreSQL cluster (backends, WAL writer, checkpointer)."""
    before = cpu_seconds(server_pid) if server_pid else 0.0
    db_before = cluster_cpu_seconds(postmaster) if postmaster else 0.0
    result: dict[str, Any] = pool.apply(client_process, (plan,))
    result["server_cpu"] = cpu_seconds(server_pid) - before if server_pid else 0.0
    result["db_cpu"] = cluster_cpu_seconds(postmaster) - db_before if postmaster else 0.0
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cluster_cpu_seconds(postmaster: int) -> float:
    """CPU time of a PostgreSQL postmaster and its children (ended backends are not counted: the
    server's pool keeps its connections for the whole run)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == postmaster or int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


# -- the server and the report ---------------------------------------------------------------------------

def prepare(server_url: str) -> str:
    url = recreate_database(server_url, DATABASE)
    migrate(url)
    with connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO nightshift.organizations (name) VALUES ('bench')")
        conn.execute("INSERT INTO nightshift.repositories (organization_id, name, url, full_name,"
                     " pr_review_enabled) SELECT id, 'hello-world', 'https://github.com/Codertocat/Hello-World',"
                     " 'Codertocat/Hello-World', true FROM nightshift.organizations")
        # a realistic registry: the delivery's repository is one of a thousand
        conn.execute("INSERT INTO nightshift.repositories (organization_id, name, url, full_name)"
                     " SELECT o.id, 'r' || g, 'https://github.com/acme/r' || g, 'acme/r' || g"
                     " FROM nightshift.organizations o, generate_series(1, 999) g")
        conn.execute("ANALYZE")
    return url


def start_server(url: str, log_path: Path) -> tuple[subprocess.Popen, int]:
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "dispatcher", "serve", "--database-url", url, "--port", "0",
         "--webhook-secret", f"env:{SECRET_ENV}"],
        stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, SECRET_ENV: SECRET}, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log_path.read_text()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
        if match and "Application startup complete" in text:
            return process, int(match.group(1))
        if process.poll() is not None:
            raise SystemExit(f"nightshift serve exited:\n{text}")
        time.sleep(0.1)
    raise SystemExit("nightshift serve did not start within 60 s")


def commit_floor(url: str, n: int = 300) -> float:
    """Seconds per durable INSERT + COMMIT from one connection: what no delivery can go below."""
    with connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commit (x int)")
        started = time.perf_counter()
        for i in range(n):
            conn.execute("INSERT INTO bench_commit VALUES (%s)", (i,))
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_commit")
    return elapsed / n


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(result: dict[str, Any]) -> dict[str, float]:
    latencies = result["latencies"]
    return {"rps": len(latencies) / result["elapsed"], "p50": percentile(latencies, 0.5) * 1000,
            "p99": percentile(latencies, 0.99) * 1000, "cpu": result["server_cpu"] / len(latencies) * 1000,
            "client_cpu": result["client_cpu"] / len(latencies) * 1000,
            "db_cpu": result["db_cpu"] / len(latencies) * 1000}


def total_cpu(row: dict[str, float]) -> float:
    return row["cpu"] + row["client_cpu"] + row["db_cpu"]


def check_answers(result: dict[str, Any]) -> tuple[int, int, list[str]]:
    """(unique deliveries, replays, problems) of one webhook run, from its answers."""
    problems = []
    enqueued = sum(1 for status, outcome in result["answers"] if (status, outcome) == (202, "enqueued"))
    duplicate = sum(1 for status, outcome in result["answers"] if (status, outcome) == (200, "duplicate"))
    unique = result["replays"].count(False)
    replays = result["replays"].count(True)
    if enqueued != unique or duplicate != replays:
        others = sorted({a for a in result["answers"] if a[1] not in ("enqueued", "duplicate")})
        problems.append(f"{enqueued} enqueued for {unique} unique, {duplicate} duplicate for "
                        f"{replays} replays (other answers: {others[:5]})")
    return unique, replays, problems


def check_queue(url: str, expected: set[str]) -> tuple[int, int]:
    """(lost, duplicated): unique deliveries without a task, and tasks beyond one per delivery."""
    with connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT payload ->> 'delivery_id', count(*) FROM nightshift.tasks"
                            " WHERE kind = 'pr-review' GROUP BY 1").fetchall()
    per_delivery = {delivery: count for delivery, count in rows}
    lost = len(expected - per_delivery.keys())
    duplicated = sum(count - 1 for count in per_delivery.values()) + len(per_delivery.keys() - expected)
    return lost, duplicated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests-c1", type=int, default=1500, help="requests per run at 1 connection")
    parser.add_argument("--requests-c64", type=int, default=8000, help="requests per run at 64 connections")
    parser.add_argument("--keep", action="store_true", help=f"keep the {DATABASE} database afterwards")
    args = parser.parse_args()
    if not (CORPUS / "pull_request.opened.json").is_file():
        print(f"bench-intake needs GitHub's payloads in {CORPUS} (../shared/corpora next to the repository)",
              file=sys.stderr)
        return 2

    postmaster = None  # the embedded cluster's: its CPU per request is reported too
    if not os.environ.get(URL_ENV):
        from dispatcher.localpg import LocalCluster

        cluster = LocalCluster.from_env()
        cluster.start()
        postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    server_url = resolve_url(None)
    url = prepare(server_url)
    log_path = Path(tempfile.mkstemp(prefix="bench-intake-", suffix=".log")[1])
    server, port = start_server(url, log_path)
    context = multiprocessing.get_context("spawn")
    expected: set[str] = set()
    problems: list[str] = []
    number = 1
    rows = []
    try:
        with context.Pool(1) as pool:
            # warm-up: connections in the pool, prepared statements, the client process
            load(pool, Plan(port, 300, 8, webhooks=False))
            warm = load(pool, Plan(port, 300, 8, webhooks=True, first_number=number, seed=0))
            expected |= {d for d, r in zip(warm["deliveries"], warm["replays"], strict=True) if not r}
            problems += check_answers(warm)[2]
            number += 1000
            for concurrency, count in ((1, args.requests_c1), (64, args.requests_c64)):
                health = summary(load(pool, Plan(port, count, concurrency, webhooks=False), server.pid,
                                      postmaster))
                result = load(pool, Plan(port, count, concurrency, webhooks=True, first_number=number,
                                         seed=concurrency), server.pid, postmaster)
                unique, replays, found = check_answers(result)
                problems += found
                expected |= {d for d, r in zip(result["deliveries"], result["replays"], strict=True) if not r}
                number += count
                rows.append((concurrency, health, summary(result), unique, replays))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    lost, duplicated = check_queue(url, expected)
    floor = commit_floor(url)

    size = len(build_requests(Plan(port, 1, 1, webhooks=True))[0][0])
    print(f"nightshift serve on 127.0.0.1:{port}, database {DATABASE}; deliveries of {size} bytes "
          "(compact JSON, as GitHub sends), 20% replays; client in another process")
    print(f"floor of one delivery: a durable commit round trip takes {floor * 1000:.2f} ms here "
          "(INSERT + COMMIT at 1 connection)")
    print(f"{'conns':>5}  {'endpoint':<24} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms':>7} "
          f"{'client':>7} {'db':>6}   ratio of healthz req/s")
    for concurrency, health, hooks, unique, replays in rows:
        print(f"{concurrency:>5}  {'GET /healthz':<24} {health['rps']:>8.0f} {health['p50']:>8.2f} "
              f"{health['p99']:>8.2f} {health['cpu']:>7.3f} {health['client_cpu']:>7.3f} "
              f"{health['db_cpu']:>6.3f}")
        ratio = hooks["rps"] / health["rps"]
        verdict = "goal >= 0.5 met" if ratio >= 0.5 else "goal >= 0.5 NOT met"
        print(f"{concurrency:>5}  {'POST /webhooks/github':<24} {hooks['rps']:>8.0f} {hooks['p50']:>8.2f} "
              f"{hooks['p99']:>8.2f} {hooks['cpu']:>7.3f} {hooks['client_cpu']:>7.3f} {hooks['db_cpu']:>6.3f}"
              f"   {ratio:.2f} "
              f"({verdict}; {unique} unique + {replays} replays)")
    print("cpu ms: the server process's CPU time per request (user + system); client: the load client's; "
          "db: the embedded PostgreSQL cluster's (all its processes)")
    for concurrency, health, hooks, _, _ in rows:
        if concurrency > 1:  # the commit is shared: what limits is CPU, the server's and the machine's
            print(f"at {concurrency} connections the bound is CPU: the server's per request allows "
                  f"a ratio of "
                  f"{health['cpu'] / hooks['cpu']:.2f} (a core of its own), the three processes' together "
                  f"{total_cpu(health) / total_cpu(hooks):.2f} (cores shared with other load)")
    if rows and rows[0][0] == 1:
        bound = (1000 / rows[0][1]["rps"]) / (floor * 1000 + 1000 / rows[0][1]["rps"])
        print(f"at 1 connection each delivery waits for its own durable commit: with {floor * 1000:.2f} ms "
              f"of commit and {1000 / rows[0][1]['rps']:.2f} ms per healthz request, the ratio cannot "
              f"exceed {bound:.2f} here")
    print(f"queue: {len(expected)} unique deliveries -> lost {lost}, duplicated {duplicated}"
          + ("" if not problems else f"; answer problems: {problems}"))
    if not args.keep:
        drop_database(server_url, DATABASE)
    log_path.unlink()
    return 0 if lost == 0 and duplicated == 0 and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
