"""notification channels, and leases on the outbox

Revision ID: 0004
Revises: 0006
Create Date: 2026-11-28 20:00:00

Channels as data (slack, webhook, email, log): a schedule's notification_channel names one. Their
settings hold secret references (env:NAME, file:/path), never the secrets. The outbox rows get a
lease (locked_by, locked_until), like tasks, so several senders never send one row twice in normal
operation, and remember what the endpoint answered.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_channels",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=True,
                  comment="the tenant it belongs to; NULL: shared by all"),
        sa.Column("name", sa.Text(), nullable=False, comment="what schedules.notification_channel names"),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("settings", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"),
                  nullable=False, comment="per kind; secrets only as references env:NAME or file:/path"),
        sa.Column("digest", sa.Text(), nullable=True,
                  comment="hourly or daily: collect transitions and send one message per period"),
        sa.Column("min_interval", sa.Interval(), server_default=sa.text("'1 second'::interval"),
                  nullable=False, comment="at most one message per this interval; more are grouped"),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('slack', 'webhook', 'email', 'log')",
                           name="notification_channels_kind_check"),
        sa.CheckConstraint("digest IN ('hourly', 'daily')", name="notification_channels_digest_check"),
        sa.CheckConstraint("min_interval >= interval '0'", name="notification_channels_min_interval_check"),
        sa.ForeignKeyConstraint(["organization_id"], ["nightshift.organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="notification_channels_name_key"),
        schema="nightshift",
    )
    op.add_column("notifications", sa.Column("locked_by", sa.Text(), nullable=True), schema="nightshift")
    op.add_column("notifications", sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
                  schema="nightshift")
    op.add_column("notifications", sa.Column("response", sa.Text(), nullable=True,
                                             comment="what the endpoint answered last (capped)"),
                  schema="nightshift")
    op.add_column("notifications", sa.Column("message_id", sa.BigInteger(),
                                             nullable=True,
                                             comment="rows sent in one grouped message share it"),
                  schema="nightshift")
    op.create_index(
        "notifications_lease_idx", "notifications", ["locked_until"], unique=False, schema="nightshift",
        postgresql_where=sa.text("status = 'sending'"),
    )


def downgrade() -> None:
    op.drop_index("notifications_lease_idx", table_name="notifications", schema="nightshift")
    for column in ("message_id", "response", "locked_until", "locked_by"):
        op.drop_column("notifications", column, schema="nightshift")
    op.drop_table("notification_channels", schema="nightshift")
