"""Running an agent's child process safely (DESIGN.md rule 8).

- every descendant dies with the run: on Linux the command runs under the reaper
  (dispatcher/agents/reaper.py), a child subreaper that inherits the orphans of the whole tree,
  so even a grandchild that called setsid() (a daemonising double fork) is found and killed when
  the command exits, times out or is cancelled. Elsewhere (no prctl) the command runs directly in
  its own process group and the group is killed: a grandchild that leaves the group survives there;
- its own process group (start_new_session): the last resort if the reaper itself does not stop;
- a timeout: SIGTERM (to the reaper, which passes it once to every descendant), a short grace,
  then SIGKILL; a cancelled run (dispatcher shutdown) is stopped the same way before the
  cancellation goes on;
- stdout and stderr read concurrently and capped: a child that floods its output cannot exhaust
  our memory or block on a full pipe (the excess is read and dropped, and the result says so);
- an environment built from an allow-list, never the dispatcher's own (no database URL, no secrets);
- whatever is left in the group after the child exits is killed as well.

The reaper costs one extra short-lived Python start per run (`make bench-process`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_OUTPUT = 1024 * 1024  # bytes kept per stream
KILL_GRACE_SECONDS = 2.0
# The reaper's own grace is KILL_GRACE_SECONDS; we wait this much longer before the last resort.
REAPER_MARGIN_SECONDS = 1.0
# None where the kernel has no child subreapers (or no interpreter path is known, as in an embedded
# Python): run the command directly, in its own process group, as before.
REAPER: Path | None = (Path(__file__).with_name("reaper.py")
                       if sys.platform.startswith("linux") and sys.executable else None)
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
        *_supervised(argv, cwd, env), cwd=str(cwd), env=dict(env), start_new_session=True,
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
            await _stop(proc)
    except BaseException:  # cancelled (dispatcher shutdown) or anything else: leave nothing behind
        await _stop(proc)
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


def _supervised(argv: list[str], cwd: Path, env: Mapping[str, str]) -> list[str]:
    """argv under the reaper, when there is one.

    The reaper starts even when the command cannot, so the errors that starting the command
    directly would raise (no such program, not executable) are raised here, before it.
    """
    if REAPER is None:
        return argv
    _check_executable(argv[0], cwd, env.get("PATH", os.defpath))
    # -I -S: no site-packages, no environment variables read, nothing but the standard library
    return [sys.executable, "-I", "-S", str(REAPER), "--grace", str(KILL_GRACE_SECONDS), "--", *argv]


def _check_executable(program: str, cwd: Path, path: str) -> None:
    """Raise what exec would: FileNotFoundError, or PermissionError for a file we may not run."""
    if os.sep in program:
        candidates = [cwd / program]
    else:  # searched like execvp does: the child's PATH, an empty entry meaning its directory
        candidates = [cwd / entry / program for entry in path.split(os.pathsep)]
    files = [c for c in candidates if c.is_file()]
    if any(os.access(f, os.X_OK) for f in files):
        return
    code = errno.EACCES if files else errno.ENOENT
    raise (PermissionError if files else FileNotFoundError)(code, os.strerror(code), program)


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


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM, a grace, then SIGKILL of the whole group; returns once the child is reaped."""
    if REAPER is None:
        _signal_group(proc.pid, signal.SIGTERM)
        grace = KILL_GRACE_SECONDS
    else:
        # the reaper alone: it passes one SIGTERM to every descendant (a second one would make
        # terraform abort instead of releasing its lock), waits its grace, then kills the tree
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        grace = KILL_GRACE_SECONDS + REAPER_MARGIN_SECONDS
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), timeout=grace)
    except TimeoutError:
        pass
    _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
