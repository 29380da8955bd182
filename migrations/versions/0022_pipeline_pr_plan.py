"""pr-review: a per-pipeline switch to run `terraform plan` in pull-request reviews (off by default)

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-29 01:40:00

Issue 16. A plan needs the backend's and the cloud's credentials, which a review of code anyone with push
access writes should not hold unless the team says so: pipelines.pr_plan is false unless set. When it is
true and a pull request changes the pipeline's root, the pr-review agent runs `terraform plan` there with
the pipeline's workspace, var files and env_allowlist (nightshift.plans_of_repository puts those, never a
value, into the task's payload) and summarises it in the comment.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pipelines", sa.Column(
        "pr_plan", sa.Boolean(), nullable=False, server_default=sa.text("false"),
        comment="run terraform plan for this root in pull-request reviews (needs its credentials)"),
        schema="nightshift")


def downgrade() -> None:
    op.drop_column("pipelines", "pr_plan", schema="nightshift")
