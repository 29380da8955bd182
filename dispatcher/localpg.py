"""The embedded PostgreSQL: a cluster that Nightshift creates, starts and stops by itself.

Layout of a cluster root (default ``./.nightshift/postgres``)::

    data/       PGDATA (initdb)
    run/        unix socket directory
    password    the superuser password, mode 0600 (scram-sha-256 everywhere, no trust)
    postgres.log

The cluster listens on 127.0.0.1 only, preloads pg_cron and points ``cron.database_name`` at the
Nightshift database. pg_cron runs its jobs in background workers, so it needs no password of its own.
Postgres refuses to run as root: when we are root, the cluster belongs to an unprivileged system user
(``nightshift``, created on first use) and every server binary runs through ``runuser``.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from dispatcher.errors import NightshiftError, NotFound

DEFAULT_PORT = 54329
DEFAULT_SUBDIR = ".nightshift/postgres"
DEFAULT_DATABASE = "nightshift"
SUPERUSER = "nightshift"
SERVICE_USER = "nightshift"
MIN_MAJOR = 15
# unix sockets have a path limit of 107 bytes (sun_path) including ".s.PGSQL.<port>"
MAX_SOCKET_DIR = 90
# shared_buffers of a new cluster: a quarter of the memory, as PostgreSQL's documentation suggests to
# start with, within these bounds. PostgreSQL's own default (128 MB) is sized for the smallest machine:
# a million schedules (150 MB of table) no longer fit, and enqueue_due() of 100,000 due rows spent a
# tenth of its time evicting and re-reading pages (make bench-schedule: 2.09 s against 1.85 s at 1 GB).
# The cap keeps several clusters on one machine (tests, benchmarks) cheap; the memory is only used as
# pages are read.
SHARED_BUFFERS_MIN_MB, SHARED_BUFFERS_MAX_MB = 128, 1024


class LocalPostgresError(NightshiftError):
    """The embedded cluster could not be created, started or reached."""


class ClusterNotCreated(LocalPostgresError, NotFound):
    """There is no embedded cluster where we looked (exit status 3, like a stopped one)."""


def find_bindir() -> Path:
    """Locate PostgreSQL server binaries (initdb, pg_ctl) without the user naming a path."""
    candidates: list[Path] = []
    if env := os.environ.get("NIGHTSHIFT_PG_BINDIR"):
        candidates.append(Path(env))
    # Debian/Ubuntu keep each major version under /usr/lib/postgresql/<major>/bin; newest first.
    versioned = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += [Path(p) for p in versioned]
    candidates += [Path(p) for p in sorted(glob.glob("/usr/pgsql-*/bin"), reverse=True)]  # RHEL layout
    if pg_ctl := shutil.which("pg_ctl"):
        candidates.append(Path(pg_ctl).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists() and _major(bindir) >= MIN_MAJOR:
            return bindir
    raise LocalPostgresError(
        f"no PostgreSQL {MIN_MAJOR}+ server binaries found (looked for initdb and pg_ctl in "
        f"{', '.join(str(c) for c in candidates) or 'PATH'}). Install them with "
        "`apt-get install postgresql-15 postgresql-15-cron`, or set NIGHTSHIFT_PG_BINDIR."
    )


def _major(bindir: Path) -> int:
    try:
        out = subprocess.run(
            [str(bindir / "pg_ctl"), "--version"], capture_output=True, text=True, check=True
        ).stdout
        return int(out.split()[-1].split(".")[0])
    except (OSError, subprocess.CalledProcessError, ValueError):
        return 0


@dataclass(frozen=True)
class LocalCluster:
    """A Nightshift-managed cluster rooted at ``root``."""

    root: Path
    port: int = DEFAULT_PORT
    database: str = DEFAULT_DATABASE
    # how root was chosen, for `db status`: "chosen" (--data-dir or $NIGHTSHIFT_DATA_DIR), "found"
    # (walking up from the current directory) or "new" (none found: ./.nightshift/postgres)
    origin: str = field(default="chosen", compare=False)

    @classmethod
    def from_env(
        cls, data_dir: str | None = None, port: int | None = None, database: str | None = None
    ) -> LocalCluster:
        """The cluster to use: --data-dir, else $NIGHTSHIFT_DATA_DIR, else the nearest
        .nightshift/postgres holding a cluster in this directory or a parent (as git finds its
        repository), else a new one in ./.nightshift/postgres."""
        if explicit := data_dir or os.environ.get("NIGHTSHIFT_DATA_DIR"):
            root, origin = _usable_root(Path(explicit).absolute()), "chosen"
        else:
            root, origin = find_root(Path.cwd())
        return cls(
            root=root,
            port=int(port or os.environ.get("NIGHTSHIFT_PG_PORT") or DEFAULT_PORT),
            database=database or os.environ.get("NIGHTSHIFT_PG_DATABASE") or DEFAULT_DATABASE,
            origin=origin,
        )

    # -- paths -------------------------------------------------------------------------------
    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        run = self.root / "run"
        if len(str(run)) <= MAX_SOCKET_DIR:
            return run
        # a deep work tree would overflow sun_path; use a short, stable directory instead
        return Path("/tmp") / f"nightshift-{hashlib.sha256(str(self.root).encode()).hexdigest()[:12]}"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    # -- state -------------------------------------------------------------------------------
    def initialized(self) -> bool:
        return (self.data / "PG_VERSION").exists() and self.password_file.exists()

    def password(self) -> str:
        try:
            return self.password_file.read_text().strip()
        except FileNotFoundError:
            raise ClusterNotCreated(
                f"the embedded cluster at {self.root} is not initialised: run `nightshift db start` "
                "(or set NIGHTSHIFT_DATABASE_URL to use an existing PostgreSQL)"
            ) from None

    def url(self, database: str | None = None) -> str:
        from dispatcher.config import mark_embedded

        return mark_embedded(
            f"postgresql://{SUPERUSER}:{self.password()}@127.0.0.1:{self.live_port()}/"
            f"{database or self.database}"
        )

    def url_without_password(self, database: str | None = None) -> str:
        """For child processes: the password goes through their environment (PGPASSWORD), never
        their argv, which every user of the machine can read with `ps`."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.live_port()}/{database or self.database}"

    def live_port(self) -> int:
        """The port the server was started on (postmaster.pid says), else the configured one."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
            return int(lines[3])  # line 4 of postmaster.pid is the port
        except (OSError, IndexError, ValueError):
            return self.port

    def running(self) -> bool:
        if not self.initialized():
            return False
        proc = self._run_as_owner([self._bin("pg_ctl"), "status", "-D", str(self.data)], check=False)
        return proc.returncode == 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, extra_settings: dict[str, str] | None = None, timeout: int = 60) -> bool:
        """Create (first time) and start the cluster; ensure the database exists.

        Returns False when it was already running. ``extra_settings`` are written to the config
        on creation only (tests turn fsync off there).
        """
        if not self.initialized():
            self._initdb(extra_settings or {})
        if self.running():
            self._ensure_database()
            return False
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.socket_dir)
        os.chmod(self.socket_dir, 0o700)
        proc = self._run_as_owner(
            [
                self._bin("pg_ctl"), "start", "-w", "-t", str(timeout), "-D", str(self.data),
                "-l", str(self.log_file), "-o", f"-p {self.port} -k {self.socket_dir}",
            ],
            check=False,
        )
        if proc.returncode != 0:
            raise LocalPostgresError(
                f"PostgreSQL did not start (port {self.port} in use?): {proc.stderr.strip()}\n"
                f"last lines of {self.log_file}:\n{self._log_tail()}"
            )
        self._ensure_database()
        return True

    def stop(self, mode: str = "fast") -> bool:
        if not self.running():
            return False
        self._run_as_owner([self._bin("pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.data)])
        return True

    def restart(self) -> None:
        self._run_as_owner(
            [self._bin("pg_ctl"), "restart", "-w", "-m", "fast", "-D", str(self.data),
             "-l", str(self.log_file), "-o", f"-p {self.port} -k {self.socket_dir}"]
        )

    # -- internals ---------------------------------------------------------------------------
    def _bin(self, name: str) -> str:
        return str(find_bindir() / name)

    def _initdb(self, extra_settings: dict[str, str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        if self.data.exists() and any(self.data.iterdir()):
            raise LocalPostgresError(f"{self.data} exists but holds no cluster; move it away first")
        self.password_file.write_text(secrets.token_hex(16) + "\n")
        os.chmod(self.password_file, 0o600)
        self._chown(self.root)
        self._chown(self.password_file)
        self._run_as_owner(
            [
                self._bin("initdb"), "-D", str(self.data), "-U", SUPERUSER, "-E", "UTF8",
                "--locale=C", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
                f"--pwfile={self.password_file}",
            ]
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            # pg_stat_statements: per-statement timings for operators and the benchmarks (bench/)
            "shared_preload_libraries": "'pg_cron,pg_stat_statements'",
            "cron.database_name": f"'{self.database}'",
            # jobs run in background workers: no libpq connection, so no password for pg_cron
            "cron.use_background_workers": "on",
            "max_worker_processes": "32",
            "max_connections": "200",
            "unix_socket_permissions": "0700",
            "log_min_messages": "warning",
            "shared_buffers": f"'{shared_buffers_mb()}MB'",
            **extra_settings,
        }
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n# written by nightshift db start\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _ensure_database(self) -> None:
        import psycopg  # local import: `db status` should not need a driver loaded

        from dispatcher.db import quote_ident_sql

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=5) as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
                    ).fetchone()
                    if not exists:
                        conn.execute(quote_ident_sql("CREATE DATABASE {}", self.database))
                    return
            except psycopg.OperationalError as exc:  # the server may still be starting up
                if time.monotonic() > deadline:
                    raise LocalPostgresError(f"cannot connect to the embedded cluster: {exc}") from exc
                time.sleep(0.2)

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _owner(self) -> str | None:
        """The OS user that runs the server: None means ourselves."""
        return SERVICE_USER if os.geteuid() == 0 else None

    def _chown(self, path: Path) -> None:
        if owner := self._owner():
            _ensure_service_user()
            shutil.chown(path, owner, owner)

    def _run_as_owner(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        if owner := self._owner():
            _ensure_service_user()
            argv = ["runuser", "-u", owner, "--", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, cwd="/")
        if check and proc.returncode != 0:
            raise LocalPostgresError(
                f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr.strip() or proc.stdout.strip()}"
            )
        return proc


def _ensure_service_user() -> None:
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            check=True,
            capture_output=True,
        )


def find_root(start: Path) -> tuple[Path, str]:
    """The nearest DIR/.nightshift/postgres holding a cluster, from `start` up to '/'; else a new
    one under `start`. The same rule as git's: a command works from any subdirectory."""
    for directory in (start, *start.parents):
        candidate = _usable_root(directory / DEFAULT_SUBDIR)
        if (candidate / "data" / "PG_VERSION").exists():
            return candidate, "found"
    return _usable_root(start / DEFAULT_SUBDIR), "new"


