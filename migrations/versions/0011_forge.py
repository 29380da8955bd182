"""Forges: how a repository's pull requests are reached, and the local forge's pull requests

Revision ID: 0011
Revises: 0003
Create Date: 2026-11-28 23:00:00

- repositories.forge: 'github' (REST API) or 'local' (branches on the git remote, pull requests as
  rows of nightshift.pull_requests);
- repositories.forge_api_url: a GitHub Enterprise API URL (NULL: $GITHUB_API_URL, else api.github.com);
- repositories.forge_token_ref: a secret reference (env:NAME, file:/path) to the token, never the token;
- pull_requests: the local forge's pull requests, with their comments (by hidden marker) and statuses.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("repositories", sa.Column(
        "forge", sa.Text(), server_default=sa.text("'github'"), nullable=False,
        comment="github (REST API) or local (branches on the remote, pull requests as rows)"),
        schema="nightshift")
    op.add_column("repositories", sa.Column(
        "forge_api_url", sa.Text(), nullable=True,
        comment="GitHub Enterprise API URL; NULL: $GITHUB_API_URL, else https://api.github.com"),
        schema="nightshift")
    op.add_column("repositories", sa.Column(
        "forge_token_ref", sa.Text(), nullable=True,
        comment="secret reference (env:NAME or file:/path) of the forge token"),
        schema="nightshift")
    op.create_check_constraint("repositories_forge_check", "repositories",
                               "forge IN ('github', 'local')", schema="nightshift")
    op.create_check_constraint("repositories_forge_token_ref_check", "repositories",
                               "forge_token_ref ~ '^(env|file):.'", schema="nightshift")
    op.create_table(
        "pull_requests",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("repository_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("head_ref", sa.Text(), nullable=False),
        sa.Column("base_ref", sa.Text(), nullable=False),
        sa.Column("head_sha", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("body", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("state", sa.Text(), server_default=sa.text("'open'"), nullable=False),
        sa.Column("comments", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"),
                  nullable=False, comment="hidden marker -> comment body"),
        sa.Column("statuses", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"),
                  nullable=False, comment="context -> {sha, state, description, target_url, at}"),
        sa.Column("task_id", sa.BigInteger(), nullable=True, comment="the task that opened it"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("number > 0", name="pull_requests_number_check"),
        sa.CheckConstraint("state IN ('open', 'closed', 'merged')", name="pull_requests_state_check"),
        sa.ForeignKeyConstraint(["repository_id"], ["nightshift.repositories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository_id", "number"),
        schema="nightshift",
    )
    op.create_index("pull_requests_open_head_key", "pull_requests", ["repository_id", "head_ref"],
                    unique=True, schema="nightshift", postgresql_where=sa.text("state = 'open'"))


def downgrade() -> None:
    op.drop_table("pull_requests", schema="nightshift")
    op.drop_constraint("repositories_forge_token_ref_check", "repositories", schema="nightshift")
    op.drop_constraint("repositories_forge_check", "repositories", schema="nightshift")
    for column in ("forge_token_ref", "forge_api_url", "forge"):
        op.drop_column("repositories", column, schema="nightshift")
