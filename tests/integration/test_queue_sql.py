"""The queue's SQL functions, called the way a DBA (or the daemon) calls them."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest

from dispatcher import agents


def enqueue(conn: psycopg.Connection, kind: str = "noop", subject: str = "s/1", *, priority: int = 0,
            delay: float = 0.0, max_attempts: int = 3, payload: str = "{}") -> int:
    row = conn.execute(
        "SELECT nightshift.enqueue(%s, %s, %s::jsonb, %s, now() + make_interval(secs => %s), %s)",
        (kind, subject, payload, priority, delay, max_attempts),
    ).fetchone()
    assert row is not None and row[0] is not None
    return int(row[0])


def claim(conn: psycopg.Connection, worker: str = "w1", n: int = 10, lease: str = "30 seconds",
          kinds: list[str] | None = None) -> list[tuple[int, int]]:
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT id, attempt FROM nightshift.claim_tasks(%s, %s, %s, %s::interval)", (worker, kinds, n, lease)
    ).fetchall()]


def task(conn: psycopg.Connection, task_id: int) -> dict:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    row = cur.execute("SELECT * FROM nightshift.tasks WHERE id = %s", (task_id,)).fetchone()
    assert row is not None
    return row


def test_claim_order_is_priority_then_oldest_run_after(conn: psycopg.Connection) -> None:
    low_old = enqueue(conn, subject="a", delay=-60)
    high = enqueue(conn, subject="b", priority=5)
    low_new = enqueue(conn, subject="c", delay=-1)
    future = enqueue(conn, subject="d", delay=3600, priority=9)
    claimed = [task_id for task_id, _ in claim(conn, n=10)]
    ordered = conn.execute(
        "SELECT id FROM nightshift.tasks WHERE id = ANY(%s) ORDER BY priority DESC, run_after, id",
        (claimed,)).fetchall()
    assert [r[0] for r in ordered] == [high, low_old, low_new]
    assert future not in claimed  # not due yet
    assert claim(conn, n=1) == []
    first = task(conn, high)
    assert (first["status"], first["attempt"], first["locked_by"]) == ("running", 1, "w1")
    assert first["locked_until"] > first["started_at"]


def test_claim_limit_kinds_and_the_after_position(conn: psycopg.Connection) -> None:
    ids = [enqueue(conn, subject=f"s{i}", delay=-100 + i) for i in range(5)]
    sleep_id = enqueue(conn, kind="sleep", subject="z", delay=-200)
    assert [i for i, _ in claim(conn, n=2, kinds=["noop"])] == ids[:2]
    # claim_tasks_after starts after a position, and falls back to the head for the rest
    row = conn.execute("SELECT priority, run_after FROM nightshift.tasks WHERE id = %s", (ids[3],)).fetchone()
    assert row is not None
    got = conn.execute(
        "SELECT id FROM nightshift.claim_tasks_after('w2', NULL, 3, '30 s', %s, %s, %s)",
        (row[0], row[1], ids[3])).fetchall()
    assert sorted(r[0] for r in got) == sorted([ids[4], sleep_id, ids[2]])


def test_skip_locked_two_claimers_never_share_a_task(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO nightshift.tasks (kind, subject) "
                     "SELECT 'noop', 'p/' || g FROM generate_series(1, 2000) AS g")
    results: list[list[int]] = [[], [], [], []]

    def worker(index: int) -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            while batch := claim(conn, worker=f"w{index}", n=7):
                results[index].extend(i for i, _ in batch)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for r in results for i in r]
    assert len(everything) == 2000 and len(set(everything)) == 2000
    assert all(results), "every claimer got some tasks"


def test_a_claim_in_progress_does_not_block_another(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        first = enqueue(conn, subject="a")
        second = enqueue(conn, subject="b")
    with psycopg.connect(db_url) as holder, psycopg.connect(db_url, autocommit=True) as other:
        holder.execute("SET lock_timeout = '1s'")
        held = claim(holder, worker="slow", n=1)  # transaction left open: the row stays locked
        assert [i for i, _ in held] == [first]
        other.execute("SET lock_timeout = '1s'")
        assert [i for i, _ in claim(other, worker="fast", n=5)] == [second]
        holder.rollback()


def test_fencing_a_stale_holder_changes_nothing(conn: psycopg.Connection) -> None:
    task_id = enqueue(conn)
    [(_, attempt)] = claim(conn, lease="1 millisecond")
    conn.execute("SELECT pg_sleep(0.01)")
    assert conn.execute("SELECT nightshift.requeue_expired()").fetchone() == (1,)
    [(_, attempt2)] = claim(conn, worker="w2")
    assert attempt2 == attempt + 1
    # the first holder wakes up: every write it makes is refused and changes nothing
    before = task(conn, task_id)
    assert conn.execute("SELECT nightshift.complete_task(%s, %s)", (task_id, attempt)).fetchone() == (False,)
    late = conn.execute("SELECT nightshift.fail_task(%s, %s, 'late')", (task_id, attempt)).fetchone()
    assert late == (None,)
    assert conn.execute("SELECT nightshift.heartbeat(ARRAY[%s]::bigint[], 'w1', ARRAY[%s])",
                        (task_id, attempt)).fetchone() == ([],)
    assert conn.execute("SELECT nightshift.complete_tasks(ARRAY[%s]::bigint[], ARRAY[%s])",
                        (task_id, attempt)).fetchone() == ([],)
    assert task(conn, task_id) == before
    # the current holder's writes work
    assert conn.execute("SELECT nightshift.heartbeat(ARRAY[%s]::bigint[], 'w2', ARRAY[%s], '1 hour')",
                        (task_id, attempt2)).fetchone() == ([task_id],)
    assert conn.execute("SELECT nightshift.complete_task(%s, %s)", (task_id, attempt2)).fetchone() == (True,)
    done = task(conn, task_id)
    assert (done["status"], done["locked_until"]) == ("done", None)
    assert done["finished_at"] is not None
    assert [e["attempt"] for e in done["errors"]] == [1]  # the expired lease is on record
    assert "lease expired" in done["errors"][0]["error"]


def test_failure_backoff_with_jitter_within_bounds(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO nightshift.settings (key, value) VALUES ('queue.retry_base_seconds', '10'), "
                 "('queue.retry_max_seconds', '50') ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value")
    for attempt in (1, 2, 3, 4, 5):
        delays = [conn.execute("SELECT extract(epoch FROM nightshift.retry_delay(%s))", (attempt,))
                  .fetchone()[0] for _ in range(200)]  # type: ignore[index]
        base = min(50, 10 * 2 ** (attempt - 1))
        assert all(base <= float(d) <= base * 1.5 for d in delays), (attempt, min(delays), max(delays))
        assert len(set(delays)) > 100, "jittered"
    task_id = enqueue(conn)
    [(_, attempt)] = claim(conn)
    assert conn.execute("SELECT nightshift.fail_task(%s, %s, 'boom')", (task_id, attempt)).fetchone() == (
        "queued",)
    row = task(conn, task_id)
    wait = (row["run_after"] - conn.execute("SELECT now()").fetchone()[0]).total_seconds()  # type: ignore[index]
    assert 9 <= wait <= 15.1
    assert row["locked_until"] is None and row["last_error"] == "boom"
    assert claim(conn) == []  # not before its backoff


def test_dead_after_max_attempts_with_every_error_kept(conn: psycopg.Connection) -> None:
    task_id = enqueue(conn, max_attempts=3)
    statuses = []
    for n in range(1, 4):
        conn.execute("UPDATE nightshift.tasks SET run_after = now() WHERE id = %s", (task_id,))
        [(_, attempt)] = claim(conn)
        assert attempt == n
        statuses.append(conn.execute("SELECT nightshift.fail_task(%s, %s, %s)",
                                     (task_id, attempt, f"error {n}")).fetchone()[0])  # type: ignore[index]
    assert statuses == ["queued", "queued", "dead"]
    row = task(conn, task_id)
    assert row["status"] == "dead" and row["finished_at"] is not None
    assert [(e["attempt"], e["error"], e["worker"]) for e in row["errors"]] == [
        (1, "error 1", "w1"), (2, "error 2", "w1"), (3, "error 3", "w1")]
    assert claim(conn) == []


def test_not_retryable_failure_is_failed_at_once(conn: psycopg.Connection) -> None:
    task_id = enqueue(conn)
    [(_, attempt)] = claim(conn)
    assert conn.execute("SELECT nightshift.fail_task(%s, %s, 'bad input', false)",
                        (task_id, attempt)).fetchone() == ("failed",)


def test_requeue_expired_requeues_or_buries(conn: psycopg.Connection) -> None:
    again = enqueue(conn, subject="a", max_attempts=3)
    last = enqueue(conn, subject="b", max_attempts=1)
    alive = enqueue(conn, subject="c")
    claim(conn, n=2, lease="1 millisecond")
    claim(conn, n=1, lease="1 hour")
    conn.execute("SELECT pg_sleep(0.01)")
    assert conn.execute("SELECT nightshift.requeue_expired()").fetchone() == (2,)
    assert task(conn, again)["status"] == "queued"
    assert task(conn, last)["status"] == "dead"
    assert task(conn, alive)["status"] == "running"
    assert conn.execute("SELECT nightshift.requeue_expired()").fetchone() == (0,)


def test_cancel_and_retry(conn: psycopg.Connection) -> None:
    queued = enqueue(conn, subject="q")
    assert conn.execute("SELECT nightshift.cancel_task(%s)", (queued,)).fetchone() == (True,)
    assert conn.execute("SELECT nightshift.cancel_task(%s)", (queued,)).fetchone() == (False,)
    assert task(conn, queued)["status"] == "cancelled"
    # a running task cancelled: its holder is fenced off
    running = enqueue(conn, subject="r", max_attempts=1)
    [(_, attempt)] = claim(conn)
    assert conn.execute("SELECT nightshift.cancel_task(%s)", (running,)).fetchone() == (True,)
    assert conn.execute("SELECT nightshift.complete_task(%s, %s)", (running, attempt)).fetchone() == (False,)
    # retry: a dead one gets one more attempt; attempt (the token) never goes back
    dead = enqueue(conn, subject="d", max_attempts=1)
    [(_, attempt)] = claim(conn)
    conn.execute("SELECT nightshift.fail_task(%s, %s, 'x')", (dead, attempt))
    assert task(conn, dead)["status"] == "dead"
    assert conn.execute("SELECT nightshift.retry_task(%s)", (dead,)).fetchone() == (True,)
    row = task(conn, dead)
    assert (row["status"], row["attempt"], row["max_attempts"]) == ("queued", 1, 2)
    assert claim(conn) == [(dead, 2)]
    assert conn.execute("SELECT nightshift.retry_task(%s)", (dead,)).fetchone() == (False,)  # running
    # retrying while a newer task for the same subject is in flight is refused clearly
    enqueue(conn, subject="q")
    with pytest.raises(psycopg.errors.UniqueViolation, match="another task for the same kind and subject"):
        conn.execute("SELECT nightshift.retry_task(%s)", (queued,))


def test_enqueue_is_one_in_flight_per_kind_and_subject(conn: psycopg.Connection) -> None:
    first = enqueue(conn, subject="x")
    assert conn.execute("SELECT nightshift.enqueue('noop', 'x')").fetchone() == (None,)
    [(_, attempt)] = claim(conn)
    assert conn.execute("SELECT nightshift.enqueue('noop', 'x')").fetchone() == (None,)  # running
    conn.execute("SELECT nightshift.complete_task(%s, %s)", (first, attempt))
    assert conn.execute("SELECT nightshift.enqueue('noop', 'x')").fetchone()[0] is not None  # type: ignore[index]


def test_release_gives_the_attempt_back(conn: psycopg.Connection) -> None:
    task_id = enqueue(conn, max_attempts=1)
    [(_, attempt)] = claim(conn)
    assert conn.execute("SELECT nightshift.release_tasks(ARRAY[%s]::bigint[], ARRAY[%s], 'shutdown')",
                        (task_id, attempt)).fetchone() == ([task_id],)
    row = task(conn, task_id)
    assert (row["status"], row["attempt"], row["max_attempts"]) == ("queued", 1, 2)
    assert claim(conn) == [(task_id, 2)]


def test_queue_stats(conn: psycopg.Connection) -> None:
    enqueue(conn, subject="a", delay=-30)
    enqueue(conn, subject="b")
    enqueue(conn, kind="sleep", subject="c", delay=600)
    stats = {r[0]: r[1:] for r in conn.execute("SELECT * FROM nightshift.queue_stats()").fetchall()}
    assert stats["noop"][0:2] == (2, 0) and stats["noop"][2] >= 29
    assert stats["sleep"] == (1, 0, 0)


def test_unknown_kind_error_lists_the_known_ones(conn: psycopg.Connection) -> None:
    with pytest.raises(agents.UnknownAgent) as info:
        agents.get("no-such-kind")
    message = str(info.value)
    for name in ("noop", "sleep", "command"):
        assert name in message
    # the daemon stores it as a non-retryable failure, visible to operators
    task_id = enqueue(conn, kind="no-such-kind")
    [(_, attempt)] = claim(conn)
    conn.execute("SELECT nightshift.fail_task(%s, %s, %s, false)", (task_id, attempt, message))
    row = task(conn, task_id)
    assert row["status"] == "failed" and "this dispatcher knows: " in row["last_error"]


def test_dispatcher_role_may_only_call_functions(conn: psycopg.Connection) -> None:
    allowed = conn.execute(
        "SELECT has_function_privilege('nightshift_dispatcher', "
        "'nightshift.claim_tasks(text, text[], integer, interval)', 'EXECUTE'), "
        "has_function_privilege('nightshift_dispatcher', 'nightshift.complete_task(bigint, integer)', "
        "'EXECUTE'), has_table_privilege('nightshift_dispatcher', 'nightshift.tasks', 'UPDATE'), "
        "has_function_privilege('public', 'nightshift.fail_task(bigint, integer, text, boolean)', 'EXECUTE')"
    ).fetchone()
    assert allowed == (True, True, False, False)


def test_lease_interval_arithmetic(conn: psycopg.Connection) -> None:
    task_id = enqueue(conn)
    [(_, attempt)] = claim(conn, lease="5 seconds")
    row = task(conn, task_id)
    assert timedelta(seconds=4) < row["locked_until"] - row["started_at"] <= timedelta(seconds=5)
    conn.execute("SELECT nightshift.heartbeat(ARRAY[%s]::bigint[], 'w1', ARRAY[%s])", (task_id, attempt))
    row = task(conn, task_id)
    assert row["locked_until"] - row["started_at"] > timedelta(seconds=50)  # default lease: 60 s


def test_complete_and_claim_in_one_statement(conn: psycopg.Connection) -> None:
    first = enqueue(conn, subject="a", delay=-10)
    second = enqueue(conn, subject="b")
    [(_, attempt)] = claim(conn, n=1)
    rows = conn.execute(
        "SELECT completed, id FROM nightshift.complete_and_claim(ARRAY[%s, 999]::bigint[], ARRAY[%s, 1], "
        "'w1', NULL, 5, '30 s', NULL, NULL, NULL)", (first, attempt)).fetchall()
    assert rows == [([first], second)]  # 999 is nobody's: absent from `completed`
    assert task(conn, first)["status"] == "done"
    # nothing left to claim: one row that only reports the completions
    rows = conn.execute(
        "SELECT completed, id FROM nightshift.complete_and_claim(ARRAY[%s]::bigint[], ARRAY[1], "
        "'w1', NULL, 5, '30 s', NULL, NULL, NULL)", (second,)).fetchall()
    assert rows == [([second], None)]


def test_complete_and_claim_claims_what_claim_tasks_after_claims(conn: psycopg.Connection) -> None:
    # the daemon's hot path inlines complete_tasks and claim_tasks_after: same rows, order, fencing, lease
    queue = [("a", "noop", 0, -60), ("b", "noop", 5, -1), ("c", "noop", 0, -30), ("d", "noop", 9, 3600),
             ("e", "sleep", 0, -50), ("f", "noop", 0, -10), ("g", "noop", 0, -5)]
    ids = {name: enqueue(conn, kind=kind, subject=name, priority=prio, delay=delay)
           for name, kind, prio, delay in queue}
    pos = conn.execute("SELECT priority, run_after, id FROM nightshift.tasks WHERE id = %s",
                       (ids["c"],)).fetchone()
    assert pos is not None
    cases = [  # (kinds, limit, position): from the head, and after c with a fallback to the head
        (None, 3, (None, None, None)), (["noop"], 3, pos), (None, 10, pos), (["noop"], 0, pos)]
    cols = "id, attempt, locked_by, locked_until - started_at AS lease, status::text"
    running = f"SELECT {cols} FROM nightshift.tasks WHERE status = 'running' ORDER BY id"
    for kinds, limit, (p, ra, after) in cases:
        args = ("w1", kinds, limit, "30 s", p, ra, after)
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT * FROM nightshift.claim_tasks_after(%s, %s, %s, %s, %s, %s, %s)", args)
            expected = conn.execute(running).fetchall()
        with conn.transaction(force_rollback=True):
            rows = conn.execute("SELECT completed, id, attempt FROM nightshift.complete_and_claim("
                                "'{}', '{}', %s, %s, %s, %s, %s, %s, %s)", args).fetchall()
            got = conn.execute(running).fetchall()
        assert got == expected, (kinds, limit, after)
        assert sorted((r[1], r[2]) for r in rows if r[1] is not None) == [(r[0], r[1]) for r in got]
        assert all(r[0] == [] for r in rows) and len(rows) == max(len(got), 1)
        assert ids["d"] not in {r[0] for r in got}  # not due
        assert all(r[1] == 1 and r[2] == "w1" and r[3] == timedelta(seconds=30) for r in got)
    # order: the head first (priority DESC, run_after, id); after c the keyset continues with f, g
    rows = conn.execute("SELECT id FROM nightshift.complete_and_claim('{}', '{}', 'w1', '{noop}', 3, '30 s', "
                        "%s, %s, %s)", pos).fetchall()
    assert sorted(r[0] for r in rows) == sorted([ids["f"], ids["g"], ids["b"]])
    # fencing: a stale attempt (or somebody else's task) completes nothing; the current one completes
    [(task_id, attempt)] = [(r[0], r[1]) for r in conn.execute(
        "SELECT id, attempt FROM nightshift.tasks WHERE id = %s", (ids["f"],)).fetchall()]
    conn.execute("UPDATE nightshift.tasks SET attempt = attempt + 1 WHERE id = %s", (task_id,))  # re-claimed
    rows = conn.execute("SELECT completed, id FROM nightshift.complete_and_claim(ARRAY[%s, %s]::bigint[], "
                        "ARRAY[%s, 1], 'w1', '{noop}', 0, '30 s', NULL, NULL, NULL)",
                        (task_id, ids["a"], attempt)).fetchall()
    assert rows == [([], None)]
    assert task(conn, task_id)["status"] == "running" and task(conn, ids["a"])["status"] == "queued"
    rows = conn.execute("SELECT completed, id FROM nightshift.complete_and_claim(ARRAY[%s]::bigint[], "
                        "ARRAY[%s], 'w1', NULL, 0, '30 s', NULL, NULL, NULL)",
                        (task_id, attempt + 1)).fetchall()
    assert rows == [([task_id], None)] and task(conn, task_id)["status"] == "done"
