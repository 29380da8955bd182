"""cost: an hourly summary of the line items per service, account and commitment status

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-28 23:00:00

Issue 15. The weekly analyses by service and account (commitment coverage, anomalies, top movers,
totals, the data's span) read nightshift.cost_line_summary instead of every line item: one row per
ingest, billing period, ChargePeriodStart, currency, service, sub account, charge category and
commitment status. It is brought up to date by nightshift.cost_summarize (sql/) and its rows go with
their ingest's rows when a later delivery restates a billing period.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cost_ingests", sa.Column("summarized_at", sa.DateTime(timezone=True), nullable=True,
                                            comment="when its rows were added to cost_line_summary"),
                  schema="nightshift")
    op.create_table(
        "cost_line_summary",
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("ingest_id", sa.BigInteger(), nullable=False),
        sa.Column("billing_period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("charge_period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("charge_period_end", sa.DateTime(timezone=True), nullable=True,
                  comment="the latest ChargePeriodEnd of the rows summed"),
        sa.Column("billing_currency", sa.Text(), nullable=True),
        sa.Column("service_name", sa.Text(), nullable=True),
        sa.Column("sub_account_id", sa.Text(), nullable=True),
        sa.Column("charge_category", sa.Text(), nullable=True),
        sa.Column("commitment_discount_status", sa.Text(), nullable=True),
        sa.Column("committed", sa.Boolean(), nullable=False, comment="CommitmentDiscountId is not null"),
        sa.Column("line_items", sa.BigInteger(), nullable=False),
        sa.Column("billed_cost", sa.Numeric(), nullable=True),
        sa.Column("effective_cost", sa.Numeric(), nullable=True),
        sa.Column("list_cost", sa.Numeric(), nullable=True),
        sa.ForeignKeyConstraint(["source_id"], ["nightshift.cost_sources.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ingest_id"], ["nightshift.cost_ingests.id"], ondelete="CASCADE"),
        schema="nightshift",
    )
    op.create_index("cost_line_summary_source_charge_idx", "cost_line_summary",
                    ["source_id", "charge_period_start"], schema="nightshift")
    op.create_index("cost_line_summary_ingest_idx", "cost_line_summary", ["ingest_id"], schema="nightshift")


def downgrade() -> None:
    op.drop_table("cost_line_summary", schema="nightshift")
    op.drop_column("cost_ingests", "summarized_at", schema="nightshift")
