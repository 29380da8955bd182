"""The reaper: a small parent that makes sure an agent's command leaves no process behind.

    python -I -S .../reaper.py --grace SECONDS -- COMMAND [ARG...]

A process group is not enough: a grandchild that calls setsid() (a daemonising double fork) leaves
the group, and killing the group misses it. The reaper makes itself a child subreaper
(prctl(PR_SET_CHILD_SUBREAPER), Linux 3.4+), so every orphaned descendant is re-parented to it
instead of to init, and it can find them all by walking /proc from its own pid. Then it:

- spawns COMMAND with the environment it was given (read from /proc/self/environ: Python adds
  LC_CTYPE to os.environ under the C locale, and the child must get exactly the allow-listed set);
- on SIGTERM, SIGINT or SIGHUP sends one SIGTERM to every descendant and gives COMMAND `--grace`
  seconds to exit (terraform releases its state lock on the first signal, and aborts on a second);
- once COMMAND has exited (or the grace is over), SIGKILLs every remaining descendant, reaps them
  all, and exits the way COMMAND did: same exit status, or the same signal re-raised, so the
  dispatcher sees the returncode it would have seen without the reaper;
- reaps orphans that exit while COMMAND still runs, so a long run does not collect zombies.

If COMMAND cannot be executed it says so on stderr and exits 127 (not found) or 126, like a shell.
Without prctl (another kernel) it still kills its process group and the descendants it can see
through parent links; orphans that left the group are then beyond reach, as before the reaper.

Started by path with -I -S, it imports only the standard library and starts in a few milliseconds.
"""

from __future__ import annotations

# the C module under `signal`: the same calls and numbers, without the 6 ms of enum imports that the
# Python wrapper costs at every start
import _signal as signal
import errno
import os
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
WATCHED = STOP_SIGNALS | {signal.SIGCHLD}
# Python ignores these itself; a spawned command must start with the default disposition.
RESET_FOR_CHILD = {signal.SIGPIPE, signal.SIGXFSZ, *STOP_SIGNALS}


def become_subreaper() -> bool:
    """Ask the kernel to re-parent our orphaned descendants to us. False where that is impossible."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def original_environment() -> dict[bytes, bytes]:
    try:
        with open("/proc/self/environ", "rb") as f:
            entries = f.read().split(b"\0")
    except OSError:
        return {os.fsencode(k): os.fsencode(v) for k, v in os.environ.items()}
    env = {}
    for entry in entries:
        name, sep, value = entry.partition(b"=")
        if sep:
            env[name] = value
    return env


def descendants(me: int) -> set[int]:
    """Every process below `me` (parent links, from /proc), and the other members of our process
    group when we lead it (the dispatcher starts us in a new session; run from a shell, the group is
    the shell's)."""
    my_group = me if os.getpgid(0) == me else -1
    children: dict[int, list[int]] = {}
    grouped = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                # the command name may contain spaces and parentheses: fields follow the last ")"
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited meanwhile
        pid, ppid, group = int(name), int(fields[1]), int(fields[2])
        children.setdefault(ppid, []).append(pid)
        if group == my_group:
            grouped.add(pid)
    found: set[int] = set()
    todo = [me]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return (found | grouped) - {me}


def signal_all(pids: set[int], sig: int) -> int:
    """Send `sig` to each; return how many it reached."""
    reached = 0
    for pid in pids:
        try:
            os.kill(pid, sig)
            reached += 1
        except (ProcessLookupError, PermissionError):
            pass
    return reached


def reap_exited(command: int) -> int | None:
    """Collect every child that has exited; the command's wait status if it was among them."""
    status = None
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == 0:
            return status
        if pid == command:
            status = wait_status


def kill_everything(me: int, command: int, status: int | None) -> int | None:
    """SIGKILL every descendant until none is left; reap them. Returns the command's wait status."""
    while True:
        left = descendants(me)
        if left and not signal_all(left, signal.SIGKILL):
            # only processes we may not signal remain (a setuid program): waiting could be forever
            os.write(2, f"nightshift: processes {sorted(left)} could not be killed\n".encode())
            return status
        try:
            pid, wait_status = os.waitpid(-1, 0)
        except ChildProcessError:
            return status  # no child left; as a subreaper, that means no descendant either
        if pid == command:
            status = wait_status


def exit_like(wait_status: int | None) -> None:
    if wait_status is None:
        os._exit(1)
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        # die of the same signal (so the caller sees -sig), without dumping our own core
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be caught or blocked
            signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)  # a signal that does not kill (SIGCHLD, SIGCONT): exit like a shell
    os._exit(os.waitstatus_to_exitcode(wait_status))


def spawn(argv: list[str]) -> int:
    return os.posix_spawnp(argv[0], argv, original_environment(),
                           setsigmask=(), setsigdef=RESET_FOR_CHILD)


def supervise(argv: list[str], grace: float) -> None:
    me = os.getpid()
    become_subreaper()
    signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)  # handled synchronously below, never lost
    try:
        command = spawn(argv)
    except OSError as exc:
        os.write(2, f"nightshift: cannot run {argv[0]}: {exc.strerror}\n".encode())
        os._exit(127 if exc.errno in (errno.ENOENT, errno.ENOTDIR) else 126)
    status = None
    stop_at = None
    while status is None:
        if stop_at is None:
            info: signal.struct_siginfo | None = signal.sigwaitinfo(WATCHED)
        else:
            info = signal.sigtimedwait(WATCHED, max(stop_at - time.monotonic(), 0))
        if info is None:
            break  # the grace is over
        if info.si_signo == signal.SIGCHLD:
            status = reap_exited(command)
        elif stop_at is None:
            signal_all(descendants(me), signal.SIGTERM)
            stop_at = time.monotonic() + grace
    exit_like(kill_everything(me, command, status))


def main(args: list[str]) -> None:
    if len(args) < 4 or args[0] != "--grace" or args[2] != "--":
        os.write(2, b"usage: reaper.py --grace SECONDS -- COMMAND [ARG...]\n")
        os._exit(2)
    supervise(args[3:], float(args[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
