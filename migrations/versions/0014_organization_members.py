"""organization members: which database roles may read which organization's rows

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 23:10:00

Row-level security (sql/row_security.sql) lets a member of nightshift_reader see an organization's
rows when it is a member (directly or through a group role) of a role listed here for that
organization. The role is kept by name, as a DBA writes it in GRANT; a name that matches no role
(a role dropped since) grants nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organization_members",
        sa.Column("organization_id", sa.BigInteger(),
                  sa.ForeignKey("nightshift.organizations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("member", sa.Text(), nullable=False, comment="a database role name (a team's group role)"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.PrimaryKeyConstraint("organization_id", "member"),
        schema="nightshift",
        comment="database roles whose members may read an organization's rows (row-level security)",
    )
    op.create_index("organization_members_member_idx", "organization_members", ["member"],
                    schema="nightshift")


def downgrade() -> None:
    op.drop_table("organization_members", schema="nightshift")
