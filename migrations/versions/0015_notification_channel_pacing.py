"""notification channels paced across senders, and sent notifications pruned

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28 23:00:00

A channel's rate limit (min_interval, a 429's Retry-After) held in its row, not in each sender's
memory, so several dispatchers on several machines never flood one channel: `held_until` (no message
before then) and a lease (`locked_by`, `locked_until`) taken by the claim that takes its rows, so one
sender at a time sends to a channel. An index on sent rows by sent_at for the retention delete of
nightshift.prune_history (setting retention.notifications).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notification_channels", sa.Column(
        "held_until", sa.DateTime(timezone=True), nullable=True,
        comment="no message before this time: min_interval after a send, a 429's Retry-After"),
        schema="nightshift")
    op.add_column("notification_channels", sa.Column(
        "locked_by", sa.Text(), nullable=True, comment="the sender sending this channel's claimed rows"),
        schema="nightshift")
    op.add_column("notification_channels", sa.Column(
        "locked_until", sa.DateTime(timezone=True), nullable=True,
        comment="that sender's lease on the channel; expired: free again"),
        schema="nightshift")
    op.create_index(
        "notifications_sent_idx", "notifications", ["sent_at"], unique=False, schema="nightshift",
        postgresql_where=sa.text("status = 'sent'"),
    )


def downgrade() -> None:
    op.drop_index("notifications_sent_idx", table_name="notifications", schema="nightshift")
    for column in ("locked_until", "locked_by", "held_until"):
        op.drop_column("notification_channels", column, schema="nightshift")
