"""Issue 15: a billing period delivered as several part files (with or without a manifest) is loaded
all or nothing; the parts are split from the real FOCUS 1.2 export, read in place."""

from __future__ import annotations

import csv
import gzip
import io
import json
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from dispatcher.cost.ingest import CostIngestError, ensure_source, ingest_source
from tests.support import cost_support
from tests.support.cost_support import SAMPLE_12, add_organization, corpus_file, count, facts, total

moto_endpoint = cost_support.moto_endpoint
aws_env = cost_support.aws_env


def ingest(conn: psycopg.Connection, uri: str | Path) -> list:
    return ingest_source(conn, ensure_source(conn, "acme", str(uri)))


@pytest.fixture
def org(conn: psycopg.Connection) -> int:
    return add_organization(conn)


def split(parts: int) -> list[bytes]:
    """The 1.2 export as `parts` CSV files, each with the header (the way exporters write parts)."""
    with corpus_file(SAMPLE_12).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    size = -(-len(body) // parts)
    out = []
    for start in range(0, len(body), size):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([header, *body[start:start + size]])
        out.append(buffer.getvalue().encode())
    return out


def state(conn: psycopg.Connection) -> tuple:
    return conn.execute("SELECT count(*), sum(effective_cost), (SELECT count(*) FROM nightshift.cost_ingests)"
                        " FROM nightshift.cost_line_items").fetchone() or ()


def summary_matches_line_items(conn: psycopg.Connection) -> None:
    """cost_line_summary (what the analyses by service read) sums to the line items, group by group."""
    query = ("SELECT service_name, commitment_discount_status, {} FROM nightshift.{}"
             " GROUP BY 1, 2 ORDER BY 1, 2")
    items = conn.execute(query.format("count(*), sum(effective_cost), sum(billed_cost)", "cost_line_items"))
    summary = conn.execute(query.format("sum(line_items), sum(effective_cost), sum(billed_cost)",
                                        "cost_line_summary"))
    assert summary.fetchall() == items.fetchall()


def test_parts_in_one_folder_are_one_period(conn: psycopg.Connection, org: int, tmp_path: Path) -> None:
    period = tmp_path / "BILLING_PERIOD=2026-05"
    period.mkdir()
    for number, data in enumerate(split(3)):
        (period / f"part-{number:05d}.csv.gz").write_bytes(gzip.compress(data))
    results = ingest(conn, tmp_path)
    # without delivery grouping, each part would replace the one before: 334 rows, not 1000
    assert [r.status for r in results] == ["loaded"] * 3
    assert count(conn) == 1000
    assert total(conn) == Decimal(facts(SAMPLE_12)["total_EffectiveCost"])
    assert total(conn, "billed_cost") == Decimal(facts(SAMPLE_12)["total_BilledCost"])
    summary_matches_line_items(conn)
    before = state(conn)
    assert [r.status for r in ingest(conn, tmp_path)] == ["unchanged"] * 3
    assert state(conn) == before


def test_a_restated_delivery_replaces_the_whole_period(conn: psycopg.Connection, org: int,
                                                      tmp_path: Path) -> None:
    first = tmp_path / "run-1"
    first.mkdir()
    for number, data in enumerate(split(2)):
        (first / f"part_{number}.csv").write_bytes(data)
    ingest(conn, tmp_path)
    # the provider's next run of the same period, in a folder of its own, in four parts and with one
    # row fewer: it replaces both earlier parts, and its own parts do not replace each other
    parts = split(4)
    last = parts[-1].decode().rstrip("\n").split("\n")
    dropped = next(csv.DictReader(io.StringIO(last[0] + "\n" + last[-1] + "\n")))
    parts[-1] = ("\n".join(last[:-1]) + "\n").encode()
    second = tmp_path / "run-2"
    second.mkdir()
    for number, data in enumerate(parts):
        (second / f"part_{number}.csv").write_bytes(data)
    results = ingest(conn, tmp_path)
    assert [r.status for r in results] == ["unchanged", "unchanged"] + ["loaded"] * 4
    assert count(conn) == 999
    assert total(conn) == (Decimal(facts(SAMPLE_12)["total_EffectiveCost"])
                           - Decimal(dropped["EffectiveCost"] or 0))
    assert conn.execute("SELECT count(*) FROM nightshift.cost_ingests WHERE replaced_by IS NOT NULL"
                        ).fetchone() == (2,)
    summary_matches_line_items(conn)  # the replaced parts' summary rows went with their line items


def test_one_bad_part_loads_nothing_of_its_period(conn: psycopg.Connection, org: int,
                                                  tmp_path: Path) -> None:
    period = tmp_path / "2026-05"
    period.mkdir()
    parts = split(3)
    for number, data in enumerate(parts):
        (period / f"part-{number}.csv").write_bytes(data)
    ingest(conn, tmp_path)
    before = state(conn)
    # the provider rewrites the period; its last part has text where a decimal belongs
    text = parts[2].decode()
    header = text.split("\n", 1)[0].split(",")
    rows = list(csv.reader(io.StringIO(text)))
    rows[5][header.index("BilledCost")] = "twelve"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    (period / "part-0.csv").write_bytes(parts[0].replace(b"\n", b"\r\n"))  # restated: the same rows
    (period / "part-2.csv").write_bytes(buffer.getvalue().encode())
    with pytest.raises(CostIngestError, match=r"part-2\.csv: column BilledCost: 'twelve'"):
        ingest(conn, tmp_path)
    assert state(conn) == before  # part-0 and part-1 of the new delivery were rolled back with it
    summary_matches_line_items(conn)


def _aws_manifest(bucket: str, keys: list[str]) -> bytes:
    # AWS Data Exports' manifest (metadata/BILLING_PERIOD=.../<export>-Manifest.json), the fields read
    return json.dumps({"executionId": "e1", "billingPeriod": {"start": "2026-05-01T00:00:00.000Z"},
                       "dataFiles": [f"s3://{bucket}/{key}" for key in keys]}).encode()


def test_an_aws_manifest_on_s3_names_the_parts(conn: psycopg.Connection, org: int, aws_env: str) -> None:
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket="billing")
    base = "exports/focus/acme"
    keys = [f"{base}/data/BILLING_PERIOD=2026-05/acme-{n:05d}.csv.gz" for n in range(1, 4)]
    for key, data in zip(keys, split(3), strict=True):
        client.put_object(Bucket="billing", Key=key, Body=gzip.compress(data))
    manifest_key = f"{base}/metadata/BILLING_PERIOD=2026-05/acme-Manifest.json"
    # first the manifest names a fourth part that is not (yet) there: nothing is loaded
    client.put_object(Bucket="billing", Key=manifest_key,
                      Body=_aws_manifest("billing", [*keys, keys[0].replace("00001", "00004")]))
    with pytest.raises(CostIngestError,
                       match=r"acme-Manifest\.json: lists .*acme-00004\.csv\.gz.*incomplete"):
        ingest(conn, f"s3://billing/{base}/")
    assert count(conn) == 0
    client.put_object(Bucket="billing", Key=manifest_key, Body=_aws_manifest("billing", keys))
    results = ingest(conn, f"s3://billing/{base}/")
    assert [r.key for r in results] == [f"s3://billing/{k}" for k in keys]
    assert total(conn) == Decimal(facts(SAMPLE_12)["total_EffectiveCost"])


