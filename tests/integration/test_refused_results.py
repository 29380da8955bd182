"""Results the database would refuse, and task input that can never work, fail their task once,
at once, with a message a plug-in author can act on; the dispatcher goes on with everything else.

Real `command` agents (small Python programs) answer with broken findings; real dispatcher
processes run them next to twenty unrelated tasks.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.integration.test_dispatcher import (
    DispatcherProcess,
    enqueue,
    query,
    task,
    wait_for,
)

GOOD = {"kind": "compliance", "fingerprint": "fp-good", "severity": "low", "address": "aws_s3_bucket.a"}

# name -> (what the program prints on stdout, what the stored error must say)
BAD_ANSWERS = {
    "no-fingerprint": ({"scan": {"status": "FAILED_CHECKS", "findings": [{"kind": "compliance"}]}},
                       "finding 0 needs a non-empty string 'fingerprint'"),
    "wrong-type": ({"scan": {"status": "FAILED_CHECKS",
                             "findings": [{**GOOD, "severity": 3}]}},
                   "'severity' must be a string or null, not int"),
    # the command agent keeps 1 MiB of stdout: a 10 MB answer is cut, and said so (the contract's own
    # bound on one finding is tested in tests/unit/test_contract.py)
    "huge-detail": ({"scan": {"status": "FAILED_CHECKS",
                              "findings": [{**GOOD, "evidence": "x" * 10_000_000}]}},
                    "command output is not JSON"),
    "colliding": ({"scan": {"status": "FAILED_CHECKS",
                            "findings": [GOOD, {**GOOD, "address": "aws_s3_bucket.b"}]}},
                  "findings 0 and 1 share the fingerprint 'fp-good'"),
    "nul-in-finding": ({"scan": {"status": "FAILED_CHECKS", "findings": [{**GOOD, "note": "a\u0000b"}]}},
                       "contains a NUL character"),
    "bad-status": ({"scan": {"status": "MAYBE", "findings": []}}, "invalid scan: scan status 'MAYBE'"),
    "findings-not-a-list": ({"scan": {"status": "CLEAN", "findings": {"a": 1}}}, "findings must be a list"),
}


def raw_enqueue(db_url: str, kind: str, subject: str, payload_json: str) -> int:
    """Enqueue with the payload as JSON text (1e400 is valid JSON, but not a Python float)."""
    return int(query(db_url, "SELECT nightshift.enqueue(%s, %s, %s::jsonb) AS id",
                     (kind, subject, payload_json))[0]["id"])


def program(tmp_path: Path, name: str, answer: dict, stderr: str = "", status: int = 0) -> Path:
    path = tmp_path / f"{name}.py"
    answer_file = tmp_path / f"{name}.json"
    answer_file.write_text(json.dumps(answer))
    path.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "sys.stdin.read()\n"
        f"sys.stdout.write(open({str(answer_file)!r}).read())\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({status})\n"
    )
    path.chmod(0o755)
    return path


def test_refused_results_fail_their_task_once_and_the_rest_goes_on(
    db_url: str, tmp_path: Path, dispatchers: Callable[..., DispatcherProcess]
) -> None:
    bad = {name: enqueue(db_url, "command", f"bad/{name}",
                         {"command": [str(program(tmp_path, name, answer))]})
           for name, (answer, _) in BAD_ANSWERS.items()}
    nul_stderr = enqueue(db_url, "command", "bad/nul-stderr", {"command": [str(program(
        tmp_path, "nul-stderr", {}, stderr="broken \x00 output", status=3))]}, max_attempts=1)
    bad_payloads = {value: raw_enqueue(db_url, "sleep", f"payload/{value}",
                                       f'{{"seconds": 0, "timeout_seconds": {value}}}')
                    for value in ('"abc"', "1e400", "-5", "0", "true")}
    not_an_object = raw_enqueue(db_url, "noop", "payload/array", "[1, 2]")
    bad_seconds = raw_enqueue(db_url, "sleep", "payload/seconds", '{"seconds": "abc"}')
    unrelated = [enqueue(db_url, "noop", f"fine/{i}") for i in range(20)]
    summarised = enqueue(db_url, "command", "fine/summary", {"command": [str(program(
        tmp_path, "summary", {"summary": {"checked": 3}}))]})

    proc = dispatchers("a", "--allow-command", f"{tmp_path}/*")
    finished = ("done", "failed", "dead")
    every = [*bad.values(), nul_stderr, *bad_payloads.values(), not_an_object, bad_seconds, *unrelated,
             summarised]
    wait_for(lambda: all(task(db_url, t)["status"] in finished for t in every), 60, "every task to finish")

    for name, (_, message) in BAD_ANSWERS.items():
        row = task(db_url, bad[name])
        assert row["status"] == "failed", (name, row)
        assert row["attempt"] == 1, f"{name}: a result that can never be stored was tried again"
        assert message in row["last_error"], (name, row["last_error"])
    stderr_row = task(db_url, nul_stderr)
    assert stderr_row["status"] == "dead" and "broken \\0 output" in stderr_row["last_error"]
    for value, task_id in bad_payloads.items():
        row = task(db_url, task_id)
        assert row["status"] == "failed" and row["attempt"] == 1, (value, row)
        assert "payload field 'timeout_seconds' must be a number of seconds above 0" in row["last_error"]
    array_row = task(db_url, not_an_object)
    assert array_row["status"] == "failed"
    assert "must be a JSON object, not an array" in array_row["last_error"]
    seconds_row = task(db_url, bad_seconds)
    assert (seconds_row["status"], seconds_row["attempt"]) == ("failed", 1)
    assert "payload field 'seconds' must be a number of seconds at least 0" in seconds_row["last_error"]
    assert proc.events("agent_error") == [], "an agent's bad input was logged as a crash (traceback)"
    assert all(task(db_url, t)["status"] == "done" for t in unrelated)
    summary_row = task(db_url, summarised)
    assert (summary_row["status"], summary_row["summary"]) == ("done", {"checked": 3})
    shown = subprocess.run([sys.executable, "-m", "dispatcher", "tasks", "show", str(summarised),
                            "--database-url", db_url], capture_output=True, text=True, timeout=60)
    assert '  summary     {"checked": 3}' in shown.stdout, shown.stdout + shown.stderr
    assert query(db_url, "SELECT count(*) AS n FROM nightshift.scans")[0]["n"] == 0

    assert proc.events("reconnect") == [], "a refused result was taken for a lost connection"
    proc.signal(signal.SIGTERM)
    assert proc.wait_exit(10) == 0
