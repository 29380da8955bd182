"""Benchmark: 10,000 pending transitions across 100 Slack channels, delivered to a loopback receiver.

In a database of its own on the embedded cluster (or the server of $NIGHTSHIFT_DATABASE_URL):

  1. 100 slack channels, each an incoming-webhook URL on a loopback HTTP receiver (a separate
     process, answering 200 "ok" like Slack after LATENCY, an endpoint's round trip); 10,000 outbox
     rows, one drift transition each, spread
     round-robin over the channels, all pending at once (a burst: a night of scans committed together).
  2. The real sender (dispatcher.notify.run_sender, default settings but min_interval 0) delivers
     them until none is left; its rows/s is 10,000 over that time.
  3. A bare httpx loop posts the same bodies the receiver got (same order, same concurrency as the
     sender's, same event loop: uvloop, as `nightshift notify run` and the dispatcher use), with
     nothing else: no database, no rendering. Its rows/s is 10,000 over its time.
  4. Once more without the latency: sender and bare loop against an answer that takes no time,
     printed for the CPU it shows, not compared with the goal.
  5. The same burst again with Slack's rate (min_interval 1 s per channel, the default), for the noise
     ratio a real channel gets; reported, not compared.

Printed: messages sent / transitions (the noise ratio) and sender rows/s / bare-loop rows/s
(goal >= 0.5). Run with `make bench-notify`.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dispatcher import eventloop
from dispatcher.config import URL_ENV, resolve_url
from dispatcher.db import drop_database, recreate_database
from dispatcher.migrate import migrate
from dispatcher.notify.sender import SenderConfig, run_sender

DATABASE = "nightshift_bench_notify"
CHANNELS = 100
TRANSITIONS = 10_000
GOAL = 0.5
# How long the receiver takes to answer a POST: a webhook endpoint's round trip (Slack's incoming
# webhooks answer in 100-300 ms from Europe; this is less). Both the sender and the bare loop wait
# for it, with the same concurrency. Without it (the /fast/ paths), a loopback answer takes well
# under a millisecond and the comparison measures the CPU of two Python processes on a shared
# machine instead; that pass is printed too, for what it says about the sender's CPU per row.
LATENCY = 0.05

FILL = """
INSERT INTO nightshift.notifications (channel, template, payload)
SELECT 'bench-' || (g %% %(channels)s),
       'drift-changed',
       jsonb_build_object(
           'subject', 'pipeline/' || g, 'target', 'acme/infra/pipeline-' || g, 'task_kind', 'drift-scan',
           'scan_id', g, 'scan_status', 'DRIFTED',
           'counts', jsonb_build_object('new', 1, 'reopened', 0, 'resolved', 0, 'unsuppressed', 0,
                                        'suppressed', 0, 'open', 1),
           'new', jsonb_build_array(jsonb_build_object(
               'id', g, 'kind', 'drift', 'address', 'aws_security_group.web_' || g,
               'type', 'aws_security_group', 'change', 'update', 'severity', 'medium', 'status', 'OPEN',
               'attributes', jsonb_build_array('ingress'))),
           'reopened', '[]'::jsonb, 'resolved', '[]'::jsonb, 'unsuppressed', '[]'::jsonb,
           'suppressed', '[]'::jsonb, 'truncated', false)
  FROM generate_series(1, %(transitions)s) AS g
