"""Compliance scanners as isolated tools: where Checkov and Prowler are, and how to install them.

Checkov and Prowler pin many libraries (boto3, pydantic, ...) that would fight Nightshift's own, so
they are never imported: each lives in a virtualenv of its own under the scanners directory
(`$NIGHTSHIFT_SCANNERS_DIR`, default `.nightshift/scanners` beside the embedded cluster) and runs as a
subprocess through dispatcher/agents/process.py.

A scanner is found, in this order:
  1. the executable named by `$NIGHTSHIFT_CHECKOV` / `$NIGHTSHIFT_PROWLER` (used as is);
  2. the one `nightshift scanners install NAME` put in `<scanners dir>/NAME/bin/NAME`;
  3. `NAME` on PATH (used as is).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dispatcher.errors import NightshiftError

DIR_ENV = "NIGHTSHIFT_SCANNERS_DIR"
DEFAULT_DIR = Path(".nightshift") / "scanners"


@dataclass(frozen=True)
class ScannerSpec:
    name: str
    package: str  # the pinned requirement pip installs
    env_var: str  # names an executable to use instead

    @property
    def version(self) -> str:
        return self.package.split("==", 1)[1]


# Pinned: a new version changes check ids, output shapes and results. Raise deliberately, re-run the tests.
SCANNERS = {
    "checkov": ScannerSpec("checkov", "checkov==3.3.30", "NIGHTSHIFT_CHECKOV"),
    "prowler": ScannerSpec("prowler", "prowler==5.46.0", "NIGHTSHIFT_PROWLER"),
}


class ScannerError(NightshiftError):
    """A scanner that is unknown, missing or cannot be installed."""


@dataclass(frozen=True)
class Located:
    name: str
    path: Path
    origin: str  # "env", "installed" or "PATH"


def scanners_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(DIR_ENV) or DEFAULT_DIR).expanduser().absolute()


def cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """A private directory that outlives one scan, for what a scanner caches between runs, or None.

    Checkov's HCL parser (lark) builds its grammar tables on every start unless it finds them cached
    in the temporary directory: about 0.6 s a run, more than Nightshift's own steps. The cache is a
    pickle that Checkov loads, so the directory must be ours alone (mode 0700, owned by us): anything
    else (another owner, group- or world-writable, not creatable) gives None and the caller uses the
    run's private directory instead, as if there were no cache.
    """
    path = scanners_dir(environ) / "cache"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return path


def spec(name: str) -> ScannerSpec:
    try:
        return SCANNERS[name]
    except KeyError:
        raise ScannerError(f"unknown scanner {name!r}; known: {', '.join(SCANNERS)}") from None


def locate(name: str, environ: Mapping[str, str] | None = None) -> Located | None:
    """Where scanner `name` is (see the module docstring), or None when it is nowhere."""
    env = os.environ if environ is None else environ
    wanted = spec(name)
    if explicit := env.get(wanted.env_var):
        return Located(name, Path(explicit), "env")
    installed = scanners_dir(env) / name / "bin" / name
    if installed.is_file() and os.access(installed, os.X_OK):
        return Located(name, installed, "installed")
    on_path = shutil.which(name, path=env.get("PATH"))
    return Located(name, Path(on_path), "PATH") if on_path else None


def require(name: str, environ: Mapping[str, str] | None = None) -> Path:
    """The scanner's executable; ScannerError with the way to get it when it is missing."""
    found = locate(name, environ)
    if found is None:
        raise ScannerError(f"{name} is not installed: run `nightshift scanners install {name}`, put it on "
                           f"PATH or set {spec(name).env_var}")
    if not (found.path.is_file() and os.access(found.path, os.X_OK)):
        raise ScannerError(f"{name} at {found.path} (from {found.origin}) is not an executable file")
    return found.path


def install(name: str, *, python: str | None = None, quiet: bool = True) -> Path:
    """Create `<scanners dir>/NAME` (a virtualenv) with the pinned package; returns the executable.

    Already installed at the pinned version: nothing is done. The virtualenv is built with the
    interpreter running Nightshift unless `python` names another one.
    """
    wanted = spec(name)
    venv = scanners_dir() / name
    executable = venv / "bin" / name
    marker = venv / "nightshift-installed"
    if executable.is_file() and marker.is_file() and marker.read_text().strip() == wanted.package:
        return executable
    venv.parent.mkdir(parents=True, exist_ok=True)
    base = python or getattr(sys, "_base_executable", None) or sys.executable
    _run([base, "-m", "venv", "--clear", str(venv)], f"creating the virtualenv {venv}")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        pip.append("--quiet")
    _run([*pip, wanted.package], f"pip install {wanted.package}")
    if not executable.is_file():
        raise ScannerError(f"pip installed {wanted.package} but {executable} does not exist")
    marker.write_text(wanted.package + "\n")
    return executable


def installed_version(name: str) -> str | None:
    """The pinned requirement recorded by `install`, if this scanner was installed by Nightshift."""
    marker = scanners_dir() / name / "nightshift-installed"
    return marker.read_text().strip() if marker.is_file() else None


def _run(argv: list[str], what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ScannerError(f"{what}: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise ScannerError(f"{what} failed (exit status {done.returncode}): {last}")
