"""reporting indexes: the views of sql/views/ answer for one organization from indexes

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 23:00:00

scans_subject_idx (subject, finished_at) now also carries kind, status and started_at (INCLUDE): the
status timeline (nightshift.scan_history) and every per-target lookup of nightshift.target_status
(latest scan, latest success, latest clean, error streak) read the index alone instead of one heap
page per scan (a target's scans are spread over the whole table, interleaved with everyone else's).
The index gets wider, not more numerous: recording a result still writes the same index entries.

tasks_failed_idx (finished_at) WHERE status IN ('failed', 'dead'): queue_health's "failed and dead in
the last day" without reading the day's done tasks. Partial: a task completing normally adds no entry.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX nightshift.scans_subject_idx")
    op.execute("CREATE INDEX scans_subject_idx ON nightshift.scans (subject, finished_at)"
               " INCLUDE (kind, status, started_at)")
    op.execute("CREATE INDEX tasks_failed_idx ON nightshift.tasks (finished_at)"
               " WHERE status IN ('failed', 'dead')")


def downgrade() -> None:
    op.execute("DROP INDEX nightshift.tasks_failed_idx")
    op.execute("DROP INDEX nightshift.scans_subject_idx")
    op.execute("CREATE INDEX scans_subject_idx ON nightshift.scans (subject, finished_at)")
