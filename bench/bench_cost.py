"""Benchmark: FOCUS ingest and the cost analysis of an organization, at 5,000,000 line items.

The FOCUS 1.2 export of ../shared/corpora/focus/ (1000 rows, commitments, purchases, tax) is replicated
with DuckDB into --rows rows, one CSV per billing period (the way exports arrive): copy k is shifted by
k % 52 weeks and its resource and commitment ids get the suffix -k, so the data spans a year of weekly
series. The files are cached under .nightshift/bench-cost/. In a database of its own (embedded cluster
or $NIGHTSHIFT_DATABASE_URL):

  bare COPY      the files into an UNLOGGED table of the same columns, typed, nothing else: Postgres's
                 limit for these files (same client path: psycopg streaming 1 MiB chunks);
  ingest         dispatcher.cost.ingest.ingest_source on the folder, as the cost-analysis agent runs it:
                 through a CostLoader session (role nightshift_cost_loader), one transaction per
                 delivery, COPY straight into the logged, month-partitioned cost_line_items (through
                 its partition cost_line_items_months, where row-level security does not refuse COPY)
                 with its index (the path of files with FOCUS columns only), the manifest, the replaced
                 periods,
                 the summary (cost_summarize) in each delivery's transaction, then the ANALYZE it
                 ends with (printed apart too);
                 goal: rows/s at least 0.6 of the bare COPY's;
  analysis       dispatcher.cost.analysis.analyse of the organization over all rows (unused commitments,
                 idle resources, commitment utilization and coverage, weekly robust-z anomalies, top
                 movers; rightsizing needs CloudWatch and is left out) through the same loader;
  DuckDB         the same questions in DuckDB over the same file: loaded into a table once (timed
                 apart), then the questions; goal: our analysis at most 3x DuckDB's.

Run with `make bench-cost` (--rows 500000 for a quick look; --explain prints EXPLAIN ANALYZE of each
analysis statement over 0.1 s).
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import psycopg
from psycopg import sql

from dispatcher.config import URL_ENV, resolve_url
from dispatcher.cost import ingest
from dispatcher.cost.analysis import analyse
from dispatcher.cost.focus import map_header
from dispatcher.cost.ingest import CHUNK, ensure_source, local_files, read_header
from dispatcher.cost.loader import CostLoader
from dispatcher.db import connect, drop_database, recreate_database
from dispatcher.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT.parent / "shared" / "corpora" / "focus" / "focus-1.2-aws-1000.synthetic.csv"
DATABASE = "nightshift_bench_cost"
TIMESTAMPS = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")
SUFFIXED = ("ResourceId", "CommitmentDiscountId")


def replicate(rows: int, out: Path) -> None:
    """The sample, rows // 1000 times, shifted by weeks and with distinct ids, written by DuckDB as one
    file per billing period (out/period=YYYY-MM/data_0.csv), the way exports arrive."""
    import duckdb

    copies = max(1, rows // 1000)
    con = duckdb.connect()
    # stream the rows out instead of building the whole cross join in memory first
    con.execute("SET threads = 2")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET memory_limit = '2GB'")
    header = SAMPLE.read_text().split("\n", 1)[0].split(",")
    cols = []
    for name in header:
        if name in TIMESTAMPS:
            cols.append(f"strftime(CAST({name} AS TIMESTAMP) + to_weeks(CAST(k % 52 AS INTEGER)),"
                        f" '%Y-%m-%dT%H:%M:%SZ') AS {name}")
        elif name in SUFFIXED:
            cols.append(f"CASE WHEN {name} IS NULL THEN NULL ELSE {name} || '-' || k END AS {name}")
        else:
            cols.append(name)
    period = ("strftime(CAST(BillingPeriodStart AS TIMESTAMP) + to_weeks(CAST(k % 52 AS INTEGER)),"
              " '%Y-%m')")
    con.execute(f"""
        COPY (SELECT {', '.join(cols)}, {period} AS period
                FROM read_csv('{SAMPLE}', all_varchar = true, header = true) AS s, range({copies}) AS r(k))
          TO '{out}' (FORMAT csv, HEADER true, PARTITION_BY (period))
    """)


def bare_copy(url: str, files: list[Path]) -> float:
    header = map_header(read_header(files[0], "csv"))
    columns = [sql.SQL("{} {}").format(sql.Identifier(f"c{i}"),
                                       sql.SQL(c.type if c is not None else "text"))
               for i, c in enumerate(header.targets)]
    with connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_bare")
        conn.execute(sql.SQL("CREATE UNLOGGED TABLE bench_bare ({})").format(sql.SQL(", ").join(columns)))
        conn.execute("SET timezone = 'UTC'")
        started = time.perf_counter()
        for path in files:
            with conn.cursor() as cur, \
                    cur.copy("COPY bench_bare FROM STDIN (FORMAT csv, HEADER true)") as copy, \
                    path.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    copy.write(chunk)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_bare")
    return elapsed


class TimedCursor(psycopg.Cursor[Any]):
    """Records (seconds, statement, parameters) of every execute: where the analysis's time goes."""

    log: ClassVar[list[tuple[float, str, Any]]] = []

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return super().execute(query, params, **kwargs)
        finally:
            text = query.as_string(self) if isinstance(query, sql.Composable) else str(query)
            TimedCursor.log.append((time.perf_counter() - started, text, params))


