"""compliance: which pipelines an integration covers, framework requirements and check mappings

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-28 20:15:00

- cloud_integrations.credentials: how Prowler reaches the live account, as names and references only
  ({"env": [variable names passed from the dispatcher's environment], "role_arn": ..., "regions": [...]});
  NULL: no live scan, Checkov only.
- cloud_integration_pipelines: explicit links from a cloud integration to the pipelines whose IaC its
  compliance scans check with Checkov. An integration without links covers every pipeline of its
  organization (nightshift.compliance_pipelines).
- compliance_requirements: one row per requirement of a framework version (CIS AWS 3.0 `1.10`, SOC2
  `cc_1_3`...), loaded from the scanners' own framework files (`nightshift frameworks load`).
- compliance_check_mappings: scanner check -> requirement, each row naming its source; `judgement`
  marks a hand-curated row (a reviewed opinion, not the framework's or the scanner's own mapping).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "cloud_integrations",
        sa.Column("credentials", postgresql.JSONB(astext_type=sa.Text()), nullable=True,
                  comment="how Prowler reaches the live account (names and references, never values); "
                          "NULL: no live scan"),
        schema="nightshift",
    )
    op.create_table(
        "cloud_integration_pipelines",
        sa.Column("cloud_integration_id", sa.BigInteger(), nullable=False),
        sa.Column("pipeline_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["cloud_integration_id"], ["nightshift.cloud_integrations.id"],
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["pipeline_id"], ["nightshift.pipelines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("cloud_integration_id", "pipeline_id"),
        schema="nightshift",
    )
    op.create_table(
        "compliance_requirements",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("framework", sa.Text(), nullable=False, comment="normalized name: CIS, SOC2, ISO27001..."),
        sa.Column("framework_version", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("source_name", sa.Text(), nullable=False,
                  comment="the framework file it was loaded from, e.g. prowler:cis_3.0_aws"),
        sa.Column("requirement", sa.Text(), nullable=False, comment="the framework's own id: 1.10, cc_1_3"),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("section", sa.Text(), nullable=True),
        sa.Column("assessment", sa.Text(), server_default=sa.text("'automated'"), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("assessment IN ('automated', 'manual')",
                           name="compliance_requirements_assessment_check"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_name", "requirement", name="compliance_requirements_source_key"),
        schema="nightshift",
    )
    op.create_index("compliance_requirements_framework_idx", "compliance_requirements",
                    ["framework", "provider"], unique=False, schema="nightshift")
    op.create_table(
        "compliance_check_mappings",
        sa.Column("requirement_id", sa.BigInteger(), nullable=False),
        sa.Column("scanner", sa.Text(), nullable=False),
        sa.Column("check_id", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False,
                  comment="where the mapping comes from (a file, a URL)"),
        sa.Column("judgement", sa.Boolean(), server_default=sa.text("false"), nullable=False,
                  comment="true: curated by hand, a reviewed opinion rather than a published mapping"),
        sa.CheckConstraint("scanner IN ('checkov', 'prowler')",
                           name="compliance_check_mappings_scanner_check"),
        sa.ForeignKeyConstraint(["requirement_id"], ["nightshift.compliance_requirements.id"],
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("requirement_id", "scanner", "check_id"),
        schema="nightshift",
    )
    op.create_index("compliance_check_mappings_check_idx", "compliance_check_mappings",
                    ["scanner", "check_id"], unique=False, schema="nightshift")


def downgrade() -> None:
    op.drop_index("compliance_check_mappings_check_idx", table_name="compliance_check_mappings",
                  schema="nightshift")
    op.drop_table("compliance_check_mappings", schema="nightshift")
    op.drop_index("compliance_requirements_framework_idx", table_name="compliance_requirements",
                  schema="nightshift")
    op.drop_table("compliance_requirements", schema="nightshift")
    op.drop_table("cloud_integration_pipelines", schema="nightshift")
    op.drop_column("cloud_integrations", "credentials", schema="nightshift")
