"""cost: the month partitions of cost_line_items under one partition the loader COPYs into

Revision ID: 0021
Revises: 0018
Create Date: 2026-11-29 01:40:00

Issue 15. cost_line_items is under FORCE row-level security (sql/row_security.sql), and Postgres
refuses COPY FROM into a table where row-level security applies to the session: the cost loader had
to stage every file in a temporary table and INSERT it again. Row-level security is checked on the
table a statement names, so the month partitions now hang under one partition covering all time,
nightshift.cost_line_items_months (partitioned by month in turn), which has no row-level security
and which only the loader may INSERT into (sql/grants/cost_loader.sql): the loader COPYs a file
there and Postgres routes its rows to their months; readers have no right on it and keep going
through cost_line_items and its policies.

Existing month partitions are moved under it (detached, then attached: one validating scan each).
The index that finds a file's rows becomes a BRIN index: the rows of a file are written together, and
the btree wrote a WAL record per row loaded.
"""

from __future__ import annotations

from alembic import op

from dispatcher.models import COST_LINE_ITEMS_MONTHS_DDL

revision = "0021"
down_revision = "0018"
branch_labels = None
depends_on = None

_MOVE = """
DO $$
DECLARE
    v_part record;
    v_parts text[] := '{}';
    v_bounds text[] := '{}';
BEGIN
    FOR v_part IN
        SELECT c.relname, pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound
          FROM pg_catalog.pg_inherits AS i
          JOIN pg_catalog.pg_class AS c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'nightshift.cost_line_items'::regclass
    LOOP
        EXECUTE format('ALTER TABLE nightshift.cost_line_items DETACH PARTITION nightshift.%I',
                       v_part.relname);
        v_parts := v_parts || v_part.relname::text;
        v_bounds := v_bounds || v_part.bound;
    END LOOP;
    -- the DDL of dispatcher.models (COST_LINE_ITEMS_MONTHS_DDL)
    @CREATE@;
    FOR i IN 1 .. coalesce(array_length(v_parts, 1), 0) LOOP
        EXECUTE format('ALTER TABLE nightshift.cost_line_items_months ATTACH PARTITION nightshift.%I %s',
                       v_parts[i], v_bounds[i]);
    END LOOP;
END
$$
"""

_BACK = """
DO $$
DECLARE
    v_part record;
BEGIN
    ALTER TABLE nightshift.cost_line_items DETACH PARTITION nightshift.cost_line_items_months;
    FOR v_part IN
        SELECT c.relname, pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound
          FROM pg_catalog.pg_inherits AS i
          JOIN pg_catalog.pg_class AS c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'nightshift.cost_line_items_months'::regclass
    LOOP
        EXECUTE format('ALTER TABLE nightshift.cost_line_items_months DETACH PARTITION nightshift.%I',
                       v_part.relname);
        EXECUTE format('ALTER TABLE nightshift.cost_line_items ATTACH PARTITION nightshift.%I %s',
                       v_part.relname, v_part.bound);
    END LOOP;
    DROP TABLE nightshift.cost_line_items_months;
END
$$
"""


def upgrade() -> None:
    op.execute(_MOVE.replace("@CREATE@", COST_LINE_ITEMS_MONTHS_DDL))
    # a file's rows are written together: a BRIN index finds them, where a btree wrote a WAL record per
    # row loaded (dispatcher/models.py)
    op.drop_index("cost_line_items_source_ingest_idx", table_name="cost_line_items", schema="nightshift")
    op.create_index("cost_line_items_source_ingest_idx", "cost_line_items",
                    ["source_id", "ingest_id", "billing_period_start"], schema="nightshift",
                    postgresql_using="brin")


def downgrade() -> None:
    op.drop_index("cost_line_items_source_ingest_idx", table_name="cost_line_items", schema="nightshift")
    op.create_index("cost_line_items_source_ingest_idx", "cost_line_items",
                    ["source_id", "ingest_id", "billing_period_start"], schema="nightshift")
    op.execute(_BACK)
