"""`nightshift report --html` opened in a real headless Chromium (Debian's `chromium`, installed by
`make system-deps`): the page loads without a console message, its tables sort, and a screenshot is
saved to .nightshift/artifacts/report.png for a person to look at.

Console messages are read from Chromium's own log (--enable-logging=stderr): every console.log, error
and uncaught exception is a line `...:INFO:CONSOLE(line)] "message", source: ...`. The report logs
nothing, so any such line is a failure; a page with a deliberate error proves the check sees them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from dispatcher.cli import main
from tests.support.report_support import make_history

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / ".nightshift" / "artifacts" / "report.png"
CONSOLE = re.compile(r':CONSOLE(?:\(\d+\)|:\d+)\] "(.*)", source: ')


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    pytest.skip("chromium is not installed (Debian package `chromium`; `make system-deps` installs it)")


def open_page(page: Path, tmp_path: Path, *extra: str) -> tuple[list[str], str]:
    """Load the page headless; its console messages and Chromium's stdout (the DOM with --dump-dom)."""
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", *extra, page.as_uri()],
        capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return CONSOLE.findall(done.stderr), done.stdout


def test_the_console_check_sees_errors(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>console.error('boom'); no_such_function();</script></body></html>")
    messages, _ = open_page(page, tmp_path, "--dump-dom")
    assert "boom" in messages and any("Uncaught ReferenceError" in m for m in messages)


def test_the_report_opens_without_console_errors_and_its_tables_sort(
    conn: psycopg.Connection, db_url: str, tmp_path: Path,
) -> None:
    make_history(conn)
    page = tmp_path / "report.html"
    assert main(["report", "--database-url", db_url, "--html", str(page)]) == 0
    html = page.read_text()
    assert "http://" not in html and "https://" not in html  # self-contained: nothing to fetch

    messages, dom = open_page(page, tmp_path, "--dump-dom")
    assert messages == []
    assert "acme/infra-network/network" in dom and "Needs attention" in dom and "<polygon" in dom

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    messages, _ = open_page(page, tmp_path, f"--screenshot={SCREENSHOT}", "--window-size=1400,2200")
    assert messages == [] and SCREENSHOT.stat().st_size > 20_000

    # the page's own sorting script, driven by a click on acme's "open" column: ascending, then descending
    probe = tmp_path / "sorted.html"
    probe.write_text(html.replace("</body>", """<script>
      var table = document.querySelectorAll("section.org")[1].querySelectorAll("table.sortable")[0];
      var header = Array.from(table.tHead.rows[0].cells)
                        .findIndex(function (c) { return c.textContent === "open"; });
      function column() {
        return Array.from(table.tBodies[0].rows).map(function (r) { return +r.cells[header].textContent; });
      }
      table.tHead.rows[0].cells[header].click(); console.log(JSON.stringify(column()));
      table.tHead.rows[0].cells[header].click(); console.log(JSON.stringify(column()));
    </script></body>"""))
    messages, _ = open_page(probe, tmp_path, "--dump-dom")
    ascending, descending = (json.loads(m) for m in messages)
    assert ascending == sorted(ascending) and descending == sorted(ascending, reverse=True)
    assert ascending != descending  # acme has targets with and without open findings
