"""dispatcher/agents/process.py with real programs: exit codes, capped output, the allow-listed
environment, timeouts, and no process left behind, even one that escaped with a double fork."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from dispatcher.agents import process
from dispatcher.agents.process import allowed_env, run_process

needs_reaper = pytest.mark.skipif(process.REAPER is None, reason="child subreapers are Linux-only")

# Forks a child that calls setsid() (leaving our process group and session) and forks the
# grandchild: the grandchild writes its pid, and `linger` seconds later a marker file, unless it
# was killed. The parent then prints, and sleeps `parent_sleep` seconds before exiting.
DOUBLE_FORK = f"""#!{sys.executable}
import os, sys, time
pid_file, marker, linger, parent_sleep = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.close(1), os.close(2)  # a daemon lets go of its parent's pipes
        with open(pid_file + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(pid_file + ".tmp", pid_file)
        time.sleep(linger)
        open(marker, "w").close()
        os._exit(0)
    os._exit(0)
os.wait()
while not os.path.exists(pid_file):
    time.sleep(0.01)
print("started", flush=True)
time.sleep(parent_sleep)
"""
LINGER = 1.0


def script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def run(argv: list[str], cwd: Path, **kwargs: object) -> process.ProcessResult:
    kwargs.setdefault("timeout", 30)
    return asyncio.run(run_process(argv, cwd=cwd, env=allowed_env(), **kwargs))  # type: ignore[arg-type]


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class Escapee:
    """The double-forking program and what it leaves behind."""

    def __init__(self, tmp_path: Path, parent_sleep: float) -> None:
        self.pid_file, self.marker = tmp_path / "grandchild.pid", tmp_path / "grandchild.marker"
        program = script(tmp_path / "double_fork.py", DOUBLE_FORK)
        self.argv = [str(program), str(self.pid_file), str(self.marker), str(LINGER), str(parent_sleep)]

    def pid(self) -> int:
        return int(self.pid_file.read_text())

    def assert_gone(self) -> None:
        pid = self.pid()
        assert not alive(pid), f"the grandchild {pid} outlived its run"
        time.sleep(LINGER + 0.5)
        assert not self.marker.exists(), "the grandchild wrote its marker after the run ended"


def test_exit_status_output_and_stdin(tmp_path: Path) -> None:
    result = run(["sh", "-c", "cat; echo err >&2; exit 3"], tmp_path, stdin=b"hello")
    assert (result.returncode, result.stdout, result.stderr) == (3, b"hello", b"err\n")
    assert not (result.timed_out or result.stdout_truncated or result.stderr_truncated)


def test_a_signal_death_is_reported_as_that_signal(tmp_path: Path) -> None:
    assert run(["sh", "-c", "kill -TERM $$"], tmp_path).returncode == -signal.SIGTERM
    assert run(["sh", "-c", "kill -KILL $$"], tmp_path).returncode == -signal.SIGKILL


def test_output_is_capped_and_drained(tmp_path: Path) -> None:
    result = run(["sh", "-c", "head -c 300000 /dev/zero; echo done >&2"], tmp_path, max_output=1000)
    assert (len(result.stdout), result.stdout_truncated, result.returncode) == (1000, True, 0)
    assert result.stderr == b"done\n" and not result.stderr_truncated
    assert result.text().endswith("[output truncated]")


def test_the_child_gets_exactly_the_allow_listed_environment(tmp_path: Path) -> None:
    env = {"PATH": os.defpath, "ONLY": "this"}  # no LANG: the C locale, where Python adds LC_CTYPE
    result = asyncio.run(run_process(["env"], cwd=tmp_path, env=env, timeout=30))
    assert sorted(result.stdout.decode().splitlines()) == ["ONLY=this", f"PATH={os.defpath}"]


def test_the_child_runs_in_the_given_directory(tmp_path: Path) -> None:
    assert run(["pwd"], tmp_path).stdout.decode().strip() == str(tmp_path)


def test_a_missing_or_non_executable_program_raises_like_exec(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        run(["no-such-program-here"], tmp_path)
    with pytest.raises(FileNotFoundError):
        run(["./missing.sh"], tmp_path)
    (tmp_path / "plain.sh").write_text("#!/bin/sh\n")
    with pytest.raises(PermissionError):
        run(["./plain.sh"], tmp_path)
    script(tmp_path / "ok.sh", "#!/bin/sh\nexit 4\n")
    assert run(["./ok.sh"], tmp_path).returncode == 4


def test_a_timeout_terms_once_then_the_run_ends(tmp_path: Path) -> None:
    # the shell's sleep gets the SIGTERM too, so the trap runs at once; a second SIGTERM would
    # print twice (terraform, for one, aborts on a second signal instead of releasing its lock)
    body = "trap 'echo got-term; exit 0' TERM\necho ready\nwhile :; do sleep 0.2; done\n"
    result = run([str(script(tmp_path / "trap.sh", "#!/bin/sh\n" + body))], tmp_path, timeout=1)
    assert result.timed_out and result.returncode is None
    assert result.stdout.decode().split() == ["ready", "got-term"]


def test_a_timeout_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    body = "trap '' TERM\necho $$\nwhile :; do sleep 0.2; done\n"
    result = run([str(script(tmp_path / "stubborn.sh", "#!/bin/sh\n" + body))], tmp_path, timeout=0.5)
    assert result.timed_out
    assert not alive(int(result.stdout.decode().split()[0]))  # the loop never ends by itself


@needs_reaper
def test_a_double_forked_grandchild_dies_when_the_run_ends(tmp_path: Path) -> None:
    escapee = Escapee(tmp_path, parent_sleep=0)
    result = run(escapee.argv, tmp_path)
    assert (result.returncode, result.stdout) == (0, b"started\n")
    escapee.assert_gone()


@needs_reaper
def test_a_double_forked_grandchild_dies_at_the_timeout(tmp_path: Path) -> None:
    escapee = Escapee(tmp_path, parent_sleep=60)
    result = run(escapee.argv, tmp_path, timeout=1)
    assert result.timed_out and result.stdout == b"started\n"
    escapee.assert_gone()


@needs_reaper
def test_a_double_forked_grandchild_dies_when_the_run_is_cancelled(tmp_path: Path) -> None:
    escapee = Escapee(tmp_path, parent_sleep=60)

    async def cancel_once_started() -> None:
        run = asyncio.ensure_future(run_process(escapee.argv, cwd=tmp_path, env=allowed_env(), timeout=60))
        while not escapee.pid_file.exists():
            await asyncio.sleep(0.02)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(cancel_once_started())
    escapee.assert_gone()
