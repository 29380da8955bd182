"""one result path

Revision ID: 0010
Revises: 0002
Create Date: 2026-11-28 21:00:00

nightshift.record_result stores every kind's result: tasks keep the agent's summary, and a
remediation kind names the finding kinds it fixes (task_kinds.remediates).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("summary", postgresql.JSONB(), nullable=True,
                                     comment="the agent's summary of a successful run"), schema="nightshift")
    op.add_column("task_kinds", sa.Column("remediates", postgresql.ARRAY(sa.Text()), nullable=False,
                                          server_default=sa.text("'{}'"),
                                          comment="for a remediation kind: the finding kinds it fixes"),
                  schema="nightshift")
    op.execute("UPDATE nightshift.task_kinds SET remediates = '{drift}' WHERE kind = 'drift-remediation'")
    # replaced by the kind-agnostic nightshift.request_remediation (sql/functions/)
    op.execute("DROP FUNCTION IF EXISTS nightshift.enqueue_drift_remediation(bigint, text)")


def downgrade() -> None:
    op.drop_column("task_kinds", "remediates", schema="nightshift")
    op.drop_column("tasks", "summary", schema="nightshift")