def statement_times(conn: psycopg.Connection, explain: bool) -> None:
    """Each analysis statement of over 0.1 s with its time (the rest is Python: findings, JSON), and
    with --explain its plan as EXPLAIN ANALYZE shows it."""
    for seconds, text, params in sorted(TimedCursor.log, key=lambda entry: -entry[0]):
        if seconds < 0.1:
            continue
        print(f"  {seconds:6.2f} s  {' '.join(text.split())[:100]}")
        if explain and text.lstrip().upper().startswith("SELECT"):
            with conn.cursor() as cur:
                plan = cur.execute("EXPLAIN (ANALYZE, COSTS OFF) " + text, params).fetchall()
            print("\n".join("           | " + row[0] for row in plan))


def our_ingest(url: str, folder: Path) -> tuple[float, float, int, int, set[str]]:
    """ingest_source on the folder through the agent's loader; (seconds, of which the ANALYZE it ends
    with, rows, organization, methods)."""
    with connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO nightshift.organizations (name, cost_optimization_enabled)"
                     " VALUES ('bench', true)")
        source = ensure_source(conn, "bench", str(folder))
    finishing: list[float] = []
    real_analyze = ingest.analyze

    def timed_analyze(conn: Any, partitions: set[str]) -> None:
        started = time.perf_counter()
        real_analyze(conn, partitions)
        finishing.append(started)

    ingest.analyze = timed_analyze  # to time the after-load work apart; it runs exactly as in the agent
    try:
        with CostLoader(url).connect() as conn:
            started = time.perf_counter()
            results = ingest.ingest_source(conn, source)
            elapsed = time.perf_counter() - started
    finally:
        ingest.analyze = real_analyze
    after_load = started + elapsed - finishing[0] if finishing else 0.0
    return (elapsed, after_load, sum(r.rows for r in results), source.organization_id,
            {r.method for r in results})


