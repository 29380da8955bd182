"""initial data model

Revision ID: 0001
Revises:
Create Date: 2026-11-26 15:02:57.439975

The tables of DESIGN.md's data model and the pg_cron extension. Functions, views, triggers and roles
are not here: they live in sql/ and are applied after every upgrade (see migrations/env.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# pg_cron can only be created in the database named by cron.database_name. Elsewhere on the same
# server the extension lives in that other database, and jobs reach us via cron.schedule_in_database.
PG_CRON = """
DO $$
DECLARE
    -- pg_settings lists the setting only when the library is loaded (not for a placeholder)
    v_cron_database text := (SELECT setting FROM pg_settings WHERE name = 'cron.database_name');
BEGIN
    IF v_cron_database IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not loaded by this server'
            USING HINT = 'add shared_preload_libraries = ''pg_cron'' to postgresql.conf and restart '
                         '(Debian package postgresql-15-cron)';
    END IF;
    IF v_cron_database = current_database() THEN
        CREATE EXTENSION IF NOT EXISTS pg_cron;
    END IF;
END
$$
"""


def upgrade() -> None:
    op.execute(PG_CRON)
    op.create_table(
        "applied_sql",
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("path"),
        schema="nightshift",
    )
    op.create_table(
        "organizations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("cost_optimization_enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("compliance_enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("auto_remediate", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        schema="nightshift",
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
        schema="nightshift",
    )
    op.create_table(
        "suppressions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("kind", sa.Text(), nullable=True, comment="finding kind, NULL for any"),
        sa.Column("subject_pattern", sa.Text(), server_default=sa.text("'*'"), nullable=False),
        sa.Column("address_pattern", sa.Text(), server_default=sa.text("'*'"), nullable=False),
        sa.Column("attribute_pattern", sa.Text(), server_default=sa.text("'*'"), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        schema="nightshift",
    )
    op.create_table(
        "cloud_integrations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("frameworks", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("compliance_enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("provider IN ('aws', 'gcp', 'azure')", name="cloud_integrations_provider_check"),
        sa.ForeignKeyConstraint(["organization_id"], ["nightshift.organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organization_id", "provider", "account_id"),
        schema="nightshift",
    )
    op.create_table(
        "repositories",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False, comment="git URL or local path"),
        sa.Column("default_branch", sa.Text(), server_default=sa.text("'main'"), nullable=False),
        sa.Column("iac_tool", sa.Text(), server_default=sa.text("'terraform'"), nullable=False),
        sa.Column("pr_review_enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("auto_remediate", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("iac_tool IN ('terraform', 'tofu')", name="repositories_iac_tool_check"),
        sa.ForeignKeyConstraint(["organization_id"], ["nightshift.organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organization_id", "name"),
        schema="nightshift",
    )
    op.create_table(
        "pipelines",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("repository_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("working_directory", sa.Text(), server_default=sa.text("'.'"), nullable=False),
        sa.Column("workspace", sa.Text(), server_default=sa.text("'default'"), nullable=False),
        sa.Column("var_files", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column(
            "env_allowlist", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "working_directory !~ '^/' AND working_directory !~ '(^|/)\\.\\.(/|$)'",
            name="pipelines_working_directory_check",
        ),
        sa.ForeignKeyConstraint(["repository_id"], ["nightshift.repositories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository_id", "name"),
        schema="nightshift",
    )
    op.create_table(
        "schedules",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("pipeline_id", sa.BigInteger(), nullable=True),
        sa.Column("cloud_integration_id", sa.BigInteger(), nullable=True),
        sa.Column("organization_id", sa.BigInteger(), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "frequency",
            sa.Enum(
                "UNMONITORED", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", name="frequency", schema="nightshift"
            ),
            server_default=sa.text("'DAILY'"),
            nullable=False,
        ),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("auto_create_pr", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("notification_channel", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "(kind = 'drift-scan' AND pipeline_id IS NOT NULL AND cloud_integration_id IS NULL"
            " AND organization_id IS NULL)"
            " OR (kind = 'compliance-scan' AND cloud_integration_id IS NOT NULL AND pipeline_id IS NULL"
            " AND organization_id IS NULL)"
            " OR (kind = 'cost-analysis' AND organization_id IS NOT NULL AND pipeline_id IS NULL"
            " AND cloud_integration_id IS NULL)",
            name="schedules_target_matches_kind",
        ),
        sa.ForeignKeyConstraint(
            ["cloud_integration_id"], ["nightshift.cloud_integrations.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["organization_id"], ["nightshift.organizations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["pipeline_id"], ["nightshift.pipelines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "kind",
            "pipeline_id",
            "cloud_integration_id",
            "organization_id",
            name="schedules_one_per_target",
            postgresql_nulls_not_distinct=True,
        ),
        schema="nightshift",
        postgresql_with={"fillfactor": "70"},
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False, comment="what the task is about, e.g. pipeline/42"),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "done",
                "failed",
                "dead",
                "cancelled",
                name="task_status",
                schema="nightshift",
            ),
            server_default=sa.text("'queued'"),
            nullable=False,
        ),
        sa.Column("priority", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("run_after", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column(
            "attempt", sa.Integer(), server_default=sa.text("0"), nullable=False, comment="fencing token"
        ),
        sa.Column("max_attempts", sa.Integer(), server_default=sa.text("3"), nullable=False),
        sa.Column("locked_by", sa.Text(), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "errors",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("schedule_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status <> 'running' OR (locked_by IS NOT NULL AND locked_until IS NOT NULL)",
            name="tasks_running_is_locked",
        ),
        sa.CheckConstraint("attempt >= 0", name="tasks_attempt_check"),
        sa.CheckConstraint("max_attempts >= 1", name="tasks_max_attempts_check"),
        sa.PrimaryKeyConstraint("id"),
        schema="nightshift",
    )
    op.create_index(
        "tasks_claim_idx",
        "tasks",
        [sa.text("priority DESC"), "run_after", "id"],
        unique=False,
        schema="nightshift",
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.create_index(
        "tasks_finished_idx",
        "tasks",
        ["finished_at"],
        unique=False,
        schema="nightshift",
        postgresql_where=sa.text("finished_at IS NOT NULL"),
    )
    op.create_index(
        "tasks_lease_idx",
        "tasks",
        ["locked_until"],
        unique=False,
        schema="nightshift",
        postgresql_where=sa.text("locked_until IS NOT NULL"),
    )
    op.create_index(
        "tasks_one_in_flight",
        "tasks",
        ["kind", "subject"],
        unique=True,
        schema="nightshift",
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_table(
        "scans",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("CLEAN", "DRIFTED", "FAILED_CHECKS", "ERROR", name="scan_status", schema="nightshift"),
            nullable=False,
        ),
        sa.Column(
            "summary",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "artifacts",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["nightshift.tasks.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id", "attempt", name="scans_task_attempt_key"),
        schema="nightshift",
    )
    op.create_index(
        "scans_subject_idx", "scans", ["subject", "finished_at"], unique=False, schema="nightshift"
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("delivery_id", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["nightshift.tasks.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("delivery_id"),
        schema="nightshift",
    )
    op.create_table(
        "findings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("resource_address", sa.Text(), nullable=True),
        sa.Column("resource_type", sa.Text(), nullable=True),
        sa.Column("module", sa.Text(), nullable=True),
        sa.Column("provider_id", sa.Text(), nullable=True),
        sa.Column("change_type", sa.Text(), nullable=True),
        sa.Column("check_id", sa.Text(), nullable=True),
        sa.Column("severity", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum("OPEN", "RESOLVED", "SUPPRESSED", name="finding_status", schema="nightshift"),
            server_default=sa.text("'OPEN'"),
            nullable=False,
        ),
        sa.Column("first_seen", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("occurrences", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("reopened_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("first_scan_id", sa.BigInteger(), nullable=True),
        sa.Column("last_scan_id", sa.BigInteger(), nullable=True),
        sa.Column("suppression_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["first_scan_id"], ["nightshift.scans.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["last_scan_id"], ["nightshift.scans.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["suppression_id"], ["nightshift.suppressions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subject", "fingerprint", name="findings_subject_fingerprint_key"),
        schema="nightshift",
    )
    op.create_index(
        "findings_subject_status_idx", "findings", ["subject", "status"], unique=False, schema="nightshift"
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "sending",
                "sent",
                "failed",
                "dead",
                name="notification_status",
                schema="nightshift",
            ),
            server_default=sa.text("'pending'"),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("scan_id", sa.BigInteger(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["scan_id"], ["nightshift.scans.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        schema="nightshift",
    )
    op.create_index(
        "notifications_pending_idx",
        "notifications",
        ["next_attempt_at"],
        unique=False,
        schema="nightshift",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "remediations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column(
            "finding_ids", postgresql.ARRAY(sa.BigInteger()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("branch", sa.Text(), nullable=True),
        sa.Column("pr_url", sa.Text(), nullable=True),
        sa.Column("verified_scan_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'pr_opened', 'verified', 'failed')",
            name="remediations_status_check",
        ),
        sa.ForeignKeyConstraint(["task_id"], ["nightshift.tasks.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["verified_scan_id"], ["nightshift.scans.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        schema="nightshift",
    )


def downgrade() -> None:
    op.drop_table("remediations", schema="nightshift")
    op.drop_index(
        "notifications_pending_idx",
        table_name="notifications",
        schema="nightshift",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_table("notifications", schema="nightshift")
    op.drop_index("findings_subject_status_idx", table_name="findings", schema="nightshift")
    op.drop_table("findings", schema="nightshift")
    op.drop_table("webhook_deliveries", schema="nightshift")
    op.drop_index("scans_subject_idx", table_name="scans", schema="nightshift")
    op.drop_table("scans", schema="nightshift")
    op.drop_index(
        "tasks_one_in_flight",
        table_name="tasks",
        schema="nightshift",
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.drop_index(
        "tasks_lease_idx",
        table_name="tasks",
        schema="nightshift",
        postgresql_where=sa.text("status = 'running'"),
    )
    op.drop_index(
        "tasks_finished_idx",
        table_name="tasks",
        schema="nightshift",
        postgresql_where=sa.text("finished_at IS NOT NULL"),
    )
    op.drop_index(
        "tasks_claim_idx",
        table_name="tasks",
        schema="nightshift",
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.drop_table("tasks", schema="nightshift")
    op.drop_table("schedules", schema="nightshift")
    op.drop_table("pipelines", schema="nightshift")
    op.drop_table("repositories", schema="nightshift")
    op.drop_table("cloud_integrations", schema="nightshift")
    op.drop_table("suppressions", schema="nightshift")
    op.drop_table("settings", schema="nightshift")
    op.drop_table("organizations", schema="nightshift")
    op.drop_table("applied_sql", schema="nightshift")
    for enum in ("notification_status", "finding_status", "scan_status", "task_status", "frequency"):
        op.execute(f"DROP TYPE IF EXISTS nightshift.{enum}")
