"""drift remediation: guard rails and the remediation trail

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 23:00:00

Opt-in drift remediation (issue 17): per-repository and per-organization daily pull-request limits,
the explicit allowance to remediate deleted or replaced stateful resources, the extendable list of
stateful resource types, freeze windows, and the columns of the remediations trail (finding set →
task → branch → pull request → verified or failed, with the reason).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

OPEN = "status IN ('pending', 'running', 'pr_opened', 'merged')"


def upgrade() -> None:
    op.add_column(
        "organizations",
        sa.Column(
            "remediation_daily_pr_limit",
            sa.Integer(),
            nullable=False,
            server_default=sa.text("10"),
            comment="at most this many remediation pull requests opened per rolling 24 hours",
        ),
        schema="nightshift",
    )
    op.create_check_constraint(
        "organizations_remediation_daily_pr_limit_check",
        "organizations",
        "remediation_daily_pr_limit >= 0",
        schema="nightshift",
    )
    op.add_column(
        "repositories",
        sa.Column(
            "remediation_daily_pr_limit",
            sa.Integer(),
            nullable=False,
            server_default=sa.text("3"),
            comment="at most this many remediation pull requests opened per rolling 24 hours",
        ),
        schema="nightshift",
    )
    op.create_check_constraint(
        "repositories_remediation_daily_pr_limit_check",
        "repositories",
        "remediation_daily_pr_limit >= 0",
        schema="nightshift",
    )
    op.add_column(
        "repositories",
        sa.Column(
            "remediate_stateful",
            sa.Boolean(),
            nullable=False,
            server_default=sa.text("false"),
            comment="allow remediation of deleted or replaced resources of a stateful type",
        ),
        schema="nightshift",
    )

    op.create_table(
        "stateful_resource_types",
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("type"),
        schema="nightshift",
    )
    op.create_table(
        "remediation_freezes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=True, comment="NULL: every organization"),
        sa.Column("repository_id", sa.BigInteger(), nullable=True, comment="NULL: every repository"),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name="remediation_freezes_period_check"),
        sa.ForeignKeyConstraint(["organization_id"], ["nightshift.organizations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["repository_id"], ["nightshift.repositories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema="nightshift",
    )

    columns = [
        sa.Column("scan_id", sa.BigInteger(), nullable=True, comment="the scan that asked for it"),
        sa.Column("reason", sa.Text(), nullable=True, comment="why it was refused or failed"),
        sa.Column(
            "fixes",
            postgresql.JSONB(),
            server_default=sa.text("'[]'"),
            nullable=False,
            comment="per finding: adopt or revert, and why",
        ),
        sa.Column(
            "findings_digest",
            sa.Text(),
            nullable=True,
            comment="md5 of the findings' details it was asked to fix: a changed drift updates it",
        ),
        sa.Column("pr_number", sa.Integer(), nullable=True),
        sa.Column("commit_sha", sa.Text(), nullable=True),
        sa.Column("pr_opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    ]
    for column in columns:
        op.add_column("remediations", column, schema="nightshift")
    op.create_foreign_key(
        "remediations_scan_id_fkey",
        "remediations",
        "scans",
        ["scan_id"],
        ["id"],
        source_schema="nightshift",
        referent_schema="nightshift",
        ondelete="SET NULL",
    )
    op.drop_constraint("remediations_status_check", "remediations", schema="nightshift")
    op.create_check_constraint(
        "remediations_status_check",
        "remediations",
        "status IN ('pending', 'running', 'pr_opened', 'merged', 'verified', 'failed', 'refused')",
        schema="nightshift",
    )
    # one open remediation per subject (so per finding), and one standing refusal, updated in place
    op.create_index(
        "remediations_one_open_key",
        "remediations",
        ["subject"],
        unique=True,
        schema="nightshift",
        postgresql_where=sa.text(OPEN),
    )
    op.create_index(
        "remediations_one_refusal_key",
        "remediations",
        ["subject"],
        unique=True,
        schema="nightshift",
        postgresql_where=sa.text("status = 'refused'"),
    )
    op.create_index("remediations_task_idx", "remediations", ["task_id"], schema="nightshift")


def downgrade() -> None:
    op.drop_index("remediations_task_idx", "remediations", schema="nightshift")
    op.drop_index("remediations_one_refusal_key", "remediations", schema="nightshift")
    op.drop_index("remediations_one_open_key", "remediations", schema="nightshift")
    op.execute("DELETE FROM nightshift.remediations WHERE status IN ('merged', 'refused')")
    op.drop_constraint("remediations_status_check", "remediations", schema="nightshift")
    op.create_check_constraint(
        "remediations_status_check",
        "remediations",
        "status IN ('pending', 'running', 'pr_opened', 'verified', 'failed')",
        schema="nightshift",
    )
    op.drop_constraint("remediations_scan_id_fkey", "remediations", schema="nightshift")
    for name in (
        "finished_at",
        "merged_at",
        "pr_opened_at",
        "commit_sha",
        "pr_number",
        "findings_digest",
        "fixes",
        "reason",
        "scan_id",
    ):
        op.drop_column("remediations", name, schema="nightshift")
    op.drop_table("remediation_freezes", schema="nightshift")
    op.drop_table("stateful_resource_types", schema="nightshift")
    op.drop_column("repositories", "remediate_stateful", schema="nightshift")
    op.drop_constraint("repositories_remediation_daily_pr_limit_check", "repositories", schema="nightshift")
    op.drop_column("repositories", "remediation_daily_pr_limit", schema="nightshift")
    op.drop_constraint("organizations_remediation_daily_pr_limit_check", "organizations", schema="nightshift")
    op.drop_column("organizations", "remediation_daily_pr_limit", schema="nightshift")
