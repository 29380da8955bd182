"""`nightshift scanners install|list`: the compliance scanners, each in a virtualenv of its own."""

from __future__ import annotations

import argparse
import subprocess

from dispatcher.compliance.scanners import (
    DIR_ENV,
    SCANNERS,
    install,
    installed_version,
    locate,
    scanners_dir,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scanners",
        help="install and list the compliance scanners (Checkov, Prowler)",
        description="Checkov and Prowler run as subprocesses from virtualenvs of their own under "
        f"${DIR_ENV} (default .nightshift/scanners), never imported into Nightshift. A scanner named "
        "by $NIGHTSHIFT_CHECKOV / $NIGHTSHIFT_PROWLER, or found on PATH, is used as is.",
    )
    commands = parser.add_subparsers(title="scanner commands", metavar="COMMAND", required=True)
    install_parser = commands.add_parser(
        "install", help="install a scanner at its pinned version",
        description="Create <scanners dir>/NAME as a virtualenv and pip-install the pinned version "
        f"({', '.join(s.package for s in SCANNERS.values())}). Nothing happens when that version is "
        "already there. Prowler is large (about 2.3 GB installed).",
    )
    install_parser.add_argument("names", nargs="+", choices=sorted(SCANNERS), metavar="NAME",
                                help="checkov or prowler")
    install_parser.add_argument("--python", help="the interpreter that builds the virtualenv "
                                "(default: the one running Nightshift)")
    install_parser.set_defaults(func=run_install)
    list_parser = commands.add_parser("list", help="which scanners are found, where and at which version")
    list_parser.add_argument("--no-version", action="store_true",
                             help="do not run each scanner to ask its version (faster)")
    list_parser.set_defaults(func=run_list)


def run_install(args: argparse.Namespace) -> int:
    for name in args.names:
        spec = SCANNERS[name]
        print(f"installing {spec.package} into {scanners_dir() / name} ...", flush=True)
        executable = install(name, python=args.python)
        print(f"{name} {spec.version}: {executable}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    print(f"scanners directory: {scanners_dir()}")
    for name, spec in SCANNERS.items():
        found = locate(name)
        if found is None:
            print(f"{name:8} not installed (pinned {spec.package}; `nightshift scanners install {name}`)")
            continue
        version = "" if args.no_version else f" version {_version(str(found.path))}"
        pinned = f" (installed {installed_version(name)})" if found.origin == "installed" else ""
        print(f"{name:8} {found.path} from {found.origin}{version}{pinned}")
    return 0


def _version(executable: str) -> str:
    try:
        done = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=120,
                              env={"BC_SKIP_MAPPING": "TRUE", "PATH": "/usr/local/bin:/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    lines = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return lines[-1] if done.returncode == 0 and lines else f"unknown (exit status {done.returncode})"
