"""findings: an index on each finding's tenancy scope, for row-level security

Revision ID: 0024
Revises: 0022
Create Date: 2026-11-29 01:50:00

Issue 18. A reader (nightshift_reader) sees the findings whose subject belongs to one of its
organizations: the policy of sql/row_security.sql compares nightshift.subject_scope(subject) (a pull
request's findings belong to its repository) with the reader's subjects. Without an index on that
expression, a reader's `SELECT * FROM nightshift.open_findings` with no organization filter read every
finding of every organization to keep its own (1.1 s at 1,000,000 findings); with it, an index scan of
its own (make bench-report). The expression is subject_scope's body, written out: the index must not
depend on a function that sql/ creates after the migrations, and the planner matches the inlined
function to it. subject never changes, so a rescan's updates of a finding stay HOT (migration 0017);
a new finding writes one more index entry.
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0022"
branch_labels = None
depends_on = None

SCOPE = ("(CASE WHEN subject LIKE 'pr/%' THEN 'repository/' || split_part(subject, '/', 2)"
         " ELSE subject END)")


def upgrade() -> None:
    op.execute(f"CREATE INDEX findings_scope_idx ON nightshift.findings ({SCOPE})")


def downgrade() -> None:
    op.execute("DROP INDEX nightshift.findings_scope_idx")
