"""The HTTP intake behind `nightshift serve`: GitHub webhooks, the external schedulers' trigger, health.

Everything it does goes through SQL functions a DBA can call too (receive_github_delivery,
enqueue_pr_review, enqueue_due); this package only verifies, authenticates and answers.
"""

from __future__ import annotations

from dispatcher.intake.app import IntakeConfig, create_app

__all__ = ["IntakeConfig", "create_app"]
