"""Running an agent's child process safely (DESIGN.md rule 8).

- its own process group (start_new_session), so a timeout kills the children it forked too;
- a timeout: SIGTERM to the group, a short grace, then SIGKILL; a cancelled run (dispatcher
  shutdown) kills the group the same way before the cancellation goes on;
- stdout and stderr read concurrently and capped: a child that floods its output cannot exhaust
  our memory or block on a full pipe (the excess is read and dropped, and the result says so);
- an environment built from an allow-list, never the dispatcher's own (no database URL, no secrets);
- whatever is left in the group after the child exits is killed as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dispatcher.redact import mask  # noqa: F401 (its home is dispatcher/redact.py; kept for agents importing it here)

DEFAULT_MAX_OUTPUT = 1024 * 1024  # bytes kept per stream
KILL_GRACE_SECONDS = 2.0
# Always passed through: what a well-behaved tool needs to find itself and speak UTF-8.
BASE_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")
# Never passed through, even when allow-listed: the dispatcher's own credentials.
DENIED_ENV = frozenset({"NIGHTSHIFT_DATABASE_URL", "NIGHTSHIFT_TEST_DATABASE_URL", "DATABASE_URL",
                        "PGPASSWORD", "PGPASSFILE", "PGSERVICEFILE"})


@dataclass(frozen=True)
class ProcessResult:
    returncode: int | None  # None when killed at the timeout
    stdout: bytes
    stderr: bytes
    timed_out: bool
    stdout_truncated: bool
    stderr_truncated: bool
    seconds: float

    def text(self, stream: str = "stdout") -> str:
        data = self.stdout if stream == "stdout" else self.stderr
        truncated = self.stdout_truncated if stream == "stdout" else self.stderr_truncated
        return data.decode("utf-8", "replace") + ("\n[output truncated]" if truncated else "")


def allowed_env(
    allow: Iterable[str] = (), *, home: Path | None = None, source: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The child's environment: BASE_ENV plus allow-listed names from `source`, minus DENIED_ENV."""
    source = os.environ if source is None else source
    names = set(BASE_ENV) | set(allow)
    env = {name: source[name] for name in names if name in source and name not in DENIED_ENV}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    if home is not None:
        env["HOME"] = str(home)
    env.update({k: v for k, v in (extra or {}).items() if k not in DENIED_ENV})
    return env


async def run_process(
    argv: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float,
    stdin: bytes | None = None, max_output: int = DEFAULT_MAX_OUTPUT,
) -> ProcessResult:
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=str(cwd), env=dict(env), start_new_session=True,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    readers = asyncio.gather(_read_capped(proc.stdout, max_output), _read_capped(proc.stderr, max_output))
    timed_out = False
    try:
        if stdin is not None:
            await _feed(proc, stdin)
        try:
            await asyncio.wait_for(proc.wait(), timeout=max(timeout, 0.001))
        except TimeoutError:
            timed_out = True
            await _kill_group(proc)
    except BaseException:  # cancelled (dispatcher shutdown) or anything else: leave nothing behind
        await _kill_group(proc)
        readers.cancel()
        with contextlib.suppress(BaseException):
            await readers
        raise
    # the child is gone; children it left in its group would keep our pipes open
    _signal_group(proc.pid, signal.SIGKILL)
    (out, out_cut), (err, err_cut) = await readers
    return ProcessResult(
        returncode=None if timed_out else proc.returncode, stdout=out, stderr=err, timed_out=timed_out,
        stdout_truncated=out_cut, stderr_truncated=err_cut, seconds=time.monotonic() - started,
    )


async def _feed(proc: asyncio.subprocess.Process, data: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
        await proc.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the child did not read its input; its exit status will tell
    finally:
        proc.stdin.close()


async def _read_capped(stream: asyncio.StreamReader, limit: int) -> tuple[bytes, bool]:
    kept = bytearray()
    truncated = False
    while chunk := await stream.read(65536):
        room = limit - len(kept)
        if room > 0:
            kept += chunk[:room]
        if len(chunk) > room:
            truncated = True  # keep draining so the child never blocks on a full pipe
    return bytes(kept), truncated


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), timeout=KILL_GRACE_SECONDS)
    except TimeoutError:
        pass
    _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
