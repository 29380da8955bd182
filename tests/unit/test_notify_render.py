"""Rendering outbox payloads (Jinja2) and laying them out as Slack Block Kit within Slack's limits."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dispatcher.notify.channels import Outgoing
from dispatcher.notify.channels.http import parse_retry_after
from dispatcher.notify.channels.slack import build_payload, cut, escape
from dispatcher.notify.render import Message, Renderer, RenderError
from tests.support import blockkit

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "slack" / "README.md"


def finding(i: int, **extra: Any) -> dict[str, Any]:
    return {"id": i, "kind": "drift", "address": f"aws_s3_bucket.b{i}", "type": "aws_s3_bucket",
            "change": "update", "severity": "low", "status": "OPEN", "attributes": ["tags.env"], **extra}


def drift_payload(new: int = 2, resolved: int = 1, listed: int | None = None) -> dict[str, Any]:
    listed = new if listed is None else listed
    return {
        "subject": "pipeline/7", "target": "acme/infra/prod-network", "task_kind": "drift-scan",
        "scan_id": 42, "scan_status": "DRIFTED",
        "counts": {"new": new, "reopened": 0, "resolved": resolved, "unsuppressed": 0, "suppressed": 0,
                   "open": new},
        "new": [finding(i) for i in range(listed)],
        "reopened": [], "resolved": [finding(100 + i, status="RESOLVED") for i in range(resolved)],
        "unsuppressed": [], "suppressed": [], "truncated": listed < new,
    }


def test_drift_message_groups_one_scan() -> None:
    message = Renderer().render(1, "drift-changed", drift_payload(new=3, resolved=1))
    assert message.title == "Drift: 3 new, 1 resolved on acme/infra/prod-network"
    assert [s.heading for s in message.sections] == ["New (3)", "Resolved (1)"]
    assert message.sections[0].lines[0] == "aws_s3_bucket.b0 (update: tags.env) [low]"
    assert message.context == "Nightshift · drift-scan · pipeline/7 · scan 42"


def test_findings_missing_optional_fields_still_render() -> None:
    payload = drift_payload(new=1, resolved=0)
    payload["new"] = [{"id": 1, "kind": "compliance", "check_id": "CKV_AWS_20"}]  # no address, no change
    payload["task_kind"] = "compliance-scan"
    message = Renderer().render(1, "findings-changed", payload)
    assert message.sections[0].lines == ("CKV_AWS_20",)


def test_truncated_payload_says_how_many_more() -> None:
    message = Renderer().render(1, "drift-changed", drift_payload(new=500, resolved=0, listed=50))
    assert message.sections[0].more == 450


def test_scan_health_templates() -> None:
    renderer = Renderer()
    failing = renderer.render(1, "scan-failing", {
        "subject": "pipeline/7", "target": None, "task_kind": "drift-scan", "scan_id": 3,
        "scan_status": "ERROR", "previous_status": "CLEAN", "error": "terraform init: 403",
        "failing_since": "2026-11-28T20:00:00+00:00",
        "failed_scans": 1})
    assert failing.title == "drift-scan failing on pipeline/7"
    assert "terraform init: 403" in failing.intro
    recovered = renderer.render(2, "scan-recovered", {
        "subject": "pipeline/7", "target": "acme/infra/net", "task_kind": "drift-scan", "scan_id": 5,
        "scan_status": "CLEAN", "previous_status": "ERROR", "error": "x",
        "failing_since": "2026-11-28T20:00:00.123+00:00", "failed_scans": 3})
    assert recovered.intro == ("The drift-scan of acme/infra/net finished CLEAN after 3 failed scans "
                               "(failing since 2026-11-28 20:00 UTC).")


def test_remediation_ready_links_the_pull_request() -> None:
    message = Renderer().render(9, "remediation-ready", {
        "subject": "pipeline/7", "target": "acme/infra/net", "pr_url": "https://github.com/acme/infra/pull/12",
        "title": "Revert drift of 2 resources", "finding_count": 2})
    assert message.link == "https://github.com/acme/infra/pull/12"
    body = build_payload(Outgoing("c", [message]))
    assert body["blocks"][-2]["elements"][0]["url"] == "https://github.com/acme/infra/pull/12"


def test_scan_link_from_setting() -> None:
    renderer = Renderer(scan_url="https://ns.example.com/scans/{scan_id}")
    message = renderer.render(1, "drift-changed", drift_payload())
    assert message.link == "https://ns.example.com/scans/42"


def test_strict_undefined_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "drift-changed.j2").write_text("{% block title %}{{ no_such_field }}{% endblock %}")
    with pytest.raises(RenderError, match=r"drift-changed does not render.*no_such_field"):
        Renderer(tmp_path).render(1, "drift-changed", drift_payload())
    with pytest.raises(RenderError, match="no template 'nope'"):
        Renderer().render(1, "nope", {})


def test_operator_templates_override_the_package(tmp_path: Path) -> None:
    (tmp_path / "scan-failing.j2").write_text("{% block title %}BROKEN: {{ subject }}{% endblock %}")
    message = Renderer(tmp_path).render(1, "scan-failing", {"subject": "pipeline/1"})
    assert message.title == "BROKEN: pipeline/1"
    # the others still come from the package
    assert Renderer(tmp_path).render(1, "drift-changed", drift_payload()).title.startswith("Drift:")


def test_html_email_part_is_autoescaped() -> None:
    payload = drift_payload(new=1, resolved=0)
    payload["new"] = [finding(1, address='aws_s3_bucket.x["<script>alert(1)</script>"]')]
    renderer = Renderer()
    message = renderer.render(1, "drift-changed", payload)
    html = renderer.render_document("message.html.j2", [message], message.title)
    assert "<script>" not in html and "&lt;script&gt;" in html
    text = renderer.render_document("message.txt.j2", [message], message.title)
    assert '["<script>alert(1)</script>"]' in text


def test_slack_single_message_is_valid_block_kit() -> None:
    message = Renderer().render(1, "drift-changed", drift_payload(new=2, resolved=1))
    body = build_payload(Outgoing("ops", [message]))
    assert blockkit.problems(body) == []
    assert body["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                                            "text": message.title}}
    text = "\n".join(b["text"]["text"] for b in body["blocks"] if b["type"] == "section")
    assert "aws_s3_bucket.b0" in text and "aws_s3_bucket.b1" in text and "aws_s3_bucket.b100" in text


def test_slack_escapes_mrkdwn() -> None:
    payload = drift_payload(new=1, resolved=0)
    payload["new"] = [finding(1, address="module.a<b>&c.aws_s3_bucket.<!channel>")]
    body = build_payload(Outgoing("ops", [Renderer().render(1, "drift-changed", payload)]))
    assert blockkit.unescaped(body) == []
    assert "&lt;!channel&gt;" in str(body)
    assert escape("a&b<c>") == "a&amp;b&lt;c&gt;"


@pytest.mark.parametrize("count", [50, 5000])
def test_slack_cuts_a_huge_scan_with_and_n_more(count: int) -> None:
    payload = drift_payload(new=count, resolved=count, listed=min(count, 2000))
    payload["resolved"] = payload["resolved"][:2000]
    for f in payload["new"]:
        f["attributes"] = [f"tags.key{i}" for i in range(30)]
    body = build_payload(Outgoing("ops", [Renderer().render(1, "drift-changed", payload)]))
    assert blockkit.problems(body) == []
    assert re.search(r"…and \d+ more", str(body))


def test_slack_groups_many_messages_within_limits() -> None:
    renderer = Renderer()
    messages = [renderer.render(i, "drift-changed", drift_payload(new=20, resolved=5)) for i in range(300)]
    body = build_payload(Outgoing("ops", messages))
    assert blockkit.problems(body) == []
    assert body["blocks"][0]["text"]["text"] == "Nightshift: 300 updates"
    assert re.search(r"…and \d+ more updates", str(body))
    digest = build_payload(Outgoing("ops", messages[:2], digest="daily"))
    assert digest["blocks"][0]["text"]["text"] == "Nightshift daily digest: 2 updates"
    assert blockkit.problems(digest) == []


def test_long_title_is_cut_for_the_header() -> None:
    message = Message(notification_id=1, template="x", title="t" * 400, intro="i" * 5000)
    body = build_payload(Outgoing("ops", [message]))
    assert blockkit.problems(body) == []


def test_cut_never_splits_an_escape() -> None:
    for limit in range(5, 40):
        text = cut("&" * 100, limit)
        assert len(text) <= limit and text.endswith("…")
        assert re.fullmatch(r"(&amp;)*…", text)


def test_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("999999") == 3600.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_checker_limits_match_the_slack_corpus() -> None:
    if not CORPUS.is_file():
        pytest.skip(f"the shared Slack corpus is absent ({CORPUS}): limits not cross-checked")
    text = CORPUS.read_text()
    documented = {
        "blocks per message": r"blocks per message \| \*\*(\d+)\*\*",
        "header text": r"header block `text` \| plain_text only, \*\*(\d+)\*\*",
        "section text": r"section block `text` \| min 1, \*\*(\d+)\*\*",
        "section fields": r"section block `fields` \| max \*\*(\d+)\*\*",
        "block_id": r"`block_id` \| max \*\*(\d+)\*\*",
        "actions elements": r"actions block `elements` \| max \*\*(\d+)\*\*",
        "context elements": r"context block `elements` \| max \*\*(\d+)\*\*",
    }
    for name, pattern in documented.items():
        match = re.search(pattern, text)
        assert match, name
        assert blockkit.LIMITS[name] == int(match.group(1)), name


def test_payloads_orjson_refuses_are_still_decoded() -> None:
    """The sender decodes claimed payloads with orjson; jsonb can hold what orjson refuses."""
    from dispatcher.notify.store import _loads

    assert _loads(b'{"a": [1, "x"]}') == {"a": [1, "x"]}
    assert _loads(b'{"big": 1e400}') == {"big": float("inf")}
