"""`nightshift scanners install|list`: where the scanners are found, and the pinned install being kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dispatcher.compliance import scanners
from tests.support.compliance_support import ROOT, ensure_checkov


def nightshift(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatcher", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **env}, check=False)


def test_list_names_each_scanner_with_its_origin_and_version(tmp_path: Path) -> None:
    checkov = ensure_checkov()
    env = {scanners.DIR_ENV: str(checkov.parent.parent.parent), "PATH": "/usr/bin:/bin",
           "NIGHTSHIFT_CHECKOV": "", "NIGHTSHIFT_PROWLER": ""}
    done = nightshift("scanners", "list", env=env)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("checkov"))
    assert f"{checkov} from installed version 3.3.30 (installed checkov==3.3.30)" in line

    fake = tmp_path / "my-checkov"
    fake.write_text("#!/bin/sh\necho 9.9.9\n")
    fake.chmod(0o755)
    done = nightshift("scanners", "list", env={scanners.DIR_ENV: str(tmp_path / "none"),
                                               "NIGHTSHIFT_CHECKOV": str(fake), "PATH": "/usr/bin:/bin"})
    assert f"checkov  {fake} from env version 9.9.9" in done.stdout
    missing = "prowler  not installed (pinned prowler==5.46.0; `nightshift scanners install prowler`)"
    assert missing in done.stdout


def test_install_keeps_a_pinned_install_and_refuses_unknown_names() -> None:
    checkov = ensure_checkov()
    if scanners.installed_version("checkov") is None:
        pytest.skip("Checkov comes from NIGHTSHIFT_CHECKOV or PATH here, not from `scanners install`")
    interpreter = scanners.scanners_dir() / "checkov" / "bin" / "python"
    before = interpreter.lstat().st_mtime_ns
    assert scanners.install("checkov") == checkov
    assert interpreter.lstat().st_mtime_ns == before, "already installed at the pinned version: kept"
    done = nightshift("scanners", "install", "trivy", env={})
    assert done.returncode == 2 and "invalid choice: 'trivy'" in done.stderr