"""
UNSETTLED = ("SELECT count(*) FROM nightshift.notifications"
             " WHERE status = 'sending' OR (status = 'pending' AND next_attempt_at <= now())")


# the loopback receiver, in its own process so that it does not share the sender's CPU time slice

class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bodies: ClassVar[list[tuple[str, bytes]]] = []  # one receiver per process

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # headers and body leave at once: with Nagle's algorithm the body waited for the client's delayed
    # ACK of the headers (40 ms on Linux loopback), a latency nobody chose
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not self.path.endswith("/baseline"):
            self.bodies.append((self.path, body))
        if not self.path.startswith("/fast/"):
            time.sleep(LATENCY)  # this connection's thread only: the others answer meanwhile
        self._answer(b"ok")

    def do_GET(self) -> None:  # /dump: the bodies received, then forget them
        dump = json.dumps([[path, body.decode()] for path, body in self.bodies]).encode()
        self.bodies.clear()
        self._answer(dump)

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), _Receiver)
    server.daemon_threads = True
    server.serve_forever()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# the runs

def prepare(url: str, base: str, min_interval: float) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE nightshift.notifications, nightshift.notification_channels")
        for i in range(CHANNELS):
            os.environ[f"NS_BENCH_HOOK_{i}"] = f"{base}/services/T0/B{i}/bench"
        conn.execute(
            "INSERT INTO nightshift.notification_channels (name, kind, settings, min_interval)"
            " SELECT 'bench-' || i, 'slack', jsonb_build_object('webhook_url', 'env:NS_BENCH_HOOK_' || i),"
            " make_interval(secs => %s) FROM generate_series(0, %s - 1) AS i", (min_interval, CHANNELS))
        conn.execute(FILL, {"channels": CHANNELS, "transitions": TRANSITIONS})
        conn.execute("VACUUM ANALYZE nightshift.notifications")


async def deliver(url: str, config: SenderConfig) -> tuple[float, int]:
    """Run the sender until the outbox is empty: (seconds, messages sent)."""
    stop = asyncio.Event()
    started = time.perf_counter()
    sender = asyncio.create_task(run_sender(url, config, stop))
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while True:
            row = await (await conn.execute(UNSETTLED)).fetchone()
            if row == (0,):
                break
            if sender.done():
                raise SystemExit(f"the sender stopped early: {sender.result()}")
            await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    stop.set()
    stats = await sender
    if stats.sent != TRANSITIONS:
        raise SystemExit(f"only {stats.sent} of {TRANSITIONS} rows were sent (failed: {stats.failed})")
    return elapsed, stats.messages


async def bare_loop(base: str, bodies: list[bytes], concurrency: int) -> float:
    """The same bodies posted by `concurrency` httpx workers and nothing else."""
    queue = list(reversed(bodies))

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            body = queue.pop()
            response = await client.post(f"{base}/baseline", content=body,
                                         headers={"Content-Type": "application/json"})
            response.raise_for_status()

    async with httpx.AsyncClient(timeout=10) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return time.perf_counter() - started


def dump(base: str) -> list[bytes]:
    response = httpx.get(f"{base}/dump", timeout=60)
    return [body.encode() for _, body in response.json()]


def pair(url: str, base: str, config: SenderConfig) -> tuple[float, int, float, int]:
    """The sender's run, then the bare loop posting the bodies it sent.

    Returns (sender seconds, messages, bare loop seconds, bytes posted)."""
    prepare(url, base, min_interval=0.0)
    seconds, messages = eventloop.run(deliver(url, config))
    bodies = dump(base)
    assert len(bodies) == messages, (len(bodies), messages)
    bare = eventloop.run(bare_loop(base, bodies, config.concurrency))
    return seconds, messages, bare, sum(map(len, bodies))


def main() -> int:
    port = free_port()
    receiver = multiprocessing.get_context("spawn").Process(target=serve, args=(port,), daemon=True)
    receiver.start()
    base = f"http://127.0.0.1:{port}"
    if not os.environ.get(URL_ENV):
        from dispatcher.localpg import LocalCluster

        LocalCluster.from_env().start()
    server_url = resolve_url(None)
    url = recreate_database(server_url, DATABASE)
    try:
        migrate(url)
        for _ in range(100):  # the receiver is up when it answers
            try:
                httpx.get(f"{base}/dump", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        config = SenderConfig(worker="bench")
        runs = [pair(url, base, config) for _ in range(3)]
        fast = pair(url, f"{base}/fast", config)
        prepare(url, base, min_interval=1.0)
        paced_seconds, paced_messages = eventloop.run(deliver(url, config))
        dump(base)
    finally:
        drop_database(server_url, DATABASE)
        receiver.terminate()

    median = sorted(runs, key=lambda r: TRANSITIONS / r[0] / (TRANSITIONS / r[2]))[1]
    seconds, messages, bare, size = median
    ratio = (TRANSITIONS / seconds) / (TRANSITIONS / bare)
    print(f"Notification benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} CPUs, {TRANSITIONS:,} pending transitions across {CHANNELS} slack channels, "
          f"loopback receiver in its own process answering in {LATENCY * 1000:.0f} ms, "
          f"{eventloop.loop_name()} event loop for both")
    print(f"sender (batch {config.batch}, concurrency {config.concurrency}, min_interval 0):")
    for s, m, b, _ in runs:
        print(f"  {s:6.2f} s  {TRANSITIONS / s:8,.0f} rows/s  {m:5,} messages   bare httpx loop: {b:6.2f} s  "
              f"{TRANSITIONS / b:8,.0f} rows/s")
    print(f"median run: {messages:,} messages, {size / 1e6:.1f} MB of Block Kit bodies")
    print(f"noise ratio, messages / transitions:           {messages / TRANSITIONS:.4f}  "
          f"({TRANSITIONS / messages:.0f} transitions per message)")
    print(f"rows/s, sender / bare httpx loop (same bodies): {ratio:.2f}  [goal >= {GOAL}]  "
          f"(median of {statistics.median(TRANSITIONS / r[0] for r in runs):,.0f} / "
          f"{statistics.median(TRANSITIONS / r[2] for r in runs):,.0f})")
    print(f"without the receiver's latency (loopback answers at once: CPU against CPU): sender "
          f"{fast[0]:.2f} s, bare loop {fast[2]:.2f} s, ratio {fast[2] / fast[0]:.2f} "
          "(not the goal's measure)")
    print(f"at Slack's rate (min_interval 1 s per channel): {paced_seconds:.2f} s, "
          f"{paced_messages:,} messages, noise ratio {paced_messages / TRANSITIONS:.4f}")
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