def test_an_azure_manifest_row_count_catches_a_short_part(conn: psycopg.Connection, org: int,
                                                          tmp_path: Path) -> None:
    run = tmp_path / "acme-focus" / "20260501-20260531" / "b1a2c3"
    run.mkdir(parents=True)
    parts = split(2)
    blobs = []
    for number, data in enumerate(parts):
        name = f"part_0_{number + 1:04d}.csv.gz"
        (run / name).write_bytes(gzip.compress(data))
        blobs.append({"blobName": f"acme-focus/20260501-20260531/b1a2c3/{name}",
                      "byteCount": len(data), "dataRowCount": data.count(b"\n") - 1})
    blobs[1]["dataRowCount"] += 7  # the export wrote seven rows more than the file we have
    (run / "manifest.json").write_text(json.dumps({"manifestVersion": "2024-04-01", "blobCount": 2,
                                                   "blobs": blobs}))
    with pytest.raises(CostIngestError, match=r"part_0_0002\.csv\.gz: .*manifest\.json states 507 rows, "
                                              r"the file has 500"):
        ingest(conn, tmp_path)
    assert count(conn) == 0
    blobs[1]["dataRowCount"] -= 7
    (run / "manifest.json").write_text(json.dumps({"blobs": blobs}))
    assert [r.rows for r in ingest(conn, tmp_path)] == [500, 500]
    assert total(conn) == Decimal(facts(SAMPLE_12)["total_EffectiveCost"])