DUCKDB_QUESTIONS = {
    "unused commitments": """
        SELECT CommitmentDiscountId, BillingCurrency, date_trunc('week', ChargePeriodStart) AS week,
               sum(EffectiveCost) FILTER (WHERE CommitmentDiscountStatus = 'Unused') AS unused,
               sum(EffectiveCost) FILTER (WHERE CommitmentDiscountStatus = 'Used') AS used
          FROM t WHERE CommitmentDiscountId IS NOT NULL AND CommitmentDiscountStatus IN ('Used', 'Unused')
         GROUP BY ALL HAVING count(*) FILTER (WHERE CommitmentDiscountStatus = 'Unused') > 0""",
    "idle resources": """
        SELECT ResourceId, BillingCurrency, sum(EffectiveCost), count(*)
          FROM t WHERE ResourceId IS NOT NULL AND ChargeCategory = 'Usage'
           AND CommitmentDiscountStatus IS DISTINCT FROM 'Unused'
           AND ResourceId IS DISTINCT FROM CommitmentDiscountId
         GROUP BY ALL HAVING sum(EffectiveCost) > 0 AND coalesce(max(abs(ConsumedQuantity)), 0) = 0""",
    "coverage": """
        WITH cs AS (SELECT DISTINCT ServiceName FROM t WHERE CommitmentDiscountId IS NOT NULL),
        w AS (
          SELECT ServiceName, SubAccountId, BillingCurrency, date_trunc('week', ChargePeriodStart) AS week,
                 coalesce(sum(EffectiveCost) FILTER (WHERE CommitmentDiscountStatus = 'Used'), 0) AS used,
                 coalesce(sum(EffectiveCost) FILTER (WHERE CommitmentDiscountStatus = 'Unused'), 0) AS unused,
                 coalesce(sum(EffectiveCost) FILTER (WHERE ChargeCategory = 'Usage'
                     AND CommitmentDiscountStatus IS DISTINCT FROM 'Unused'), 0) AS eligible
            FROM t JOIN cs USING (ServiceName) GROUP BY ALL)
        SELECT *, used / nullif(used + unused, 0) AS utilization, used / nullif(eligible, 0) AS coverage,
               utilization - lag(utilization) OVER (PARTITION BY ServiceName, SubAccountId, BillingCurrency
                                                    ORDER BY week) AS change
          FROM w""",
    "anomalies": """
        WITH c AS (SELECT ServiceName, SubAccountId, BillingCurrency,
                          date_trunc('week', ChargePeriodStart) AS week, sum(EffectiveCost) AS cost
                     FROM t GROUP BY ALL),
        m AS (SELECT ServiceName, SubAccountId, BillingCurrency, median(cost) AS med FROM c GROUP BY ALL),
        d AS (SELECT c.*, m.med, abs(c.cost - m.med) AS dev FROM c JOIN m USING (ServiceName, SubAccountId,
                                                                                 BillingCurrency)),
        s AS (SELECT ServiceName, SubAccountId, BillingCurrency, median(dev) AS mad FROM d GROUP BY ALL)
        SELECT d.*, 0.6745 * (d.cost - d.med) / nullif(s.mad, 0) AS z
          FROM d JOIN s USING (ServiceName, SubAccountId, BillingCurrency)""",
    "totals and span": """
        SELECT BillingCurrency, count(*), sum(BilledCost), sum(EffectiveCost), min(ChargePeriodStart),
               max(ChargePeriodEnd)
          FROM t GROUP BY ALL""",
    "top movers": """
        WITH last AS (SELECT date_trunc('week', max(ChargePeriodStart)) AS wk FROM t),
        b AS (SELECT ServiceName, SubAccountId, BillingCurrency,
                     sum(EffectiveCost) FILTER (WHERE ChargePeriodStart >= wk) AS cost,
                     sum(EffectiveCost) FILTER (WHERE ChargePeriodStart < wk) AS previous
                FROM t, last WHERE ChargePeriodStart >= wk - INTERVAL 7 DAY GROUP BY ALL)
        SELECT *, row_number() OVER (PARTITION BY BillingCurrency
                                     ORDER BY abs(coalesce(cost, 0) - coalesce(previous, 0)) DESC) AS rank
          FROM b QUALIFY rank <= 5""",
}