def _usable_root(root: Path) -> Path:
    """As root, the service user must be able to reach the cluster directory.

    A work tree under /root is not traversable by an unprivileged user, so such a cluster lives
    under /var/lib/nightshift instead, at a path derived from the requested one (stable across runs).
    """
    if os.geteuid() != 0 or _traversable_by_others(root):
        return root
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return Path("/var/lib/nightshift/clusters") / digest


def _traversable_by_others(root: Path) -> bool:
    for parent in list(root.parents)[:-1]:  # every ancestor except '/'
        try:
            if not parent.stat().st_mode & 0o001:
                return False
        except FileNotFoundError:
            continue  # will be created by us, with default permissions
    return True


def shared_buffers_mb(memory_bytes: int | None = None) -> int:
    """A new cluster's shared_buffers in MB: a quarter of the memory we may use, within the bounds."""
    memory = memory_bytes if memory_bytes is not None else usable_memory()
    quarter = memory // 4 // (1024 * 1024)
    return max(SHARED_BUFFERS_MIN_MB, min(SHARED_BUFFERS_MAX_MB, quarter))


def usable_memory() -> int:
    """Physical memory, or the cgroup's limit when a container has a lower one (0 when unknown)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = 0
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            limit = Path(limit_file).read_text().strip()
        except OSError:
            continue
        # "max" means no limit; a number below the machine's memory is what this container may use
        if limit.isdigit() and int(limit) > 0 and (memory == 0 or int(limit) < memory):
            memory = int(limit)
    return memory
