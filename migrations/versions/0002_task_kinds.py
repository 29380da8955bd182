"""task kinds as data

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 20:10:00

What differs per task kind (scheduled or not, target type, owned finding kinds, scan statuses,
remediation hand-over, notification template) moves from kind names tested in SQL into a table.
Its rows are seeded by sql/data/task_kinds.sql.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    scan_status = postgresql.ENUM(name="scan_status", schema="nightshift", create_type=False)
    op.create_table(
        "task_kinds",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("scheduled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("target_type", sa.Text(), nullable=True,
                  comment="what its schedules point at; NULL for kinds not scheduled"),
        sa.Column("finding_kinds", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"),
                  nullable=False),
        sa.Column("scan_statuses", postgresql.ARRAY(scan_status), server_default=sa.text("'{}'"),
                  nullable=False,
                  comment="the statuses its scans may have besides ERROR; empty: it stores no scans"),
        sa.Column("remediation_kind", sa.Text(), nullable=True,
                  comment="the task kind that open findings are handed to, if any"),
        sa.Column("notification_template", sa.Text(), nullable=True,
                  comment="outbox template of its finding transitions"),
        sa.CheckConstraint("target_type IN ('pipeline', 'cloud_integration', 'organization')",
                           name="task_kinds_target_type_check"),
        sa.CheckConstraint("NOT scheduled OR target_type IS NOT NULL",
                           name="task_kinds_scheduled_has_target"),
        sa.PrimaryKeyConstraint("kind"),
        schema="nightshift",
    )


def downgrade() -> None:
    op.drop_table("task_kinds", schema="nightshift")
