"""Call Nightshift's trigger endpoint for each scheduled kind (standard library only).

Used by function_app.py on an Azure timer; runnable by hand too:
    NIGHTSHIFT_URL=https://nightshift.example.com NIGHTSHIFT_TRIGGER_TOKEN=nst_... \
        python nightshift_trigger.py
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

DEFAULT_KINDS = "drift-scan compliance-scan cost-analysis"


def trigger(base_url: str, token: str, kind: str, timeout: float = 15.0) -> dict:
    """POST /api/v1/internal/scheduled-tasks/{kind}; the answer, e.g. {"kind": ..., "enqueued": 3, ...}."""
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/api/v1/internal/scheduled-tasks/{kind}", method="POST", data=b"",
        headers={"Authorization": f"Bearer {token}", "User-Agent": "nightshift-azure-timer"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read(500).decode(errors="replace")
        raise RuntimeError(f"{kind}: HTTP {exc.code}: {detail}") from None


def trigger_all(environ: dict[str, str] | None = None) -> list[dict]:
    """Every kind in NIGHTSHIFT_KINDS; all are tried, then the first failure is raised."""
    env = os.environ if environ is None else environ
    base_url, token = env["NIGHTSHIFT_URL"], env["NIGHTSHIFT_TRIGGER_TOKEN"]
    answers, failures = [], []
    for kind in env.get("NIGHTSHIFT_KINDS", DEFAULT_KINDS).split():
        try:
            answers.append(trigger(base_url, token, kind))
        except (RuntimeError, OSError) as exc:
            failures.append(str(exc))
    if failures:
        raise RuntimeError("; ".join(failures))
    return answers


if __name__ == "__main__":
    for answer in trigger_all():
        print(json.dumps(answer))
    sys.exit(0)
