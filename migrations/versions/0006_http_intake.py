"""HTTP intake: API tokens, and what matches a forge's webhook to a repository

Revision ID: 0006
Revises: 0010
Create Date: 2026-11-28 20:00:00

`nightshift serve` (dispatcher/intake/) needs
- api_tokens: bearer tokens of external schedulers, stored hashed (only a public prefix in clear);
- repositories.full_name: the forge's owner/name ("Codertocat/Hello-World"), what a webhook names;
- repositories.webhook_secret_ref: a secret reference (env:NAME, file:/path) to this repository's
  webhook secret, when it has its own rather than the server's global one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("repositories", sa.Column(
        "full_name", sa.Text(), nullable=True,
        comment="owner/name on the forge, as webhooks name it (e.g. Codertocat/Hello-World)"),
        schema="nightshift")
    op.add_column("repositories", sa.Column(
        "webhook_secret_ref", sa.Text(), nullable=True,
        comment="secret reference (env:NAME or file:/path) of its own webhook secret; NULL: the global one"),
        schema="nightshift")
    op.create_index("repositories_full_name_key", "repositories", [sa.text("lower(full_name)")],
                    unique=True, schema="nightshift")
    op.create_check_constraint(
        "repositories_webhook_secret_ref_check", "repositories",
        "webhook_secret_ref ~ '^(env|file):.'", schema="nightshift")
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False,
                  comment="the public part of the token, which finds its row"),
        sa.Column("token_hash", sa.Text(), nullable=False, comment="sha256 of the whole token, hex"),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("token_hash ~ '^[0-9a-f]{64}$'", name="api_tokens_token_hash_check"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("prefix"),
        schema="nightshift",
    )


def downgrade() -> None:
    op.drop_table("api_tokens", schema="nightshift")
    op.drop_constraint("repositories_webhook_secret_ref_check", "repositories", schema="nightshift")
    op.drop_index("repositories_full_name_key", table_name="repositories", schema="nightshift")
    op.drop_column("repositories", "webhook_secret_ref", schema="nightshift")
    op.drop_column("repositories", "full_name", schema="nightshift")
