"""Notifications that reach people: the outbox (nightshift.notifications) sent to Slack, webhooks,
email or the log.

- sender.py    run_sender(url, config, stop_event): claims outbox rows (SKIP LOCKED, a lease),
               groups them per channel, rate-limits, sends, marks sent / retry / failed / dead
- render.py    Jinja2 templates (templates/, or the operator's directory) -> Message
- channels/    one module per channel kind: slack, webhook, email, log
- store.py     the named queries of sql/queries/notify.sql
"""

from __future__ import annotations

from dispatcher.notify.sender import SenderConfig, SenderStats, run_sender

__all__ = ["SenderConfig", "SenderStats", "run_sender"]
