"""findings: a rescan rewrites its findings in place (HOT updates), without a check per row

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-28 23:00:00

Recording a scan touches every finding it sees (last_seen, last_scan_id, occurrences) and every one it
no longer sees (status). With 100,000 findings that was seconds per scan (bench/bench_compliance.py):

- fillfactor 50: pages keep room, so those updates are HOT (the new row version on the same page, no
  index entry written);
- no index holds status any more (findings_subject_status_idx dropped): a status change (OPEN ->
  RESOLVED, reopen, suppress) is then HOT as well. Per-subject reads use the (subject, fingerprint)
  key; a subject's findings are few compared with the table;
- first_scan_id and last_scan_id are no longer foreign keys: each insert ran two referential checks
  and each rescan one (a query per row, about half the cost of the insert). Scans are deleted only by
  nightshift.run_maintenance(), which clears the references to the scans it deletes in one statement
  (what ON DELETE SET NULL did with one query per deleted scan).
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("findings_first_scan_id_fkey", "findings", schema="nightshift", type_="foreignkey")
    op.drop_constraint("findings_last_scan_id_fkey", "findings", schema="nightshift", type_="foreignkey")
    op.drop_index("findings_subject_status_idx", table_name="findings", schema="nightshift")
    op.execute("ALTER TABLE nightshift.findings SET (fillfactor = 50)")


def downgrade() -> None:
    op.execute("ALTER TABLE nightshift.findings RESET (fillfactor)")
    op.create_index("findings_subject_status_idx", "findings", ["subject", "status"], schema="nightshift")
    op.execute("UPDATE nightshift.findings AS f SET first_scan_id = NULL WHERE first_scan_id IS NOT NULL "
               "AND NOT EXISTS (SELECT FROM nightshift.scans AS s WHERE s.id = f.first_scan_id)")
    op.execute("UPDATE nightshift.findings AS f SET last_scan_id = NULL WHERE last_scan_id IS NOT NULL "
               "AND NOT EXISTS (SELECT FROM nightshift.scans AS s WHERE s.id = f.last_scan_id)")
    op.create_foreign_key("findings_first_scan_id_fkey", "findings", "scans", ["first_scan_id"], ["id"],
                          source_schema="nightshift", referent_schema="nightshift", ondelete="SET NULL")
    op.create_foreign_key("findings_last_scan_id_fkey", "findings", "scans", ["last_scan_id"], ["id"],
                          source_schema="nightshift", referent_schema="nightshift", ondelete="SET NULL")