def duckdb_run(folder: Path) -> tuple[float | None, float]:
    """(load seconds, or None when the DuckDB file of an earlier run was reused; questions seconds).
    The table is kept in a DuckDB file next to the CSV files, like the CSV files themselves: its load
    is not what is compared, and a second run need not pay it again."""
    import duckdb

    database = folder.with_suffix(".duckdb")
    fresh = not database.exists()
    con = duckdb.connect(str(database) + (".part" if fresh else ""))
    con.execute("SET threads = 2")
    con.execute("SET memory_limit = '4GB'")
    loaded = None
    if fresh:
        started = time.perf_counter()
        # amounts as DECIMAL(38, 18): exact, like Postgres's numeric
        amounts = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ConsumedQuantity",
                   "PricingQuantity")
        types = {name: "DECIMAL(38,18)" for name in amounts}
        types.update({name: "TIMESTAMPTZ" for name in TIMESTAMPS})
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{folder}/*/*.csv', header = true,"
                    f" types = {types!r})")
        con.execute("CHECKPOINT")
        loaded = time.perf_counter() - started
        con.close()
        Path(str(database) + ".part").rename(database)
        con = duckdb.connect(str(database))
        con.execute("SET threads = 2")
        con.execute("SET memory_limit = '4GB'")
    started = time.perf_counter()
    for question in DUCKDB_QUESTIONS.values():
        con.execute(question).fetchall()
    return loaded, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--explain", action="store_true",
                        help="print EXPLAIN ANALYZE of each analysis statement over 0.1 s")
    args = parser.parse_args()
    if not SAMPLE.is_file():
        raise SystemExit(f"bench-cost needs the FOCUS corpus: {SAMPLE} is absent")
    work = ROOT / ".nightshift" / "bench-cost"
    work.mkdir(parents=True, exist_ok=True)
    folder = work / f"focus-1.2-x{args.rows}"
    if not folder.is_dir():
        started = time.perf_counter()
        replicate(args.rows, folder)
        size = sum(p.stat().st_size for p in folder.rglob("*.csv")) / 1e9
        print(f"generated {folder.name}/ ({size:.2f} GB) in {time.perf_counter() - started:.0f} s")
    files = local_files(str(folder))
    server_url = resolve_url(os.environ.get(URL_ENV))
    url = recreate_database(server_url, DATABASE)
    try:
        migrate(url)
        bare = bare_copy(url, files)
        ingest_seconds, after_load, rows, org, methods = our_ingest(url, folder)
        with CostLoader(url).connect() as conn:
            conn.cursor_factory = TimedCursor
            started = time.perf_counter()
            result = analyse(conn, org, lookback_days=800, now=datetime.now(UTC),
                             actions=["identify-unused", "ri-coverage", "anomalies"])
            analysis = time.perf_counter() - started
            conn.cursor_factory = psycopg.Cursor
            print(f"analysis (Postgres)  {analysis:8.1f} s, of which SQL"
                  f" {sum(entry[0] for entry in TimedCursor.log):.1f} s:")
            statement_times(conn, args.explain)
        duck_load, duck = duckdb_run(folder)
    finally:
        if not args.keep:
            drop_database(server_url, DATABASE)
    print(f"rows                 {rows:,} in {len(files)} files (one per billing period)")
    print(f"bare COPY (unlogged) {bare:8.1f} s  {rows / bare:10,.0f} rows/s")
    print(f"ingest               {ingest_seconds:8.1f} s  {rows / ingest_seconds:10,.0f} rows/s   ratio"
          f" {bare / ingest_seconds:.2f} (goal >= 0.6; {', '.join(sorted(methods))})")
    print(f"  of which ANALYZE      {after_load:5.1f} s")
    print(f"analysis (Postgres)  {analysis:8.1f} s  {len(result.findings)} recommendations")
    print(f"DuckDB load          {duck_load:8.1f} s" if duck_load is not None
          else "DuckDB load          (its file from an earlier run)")
    print(f"analysis (DuckDB)    {duck:8.1f} s   Postgres/DuckDB {analysis / duck:.1f}x (goal <= 3x)")


if __name__ == "__main__":
    main()
