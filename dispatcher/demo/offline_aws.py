"""A real, offline AWS for Terraform: the hashicorp/aws provider from a local filesystem mirror, moto_server
on loopback.

Terraform reads a CLI configuration written here (never the user's ~/.terraformrc) that installs every
registry.terraform.io provider from MIRROR and nothing from the network; the provider talks to a
moto_server on 127.0.0.1 through the `endpoint` variable of the module (TF_VAR_endpoint). Used by
`nightshift demo`, tests/integration/test_drift_moto.py and tests/fixtures/plans/record.py.

Needs terraform on PATH, the provider in the mirror ($NIGHTSHIFT_TF_PLUGIN_MIRROR, default /opt/tf-plugins),
moto_server and boto3 (the dev extras; boto3 is imported only by client()).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MIRROR = Path(os.environ.get("NIGHTSHIFT_TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
REGION = "us-east-1"
CLI_CONFIG = """\
provider_installation {{
  filesystem_mirror {{
    path    = "{mirror}"
    include = ["registry.terraform.io/*/*"]
  }}
  direct {{
    exclude = ["registry.terraform.io/*/*"]
  }}
}}
"""
# What a pipeline must let through to terraform for the variables of terraform_env().
ENV_ALLOWLIST = ["TF_CLI_CONFIG_FILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                 "TF_VAR_*"]


class TerraformError(RuntimeError):
    """terraform exited with an unexpected code; the message carries the end of its output."""


def write_cli_config(directory: Path) -> Path:
    """Write the filesystem-mirror CLI configuration into `directory`; its path is for TF_CLI_CONFIG_FILE."""
    config = directory / "terraform.rc"
    config.write_text(CLI_CONFIG.format(mirror=MIRROR))
    return config


def moto_server_path() -> str | None:
    """moto_server, looked up in the running interpreter's bin directory first (the dev extras), then PATH."""
    return shutil.which("moto_server", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                             os.environ.get("PATH", "")]))


def missing_prerequisite() -> str | None:
    """Why Terraform cannot run against a local AWS here, or None when it can."""
    if shutil.which("terraform") is None:
        return "no `terraform` on PATH"
    if not (MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        return f"no hashicorp/aws provider in the mirror {MIRROR} (set NIGHTSHIFT_TF_PLUGIN_MIRROR)"
    if moto_server_path() is None:
        return "no moto_server (pip install 'moto[server]'; pip install -e '.[dev]' installs it)"
    return None


@contextlib.contextmanager
def moto_server(workdir: Path, timeout: float = 30.0) -> Iterator[str]:
    """Run moto_server on a free loopback port (log: workdir/moto.log); yield its endpoint when it answers."""
    server = moto_server_path()
    if server is None:
        raise RuntimeError("no moto_server (pip install 'moto[server]')")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    log_path = workdir / "moto.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)], stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"moto_server did not answer on {endpoint} within {timeout:.0f}s; "
                                           f"see {log_path}") from None
                    time.sleep(0.2)
            yield endpoint
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def reset_moto(endpoint: str) -> None:
    """Forget every resource moto holds."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def terraform_env(workdir: Path, endpoint: str) -> dict[str, str]:
    """What Terraform needs to manage the moto at `endpoint` (writes the CLI configuration into workdir)."""
    return {"TF_CLI_CONFIG_FILE": str(write_cli_config(workdir)), "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION, "TF_VAR_endpoint": endpoint}


def terraform(cwd: Path, env: dict[str, str], *args: str, ok: tuple[int, ...] = (0,)) -> tuple[int, str]:
    """Run `terraform *args -no-color` in cwd, non-interactively; return (exit code, stdout).

    The process sees PATH, LANG=C.UTF-8, HOME=cwd's parent (not the user's home), TF_IN_AUTOMATION=1,
    TF_INPUT=0 (as -input=false), CHECKPOINT_DISABLE=1 and then `env`. An exit code not in `ok` raises
    TerraformError with the end of terraform's output.
    """
    full_env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd.parent), "LANG": "C.UTF-8",
                "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"}
    if "TMPDIR" in os.environ:
        full_env["TMPDIR"] = os.environ["TMPDIR"]
    full_env.update(env)
    done = subprocess.run(["terraform", *args, "-no-color"], cwd=cwd, env=full_env, capture_output=True,
                          encoding="utf-8", errors="replace", check=False)
    if done.returncode not in ok:
        expected = " or ".join(map(str, ok))
        raise TerraformError(f"terraform {' '.join(args)} exited {done.returncode} (expected {expected}) "
                             f"in {cwd}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.returncode, done.stdout


def client(endpoint: str, service: str) -> Any:
    """A boto3 client of `service` against the moto at `endpoint`."""
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")
