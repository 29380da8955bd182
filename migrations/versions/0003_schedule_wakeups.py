"""schedule wakeups: enqueue_due finds what is due without reading every schedule

Revision ID: 0003
Revises: 0008
Create Date: 2026-11-28 20:15:00

schedules.next_run_at stays out of every index, so enqueue_due's advance of it remains a HOT update.
The due scan reads nightshift.schedule_wakeups instead: a narrow, insert-and-delete table of hints
(kind, run_at, schedule_id) with one index on (kind, run_at). Triggers and enqueue_due keep a hint at or
before each active schedule's next_run_at (sql/triggers/schedules_wakeups.sql); the schedule row stays
the truth. Existing schedules get their hint here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_wakeups",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("schedule_id", sa.BigInteger(), nullable=False),
        schema="nightshift",
        comment="hints for enqueue_due: look at schedule_id from run_at on (its next_run_at decides)",
    )
    op.create_index(
        "schedule_wakeups_due_idx", "schedule_wakeups", ["kind", "run_at"], schema="nightshift"
    )
    op.execute(
        "INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_id) "
        "SELECT kind, next_run_at, id FROM nightshift.schedules "
        "WHERE is_active AND frequency <> 'UNMONITORED' AND next_run_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("schedule_wakeups", schema="nightshift")
