"""Issue 15: FOCUS billing exports into cost_line_items — the real corpus, read in place, to the cent."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from dispatcher.cost.ingest import CostIngestError, ensure_source, ingest_source
from tests.support import cost_support
from tests.support.cost_support import (
    SAMPLE_10,
    SAMPLE_12,
    add_organization,
    corpus_file,
    count,
    facts,
    total,
)

# moto_server on loopback, and boto3 of this process pointed at it
moto_endpoint = cost_support.moto_endpoint
aws_env = cost_support.aws_env


def ingest(conn: psycopg.Connection, uri: str | Path, version: str | None = None) -> list:
    source = ensure_source(conn, "acme", str(uri), version)
    return ingest_source(conn, source)


@pytest.fixture
def org(conn: psycopg.Connection) -> int:
    return add_organization(conn)


def test_official_focus_1_0_sample_loads_to_the_facts(conn: psycopg.Connection, org: int) -> None:
    path = corpus_file(SAMPLE_10)
    expected = facts(SAMPLE_10)
    [result] = ingest(conn, path)
    # the Id column and the word NULL take the staging path
    assert (result.status, result.rows, result.focus_version) == ("loaded", 1000, "1.0")
    assert result.method == "staged"
    assert total(conn, "billed_cost") == Decimal(expected["total_BilledCost"])
    assert total(conn) == Decimal(expected["total_EffectiveCost"])
    for provider, figures in expected["by_provider"].items():
        by_provider = total(conn, where="provider_name = %s", params=(provider,))
        assert by_provider == Decimal(figures["EffectiveCost"])
    by_category = dict(conn.execute("SELECT charge_category, sum(effective_cost)"
                                    " FROM nightshift.cost_line_items GROUP BY 1").fetchall())
    assert by_category == {k: Decimal(v) for k, v in expected["EffectiveCost_by_ChargeCategory"].items()}
    by_week = dict(conn.execute(
        "SELECT to_char(charge_period_start AT TIME ZONE 'UTC', 'IYYY-\"W\"IW'), sum(effective_cost)"
        " FROM nightshift.cost_line_items GROUP BY 1").fetchall())
    weeks = expected["EffectiveCost_by_ISO_week_of_ChargePeriodStart"]
    assert by_week == {k: Decimal(v) for k, v in weeks.items()}
    row = conn.execute("SELECT count(DISTINCT resource_id), count(DISTINCT service_name),"
                       " min(charge_period_start), max(charge_period_end),"
                       " count(*) FILTER (WHERE extra ? 'Id'), count(*) FILTER (WHERE resource_id = 'NULL')"
                       " FROM nightshift.cost_line_items").fetchone()
    assert row is not None
    assert row[:2] == (expected["distinct_ResourceId"], expected["distinct_ServiceName"])
    assert row[2].isoformat() == "2024-09-01T00:00:00+00:00"  # zone-less text read as UTC
    assert row[3].isoformat() == "2024-10-01T00:00:00+00:00"
    assert row[4:] == (1000, 0)  # the non-standard Id column is kept; the word NULL is NULL
    # September 2024 has its own partition, created on demand
    assert conn.execute("SELECT count(*) FROM nightshift.cost_line_items_2024_09").fetchone() == (1000,)


def test_focus_1_2_export_loads_to_the_facts(conn: psycopg.Connection, org: int) -> None:
    path = corpus_file(SAMPLE_12)
    expected = facts(SAMPLE_12)
    [result] = ingest(conn, path)
    assert (result.rows, result.focus_version, result.method) == (1000, "1.2", "copied")
    assert total(conn, "billed_cost") == Decimal(expected["total_BilledCost"])
    assert total(conn) == Decimal(expected["total_EffectiveCost"])
    assert total(conn, where="commitment_discount_status = 'Unused'") == Decimal(
        expected["unused_commitment_EffectiveCost"])
    statuses = dict(conn.execute("SELECT coalesce(commitment_discount_status, 'None'), count(*)"
                                 " FROM nightshift.cost_line_items GROUP BY 1").fetchall())
    assert statuses == expected["CommitmentDiscountStatus_counts"]
    top = conn.execute("SELECT service_name, sum(effective_cost) FROM nightshift.cost_line_items"
                       " GROUP BY 1 ORDER BY 2 DESC LIMIT 5").fetchall()
    expected_top = expected["top5_ServiceName_by_EffectiveCost"]
    assert [[s, v] for s, v in top] == [[s, Decimal(v)] for s, v in expected_top]
    # JSON columns are JSON; amounts are numeric, not floating point
    assert conn.execute("SELECT count(*) FROM nightshift.cost_line_items WHERE tags ? 'Environment'"
                        ).fetchone() == (1000,)
    assert conn.execute("SELECT data_type FROM information_schema.columns"
                        " WHERE table_name = 'cost_line_items'"
                        " AND column_name = 'effective_cost'").fetchone() == ("numeric",)


def test_the_same_file_twice_changes_nothing(conn: psycopg.Connection, org: int) -> None:
    path = corpus_file(SAMPLE_12)
    ingest(conn, path)
    before = conn.execute("SELECT count(*), sum(effective_cost), max(ingest_id)"
                          " FROM nightshift.cost_line_items").fetchone()
    [again] = ingest(conn, path)
    assert again.status == "unchanged"
    assert conn.execute("SELECT count(*), sum(effective_cost), max(ingest_id)"
                        " FROM nightshift.cost_line_items").fetchone() == before
    assert conn.execute("SELECT count(*) FROM nightshift.cost_ingests").fetchone() == (1,)


def _restate(source: Path, target: Path) -> Decimal:
    """A restated export: the same billing period, every EC2 usage amount doubled; returns the new total."""
    import csv

    with source.open(newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    eff, svc = header.index("EffectiveCost"), header.index("ServiceName")
    new_total = Decimal(0)
    for row in rows[1:]:
        if row[svc] == "AmazonEC2" and row[eff]:
            row[eff] = str(Decimal(row[eff]) * 2)
        new_total += Decimal(row[eff] or 0)
    with target.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows[:-10])  # the restatement also dropped ten rows
    return new_total - sum((Decimal(r[eff] or 0) for r in rows[-10:]), Decimal(0))


def test_a_restated_file_replaces_its_billing_period(conn: psycopg.Connection, org: int,
                                                      tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_bytes(corpus_file(SAMPLE_12).read_bytes())
    ingest(conn, tmp_path)
    restated_total = _restate(corpus_file(SAMPLE_12), export)
    [result] = ingest(conn, tmp_path)
    assert (result.status, result.rows) == ("loaded", 990)
    assert count(conn) == 990
    assert total(conn) == restated_total != Decimal(facts(SAMPLE_12)["total_EffectiveCost"])
    replaced = conn.execute("SELECT count(*) FROM nightshift.cost_ingests WHERE replaced_by IS NOT NULL"
                            ).fetchone()
    assert replaced == (1,)


def test_gzip_and_parquet_load_the_same_totals(conn: psycopg.Connection, org: int, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    source = corpus_file(SAMPLE_12)
    expected = Decimal(facts(SAMPLE_12)["total_EffectiveCost"])
    gz_dir, pq_dir = tmp_path / "gz", tmp_path / "parquet"
    gz_dir.mkdir(), pq_dir.mkdir()
    (gz_dir / "export.csv.gz").write_bytes(gzip.compress(source.read_bytes()))
    table = pacsv.read_csv(source, convert_options=pacsv.ConvertOptions(
        column_types={"EffectiveCost": pa.decimal128(38, 18), "BilledCost": pa.decimal128(38, 18),
                      "ChargePeriodStart": pa.timestamp("s", tz="UTC")}))
    pq.write_table(table, pq_dir / "export.parquet")
    ingest(conn, gz_dir)
    assert total(conn) == expected
    conn.execute("DELETE FROM nightshift.cost_line_items")
    [result] = ingest(conn, pq_dir)
    assert (result.rows, result.focus_version) == (1000, "1.2")
    assert total(conn) == expected
    assert total(conn, "billed_cost") == Decimal(facts(SAMPLE_12)["total_BilledCost"])


@pytest.fixture
def loaded(conn: psycopg.Connection, org: int, tmp_path: Path) -> Iterator[Path]:
    """A source with the 1.2 export loaded, whose file the test then spoils."""
    export = tmp_path / "export.csv"
    export.write_bytes(corpus_file(SAMPLE_12).read_bytes())
    ingest(conn, tmp_path)
    yield export


def _refused(conn: psycopg.Connection, folder: Path, *needles: str) -> None:
    before = conn.execute("SELECT count(*), sum(effective_cost) FROM nightshift.cost_line_items").fetchone()
    manifest = conn.execute("SELECT count(*) FROM nightshift.cost_ingests").fetchone()
    with pytest.raises(CostIngestError) as caught:
        ingest(conn, folder)
    message = str(caught.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message
    # nothing half-loaded: the previous rows and manifest are as they were
    assert conn.execute("SELECT count(*), sum(effective_cost) FROM nightshift.cost_line_items"
                        ).fetchone() == before
    assert conn.execute("SELECT count(*) FROM nightshift.cost_ingests").fetchone() == manifest


def test_a_truncated_gzip_is_refused(conn: psycopg.Connection, loaded: Path) -> None:
    data = gzip.compress(loaded.read_bytes())
    loaded.unlink()
    (loaded.parent / "export.csv.gz").write_bytes(data[: len(data) * 2 // 3])
    _refused(conn, loaded.parent, "export.csv.gz", "truncated or corrupt gzip")


def test_non_utf8_is_refused(conn: psycopg.Connection, loaded: Path) -> None:
    data = loaded.read_bytes()
    cut = data.index(b"prod-platform", len(data) // 2)
    loaded.write_bytes(data[:cut] + b"prod-\xe9quipe" + data[cut + 13:])  # Latin-1, not UTF-8
    _refused(conn, loaded.parent, "not UTF-8")


def test_text_in_a_decimal_column_is_refused_naming_it(conn: psycopg.Connection, loaded: Path) -> None:
    lines = loaded.read_text().splitlines(keepends=True)
    header = lines[0].split(",")
    fields = lines[700].split(",")
    assert fields[header.index("ListCost")] != ""
    fields[header.index("ListCost")] = "twelve"
    lines[700] = ",".join(fields)
    loaded.write_text("".join(lines))
    _refused(conn, loaded.parent, "column ListCost", "'twelve'")


def test_an_unknown_focus_version_is_refused(conn: psycopg.Connection, loaded: Path) -> None:
    text = loaded.read_text()
    loaded.write_text(text.replace("ProviderName,", "ServiceProviderName,", 1))
    _refused(conn, loaded.parent, "unknown FOCUS version", "ServiceProviderName")
    # a changed file of a source declared as FOCUS 2.0
    loaded.write_text("".join(text.splitlines(keepends=True)[:-1]))
    with pytest.raises(CostIngestError, match=r"FOCUS version '2.0' is not supported"):
        ingest(conn, loaded.parent, version="2.0")


def test_missing_required_columns_are_named(conn: psycopg.Connection, loaded: Path) -> None:
    text = loaded.read_text()
    loaded.write_text(text.replace("EffectiveCost,", "Effective_Cost,", 1)
                      .replace("BillingCurrency,", "Currency,", 1))
    _refused(conn, loaded.parent, "required columns", "EffectiveCost", "BillingCurrency")


def test_a_missing_folder_is_one_clear_line(conn: psycopg.Connection, org: int, tmp_path: Path) -> None:
    with pytest.raises(CostIngestError, match="no such file or directory"):
        ingest(conn, tmp_path / "nowhere")
    with pytest.raises(CostIngestError, match="no FOCUS files"):
        ingest(conn, tmp_path)


def test_an_s3_prefix_loads_like_a_folder(conn: psycopg.Connection, org: int, aws_env: str) -> None:
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket="billing")
    body = gzip.compress(corpus_file(SAMPLE_10).read_bytes())
    client.put_object(Bucket="billing", Key="focus/acme/2024-09/part-0.csv.gz", Body=body)
    client.put_object(Bucket="billing", Key="focus/acme/manifest.json", Body=b"{}")
    [result] = ingest(conn, "s3://billing/focus/acme/")
    assert (result.key, result.rows) == ("s3://billing/focus/acme/2024-09/part-0.csv.gz", 1000)
    assert total(conn) == Decimal(facts(SAMPLE_10)["total_EffectiveCost"])
    assert total(conn, "billed_cost") == Decimal(facts(SAMPLE_10)["total_BilledCost"])
    [again] = ingest(conn, "s3://billing/focus/acme/")
    assert again.status == "unchanged"
    with pytest.raises(CostIngestError, match=r"s3://billing/nothing/.*no FOCUS files"):
        ingest(conn, "s3://billing/nothing/")
    with pytest.raises(CostIngestError, match=r"s3://no-such-bucket/x: S3 said NoSuchBucket"):
        ingest(conn, "s3://no-such-bucket/x")


def test_loaded_partitions_get_statistics(conn: psycopg.Connection, org: int) -> None:
    [result] = ingest(conn, corpus_file(SAMPLE_10))
    assert result.months == ("cost_line_items_2024_09",)
    analysed = conn.execute("SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables"
                            " WHERE relname = 'cost_line_items_2024_09'").fetchone()
    assert analysed == (True,)


def test_rows_beyond_the_sampled_months_fall_back_to_the_staging_path(conn: psycopg.Connection, org: int,
                                                                      tmp_path: Path) -> None:
    from tests.support.cost_support import FIXTURE_COLUMNS, line, write_export

    focus_only = tuple(c for c in FIXTURE_COLUMNS if not c.startswith("x_"))  # else `extra`: staged
    rows = [line(f"2026-02-{1 + i % 28:02d}", "0.01", resource=f"r{i}") for i in range(4000)]  # > 1 MiB
    rows += [line("2026-04-03", "5.00", resource="late")]
    write_export(tmp_path / "export.csv", rows, focus_only)
    [result] = ingest(conn, tmp_path)
    assert (result.rows, result.method) == (4001, "staged")
    assert result.months == ("cost_line_items_2026_02", "cost_line_items_2026_03", "cost_line_items_2026_04")
    assert total(conn) == Decimal("45.00")
    # a file whose months are all in its first rows is copied straight in
    write_export(tmp_path / "export.csv", rows[:100], focus_only)
    [result] = ingest(conn, tmp_path)
    assert (result.rows, result.method) == (100, "copied")
    # February restated by the new file; April, a billing period it does not cover, stays
    assert total(conn) == Decimal("6.00")


def test_deleting_a_source_or_its_organization_deletes_its_line_items(conn: psycopg.Connection,
                                                                       org: int) -> None:
    ingest(conn, corpus_file(SAMPLE_12))
    other = add_organization(conn, "other")
    source = ensure_source(conn, "other", str(corpus_file(SAMPLE_10)))
    ingest_source(conn, source)
    assert count(conn) == 2000
    conn.execute("DELETE FROM nightshift.organizations WHERE id = %s", (org,))
    assert count(conn) == 1000
    assert total(conn) == Decimal(facts(SAMPLE_10)["total_EffectiveCost"])
    conn.execute("DELETE FROM nightshift.cost_sources WHERE organization_id = %s", (other,))
    assert count(conn) == 0


def test_the_loader_role_copies_under_row_level_security(conn: psycopg.Connection, org: int, db_url: str,
                                                         tmp_path: Path) -> None:
    """As the agent loads (nightshift_cost_loader, cost_line_items under FORCE row-level security): a
    file of FOCUS columns is copied straight in, a restatement replaces it, and a bad file leaves
    nothing behind."""
    from dispatcher.cost.loader import CostLoader
    from tests.support.cost_support import FIXTURE_COLUMNS, line, write_export

    focus_only = tuple(c for c in FIXTURE_COLUMNS if not c.startswith("x_"))
    source = ensure_source(conn, "acme", str(tmp_path))
    export = tmp_path / "export.csv"
    with CostLoader(db_url).connect() as loader:
        active = loader.execute("SELECT row_security_active('nightshift.cost_line_items')").fetchone()
        assert active == (True,)
        write_export(export, [line(f"2026-03-{d:02d}", "1.50") for d in range(1, 11)], focus_only)
        [result] = ingest_source(loader, source)
        assert (result.rows, result.method, result.billing_periods) == (10, "copied",
                                                                        ("2026-03-01T00:00:00+00:00",))
        assert result.months == ("cost_line_items_2026_03",)
        assert total(conn) == Decimal("15.00")
        write_export(export, [line(f"2026-03-{d:02d}", "2.00") for d in range(1, 6)], focus_only)
        [result] = ingest_source(loader, source)
        assert (result.rows, result.method) == (5, "copied")
        assert total(conn) == Decimal("10.00")  # March restated, not added
        assert conn.execute("SELECT sum(effective_cost) FROM nightshift.cost_line_summary").fetchone() == (
            Decimal("10.00"),)
        unbilled = [line("2026-03-07", "9.00"), {**line("2026-03-08", "9.00"), "BillingPeriodStart": ""}]
        write_export(export, unbilled, focus_only)
        with pytest.raises(CostIngestError, match="without BillingPeriodStart"):
            ingest_source(loader, source)
    assert total(conn) == Decimal("10.00")  # nothing of the bad file
    assert conn.execute("SELECT count(*) FROM nightshift.cost_ingests").fetchone() == (2,)
