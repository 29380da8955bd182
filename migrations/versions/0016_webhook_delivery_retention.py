"""webhook_deliveries: pruned by age, and no foreign key to tasks

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-28 23:00:00

- webhook_deliveries_received_idx: maintenance deletes deliveries older than the setting
  'retention.webhook_deliveries' (sql/functions/maintenance_run.sql) oldest first, by received_at.
- webhook_deliveries.task_id loses its foreign key to tasks. Checking it cost a lookup and a row lock
  on the task per delivery, about as much as the rest of recording it (bench/bench_intake.py); the
  column is a note of the task a delivery enqueued (the task's payload names its delivery_id too), and
  tasks and deliveries are pruned on their own schedules, so it may name a task already deleted.
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("webhook_deliveries_task_id_fkey", "webhook_deliveries", schema="nightshift",
                       type_="foreignkey")
    op.create_index("webhook_deliveries_received_idx", "webhook_deliveries", ["received_at"],
                    schema="nightshift")


def downgrade() -> None:
    op.drop_index("webhook_deliveries_received_idx", table_name="webhook_deliveries", schema="nightshift")
    # tasks deleted since the upgrade left ids behind: clear them, as ON DELETE SET NULL would have
    op.execute("UPDATE nightshift.webhook_deliveries AS d SET task_id = NULL"
               " WHERE NOT EXISTS (SELECT FROM nightshift.tasks AS t WHERE t.id = d.task_id)")
    op.create_foreign_key("webhook_deliveries_task_id_fkey", "webhook_deliveries", "tasks",
                          ["task_id"], ["id"], source_schema="nightshift", referent_schema="nightshift",
                          ondelete="SET NULL")
