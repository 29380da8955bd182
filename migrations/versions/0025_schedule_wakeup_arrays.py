"""schedule wakeups as arrays: one hint row names many schedules

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-29 02:00:00

Issue 20. enqueue_due() wrote one hint row (and one index entry, at a random place) per schedule it
advanced: a fifth of a 100,000-row call. A hint now names the schedules of one minute of next runs in an
array (schedule_ids), so such a call writes about 1,440 rows a day's worth instead of 100,000, and reads
and deletes as few. The existing hints become one-element arrays; nightshift.rebuild_schedule_wakeups()
regroups them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


COMMENT = "hints for enqueue_due: look at schedule_ids from run_at on (their next_run_at decides)"
OLD_COMMENT = "hints for enqueue_due: look at schedule_id from run_at on (its next_run_at decides)"


def upgrade() -> None:
    # a new table rather than a new column, so that its columns are those a fresh install declares
    op.rename_table("schedule_wakeups", "schedule_wakeups_single", schema="nightshift")
    op.execute("ALTER INDEX nightshift.schedule_wakeups_due_idx RENAME TO schedule_wakeups_single_due_idx")
    op.create_table(
        "schedule_wakeups",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("schedule_ids", ARRAY(sa.BigInteger()), nullable=False),
        schema="nightshift",
        comment=COMMENT,
    )
    # the existing hints as they were, one schedule each (rebuild_schedule_wakeups() groups them)
    op.execute("INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_ids)"
               " SELECT kind, run_at, ARRAY[schedule_id] FROM nightshift.schedule_wakeups_single")
    op.drop_table("schedule_wakeups_single", schema="nightshift")
    op.create_index("schedule_wakeups_due_idx", "schedule_wakeups", ["kind", "run_at"], schema="nightshift")


def downgrade() -> None:
    op.rename_table("schedule_wakeups", "schedule_wakeups_arrays", schema="nightshift")
    op.execute("ALTER INDEX nightshift.schedule_wakeups_due_idx RENAME TO schedule_wakeups_arrays_due_idx")
    op.create_table(
        "schedule_wakeups",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("schedule_id", sa.BigInteger(), nullable=False),
        schema="nightshift",
        comment=OLD_COMMENT,
    )
    op.execute("INSERT INTO nightshift.schedule_wakeups (kind, run_at, schedule_id)"
               " SELECT w.kind, w.run_at, m.id"
               "   FROM nightshift.schedule_wakeups_arrays AS w, unnest(w.schedule_ids) AS m (id)")
    op.drop_table("schedule_wakeups_arrays", schema="nightshift")
    op.create_index("schedule_wakeups_due_idx", "schedule_wakeups", ["kind", "run_at"], schema="nightshift")
