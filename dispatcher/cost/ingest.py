"""Load FOCUS billing exports (CSV, CSV.gz, Parquet; local or S3) into nightshift.cost_line_items.

One file, one transaction:
  1. its sha256 is compared with the manifest (nightshift.cost_ingests): when the last load of the same
     source and key had the same checksum, nothing happens (the same file twice changes nothing);
  2. the file is streamed with COPY into a temporary table of text columns (Postgres parses the CSV,
     checks the UTF-8, and nothing goes through Python row by row);
  3. the month partitions it needs are created (nightshift.cost_ensure_partitions), the rows the same
     source had for the file's billing periods are deleted (exports restate earlier days), and the
     staged rows are inserted with their types: amounts as numeric (never floats), the bare word NULL
     and empty fields as NULL, zone-less datetimes as UTC;
  4. the manifest row is written. Any error rolls all of it back: nothing is ever half-loaded.

A **delivery** is loaded in one transaction, not a file: providers write one billing period as several
part files (AWS Data Exports, Azure Cost Management, Google Cloud), often with a manifest. The files a
manifest lists are one delivery (a listed file that is absent refuses the delivery: it is incomplete);
files no manifest lists are grouped by folder. The parts of a delivery do not replace each other; the
delivery replaces what earlier deliveries of the source said for its billing periods, and one bad part
rolls back every part.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import io
import json
import logging
import posixpath
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from dispatcher.cost.focus import FocusColumn, FocusError, HeaderMap, map_header
from dispatcher.errors import UsageError

log = logging.getLogger(__name__)

SUFFIXES = (".csv", ".csv.gz", ".parquet")
CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
ANALYZED_COLUMNS = (
    "source_id", "charge_period_start", "billing_period_start", "billing_currency", "charge_category",
    "service_name", "service_category", "sub_account_id", "resource_id", "commitment_discount_id",
    "commitment_discount_status", "pricing_unit",
)


class CostIngestError(UsageError):  # a file or source the operator named: bad input, exit 2
    """A billing file or source that cannot be loaded; the message names the file and the reason."""


@dataclass(frozen=True)
class Source:
    id: int
    organization_id: int
    uri: str
    focus_version: str | None = None


@dataclass(frozen=True)
class FileResult:
    key: str
    status: str  # loaded | unchanged
    rows: int
    focus_version: str | None
    billing_periods: tuple[str, ...] = ()
    months: tuple[str, ...] = ()  # the partitions (cost_line_items_YYYY_MM) its rows went to
    method: str = ""  # copied (straight into cost_line_items) | staged (through a temporary table)
    ingest_id: int | None = None  # its row in nightshift.cost_ingests, when loaded now


@dataclass(frozen=True)
class Delivery:
    """Files loaded together, all or nothing: the parts one manifest lists, or the files of one folder."""
    name: str  # the manifest, or the folder
    parts: tuple[str, ...]
    rows: dict[str, int]  # part -> the row count its manifest states (Azure's dataRowCount)
    missing: tuple[str, ...] = ()  # files the manifest lists that the source does not have


# --- the files of a source -------------------------------------------------------------------------


def is_billing_file(name: str) -> bool:
    return name.lower().endswith(SUFFIXES)


def is_manifest(name: str) -> bool:
    """AWS Data Exports' `<export>-Manifest.json`, Azure Cost Management's `manifest.json`."""
    name = posixpath.basename(name).lower()
    return name == "manifest.json" or name.endswith(("-manifest.json", "_manifest.json"))


def local_files(uri: str) -> list[Path]:
    path = Path(uri).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise CostIngestError(f"cost source {uri}: no such file or directory")
    files = sorted(p for p in path.rglob("*") if p.is_file() and is_billing_file(p.name))
    if not files:
        raise CostIngestError(f"cost source {uri}: no FOCUS files (*.csv, *.csv.gz, *.parquet) in it")
    return files


def local_manifests(uri: str) -> list[Path]:
    path = Path(uri).expanduser()
    return sorted(p for p in path.rglob("*") if p.is_file() and is_manifest(p.name)) if path.is_dir() else []


def manifest_parts(text: str, where: str) -> tuple[list[str], dict[str, int]] | None:
    """The data files a manifest lists, and the row counts it states: AWS Data Exports write
    `dataFiles` (s3:// addresses), the legacy Cost and Usage Report `reportKeys`, Azure Cost Management
    `blobs` (`blobName`, `dataRowCount`). None for a JSON file that is no manifest of theirs."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise CostIngestError(f"{where}: not a JSON manifest") from None
    names: list[str] = []
    rows: dict[str, int] = {}
    if isinstance(doc, dict):
        for field in ("dataFiles", "reportKeys"):
            names += [entry for entry in doc.get(field) or [] if isinstance(entry, str)]
        for blob in doc.get("blobs") or []:
            if isinstance(blob, dict) and isinstance(blob.get("blobName"), str):
                names.append(blob["blobName"])
                if isinstance(blob.get("dataRowCount"), int):
                    rows[blob["blobName"]] = blob["dataRowCount"]
    if not names:
        log.info("cost: %s lists no data files (dataFiles, reportKeys, blobs): not a manifest", where)
        return None
    return names, rows


def _match(listed: str, files: list[str]) -> str | None:
    """The file of the source a manifest's entry names: the longest common tail of their paths (a
    manifest names files by their full address, which a local copy or another prefix shortens)."""
    parts = [p for p in listed.removeprefix("s3://").split("/") if p]
    for start in range(len(parts)):
        tail = "/".join(parts[start:])
        found = [f for f in files if f == tail or f.endswith("/" + tail)]
        if found:
            return found[0] if len(found) == 1 else None
    return None


def deliveries(files: list[str], manifests: list[str], read: Callable[[str], str]) -> list[Delivery]:
    """The source's files as deliveries, in the order of their first file: each manifest's parts, then
    the other files by folder."""
    out: list[Delivery] = []
    claimed: set[str] = set()
    for manifest in manifests:
        listed = manifest_parts(read(manifest), manifest)
        if listed is None:
            continue
        names, rows = listed
        parts: list[str] = []
        counts: dict[str, int] = {}
        missing: list[str] = []
        for name in names:
            key = _match(name, files)
            if key is None:
                missing.append(name)
            elif key not in parts:
                parts.append(key)
                if name in rows:
                    counts[key] = rows[name]
        out.append(Delivery(manifest, tuple(parts), counts, tuple(missing)))
        claimed.update(parts)
    by_folder: dict[str, list[str]] = {}
    for key in files:
        if key not in claimed:
            by_folder.setdefault(posixpath.dirname(key), []).append(key)
    out += [Delivery(folder, tuple(keys), {}) for folder, keys in by_folder.items()]
    order = {key: i for i, key in enumerate(files)}
    return sorted(out, key=lambda d: min((order[k] for k in d.parts), default=-1))


def parse_s3_uri(uri: str) -> tuple[str, str]:
    rest = uri.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise CostIngestError(f"cost source {uri}: not an s3://bucket/prefix address")
    return bucket, prefix


def s3_client() -> Any:
    import boto3  # only for S3 sources; honours AWS_ENDPOINT_URL, AWS_PROFILE, ...

    return boto3.client("s3")


def s3_keys(client: Any, uri: str) -> list[tuple[str, str]]:
    """(key, ETag) of the billing files under an S3 prefix, oldest first; clear errors otherwise."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = parse_s3_uri(uri)
    found: list[tuple[Any, str, str]] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if is_billing_file(obj["Key"]) or is_manifest(obj["Key"]):
                    found.append((obj["LastModified"], obj["Key"], obj.get("ETag", "")))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise CostIngestError(f"cost source {uri}: S3 said {code}: "
                              f"{exc.response.get('Error', {}).get('Message', '')}".rstrip(": ")) from None
    except BotoCoreError as exc:
        raise CostIngestError(f"cost source {uri}: {exc}") from None
    if not any(is_billing_file(key) for _, key, _ in found):
        raise CostIngestError(f"cost source {uri}: no FOCUS files (*.csv, *.csv.gz, *.parquet) under it")
    return [(key, etag) for _, key, etag in sorted(found)]


@contextmanager
def s3_download(client: Any, bucket: str, key: str) -> Iterator[Path]:
    from botocore.exceptions import BotoCoreError, ClientError

    with tempfile.TemporaryDirectory(prefix="nightshift-cost-") as tmp:
        path = Path(tmp) / Path(key).name
        try:
            client.download_file(bucket, key, str(path))
        except (ClientError, BotoCoreError) as exc:
            raise CostIngestError(f"s3://{bucket}/{key}: cannot download: {exc}") from None
        yield path


# --- reading one file ------------------------------------------------------------------------------


def sha256_of(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def file_format(path: Path) -> str:
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic.startswith(_GZIP_MAGIC):
        return "csv.gz"
    if magic == _PARQUET_MAGIC:
        return "parquet"
    return "csv"


def csv_chunks(path: Path, fmt: str) -> Iterator[bytes]:
    """The CSV bytes of a file (decompressed, Parquet converted), in chunks; header included."""
    if fmt == "parquet":
        yield from parquet_as_csv(path)
        return
    opener = gzip.open if fmt == "csv.gz" else open
    try:
        with opener(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise CostIngestError(f"{path.name}: truncated or corrupt gzip ({exc})") from None


def parquet_as_csv(path: Path) -> Iterator[bytes]:
    """A Parquet file as CSV text: every column cast to string by Arrow (decimals stay exact)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        header = True
        for batch in parquet.iter_batches(batch_size=65536):
            columns = [_arrow_text(column, pa) for column in batch.columns]
            table = pa.Table.from_arrays(columns, names=batch.schema.names)
            out = io.BytesIO()
            pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=header))
            header = False
            yield out.getvalue()
    except (pa.ArrowException, OSError) as exc:
        raise CostIngestError(f"{path.name}: unreadable Parquet ({exc})") from None


def _arrow_text(column: Any, pa: Any) -> Any:
    if pa.types.is_timestamp(column.type):
        # ISO text Postgres reads; a zone-less timestamp stays zone-less (UTC by the session)
        suffix = "Z" if column.type.tz else ""
        column = pa.compute.strftime(column, format="%Y-%m-%dT%H:%M:%S" + suffix)
    elif pa.types.is_floating(column.type):
        # a float column of a careless exporter: its shortest repr, never more digits than it has
        return pa.array([None if v is None else repr(v) for v in column.to_pylist()], pa.string())
    return column.cast(pa.string())


def read_header(path: Path, fmt: str) -> list[str]:
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as exc:
            raise CostIngestError(f"{path.name}: unreadable Parquet ({exc})") from None
    first = b""
    for chunk in csv_chunks(path, fmt):
        first += chunk
        if b"\n" in first:
            break
    try:
        line = first.split(b"\n", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        raise CostIngestError(f"{path.name}: the header is not UTF-8") from None
    if not line.strip():
        raise CostIngestError(f"{path.name}: empty file, no header")
    return next(csv.reader([line]))


# --- loading ---------------------------------------------------------------------------------------


def _value(ident: sql.Composable) -> sql.Composable:
    # the bare word NULL (FOCUS 1.0 official sample) and empty fields are both NULL
    return sql.SQL("nullif(nullif({}, ''), 'NULL')").format(ident)


def _typed(column: FocusColumn, ident: sql.Composable) -> sql.Composable:
    if column.type == "text":
        return _value(ident)
    return sql.SQL("{}::{}").format(_value(ident), sql.SQL(column.type))


def insert_statement(header: HeaderMap, table: str) -> sql.Composed:
    """INSERT INTO cost_line_items SELECT <typed columns> FROM the staging table."""
    targets = [sql.Identifier("source_id"), sql.Identifier("ingest_id")]
    values: list[sql.Composable] = [sql.Placeholder("source_id"), sql.Placeholder("ingest_id")]
    for position, column in enumerate(header.targets):
        if column is not None:
            targets.append(sql.Identifier(column.column))
            values.append(_typed(column, sql.Identifier(f"c{position}")))
    if header.extras:
        # jsonb_build_object takes at most 100 arguments: 50 columns per call
        parts = []
        for start in range(0, len(header.extras), 50):
            pairs: list[sql.Composable] = []
            for position, name in header.extras[start:start + 50]:
                pairs += [sql.Literal(name), _value(sql.Identifier(f"c{position}"))]
            parts.append(sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(pairs)))
        targets.append(sql.Identifier("extra"))
        values.append(sql.SQL(" || ").join(parts))
    return sql.SQL("INSERT INTO nightshift.cost_line_items ({}) SELECT {} FROM {}").format(
        sql.SQL(", ").join(targets), sql.SQL(", ").join(values), sql.Identifier(table))


def ingest_path(conn: psycopg.Connection, source: Source, path: Path, key: str) -> FileResult:
    """Load one local file as `key` of `source` (a delivery of one file)."""
    return ingest_delivery(conn, source, Delivery(key, (key,), {}), lambda _key: nullcontext(path))[0]


def ingest_delivery(conn: psycopg.Connection, source: Source, delivery: Delivery,
                    fetch: Callable[[str], AbstractContextManager[Path]]) -> list[FileResult]:
    """Load the parts of a delivery in one transaction (the connection must not be in one); nothing
    happens when every part was loaded before with the same checksum. The parts do not replace each
    other; together they replace what earlier deliveries said about their billing periods."""
    if delivery.missing:
        raise CostIngestError(f"{delivery.name}: lists {', '.join(delivery.missing)}, not in the source: "
                              "an incomplete delivery, nothing of it is loaded")
    with ExitStack() as stack:
        paths = [(key, stack.enter_context(fetch(key))) for key in delivery.parts]
        last = {row[0]: row[1:] for row in conn.execute(
            "SELECT DISTINCT ON (object_key) object_key, sha256, focus_version, rows, bytes"
            " FROM nightshift.cost_ingests WHERE source_id = %s AND object_key = ANY(%s)"
            " ORDER BY object_key, id DESC", (source.id, list(delivery.parts))).fetchall()}
        sizes = [path.stat().st_size for _, path in paths]
        # A part that is new or changed its size is loaded, and with it the whole delivery: then the
        # checksums are taken from the bytes the COPY streams (one read of each file, not two).
        # Otherwise they decide whether anything changed.
        digests: list[str | None] = [None] * len(paths)
        if all(key in last and last[key][3] == size for (key, _), size in zip(paths, sizes, strict=True)):
            digests = [sha256_of(path)[0] for _, path in paths]
            if all(last[key][0] == digest for (key, _), digest in zip(paths, digests, strict=True)):
                return [FileResult(key, "unchanged", last[key][2], last[key][1]) for key, _ in paths]
        results: list[FileResult] = []
        with conn.transaction():
            for (key, path), digest, size in zip(paths, digests, sizes, strict=True):
                result = _ingest_part(conn, source, path, key, digest, size,
                                      [r.ingest_id for r in results if r.ingest_id is not None])
                stated = delivery.rows.get(key)
                if stated is not None and stated != result.rows:
                    raise CostIngestError(f"{key}: {delivery.name} states {stated} rows, the file has "
                                          f"{result.rows}: an incomplete file, nothing of the delivery "
                                          "is loaded")
                results.append(result)
            # the summary the analyses by service read, from the rows just written (still in cache;
            # each partition is probed by its index on source_id, ingest_id)
            try:
                conn.execute("SELECT nightshift.cost_summarize(%s, %s)",
                             (source.organization_id, [r.ingest_id for r in results]))
            except psycopg.errors.NotNullViolation as exc:
                if exc.diag.column_name != "billing_period_start":
                    raise
                raise CostIngestError(f"{delivery.name}: rows without BillingPeriodStart") from None
            return _settle_copied(conn, source, results)


def _ingest_part(conn: psycopg.Connection, source: Source, path: Path, key: str, digest: str | None,
                 size: int, siblings: list[int]) -> FileResult:
    """One file inside its delivery's transaction (each attempt in a savepoint). Without `digest`, the
    sha256 of a plain CSV file is taken while it is copied (its chunks are its bytes); of a compressed
    or Parquet file, first."""
    fmt = file_format(path)
    if digest is None and fmt != "csv":
        digest = sha256_of(path)[0]
    try:
        header = map_header(read_header(path, fmt), source.focus_version)
    except FocusError as exc:
        raise CostIngestError(f"{key}: {exc}") from None
    sample = _direct_sample(path, fmt, header)
    if sample is not None:
        try:
            with conn.transaction():
                return _load_direct(conn, source, path, key, fmt, header, digest, size, sample, siblings)
        except (psycopg.errors.DataError, psycopg.errors.IntegrityError):
            pass  # the staging path below says what is wrong, or copes (a row in no partition yet)
    try:
        with conn.transaction():
            return _load(conn, source, path, key, fmt, header, digest, size, siblings)
    except psycopg.errors.CharacterNotInRepertoire as exc:
        where = (exc.diag.context or str(exc)).replace("\n", " ")
        raise CostIngestError(f"{key}: not UTF-8 text ({where})") from None
    except psycopg.errors.DataError as exc:
        raise CostIngestError(f"{key}: {_explain(conn, path, fmt, header, exc)}") from None


def _load(conn: psycopg.Connection, source: Source, path: Path, key: str, fmt: str, header: HeaderMap,
          digest: str | None, size: int, siblings: list[int]) -> FileResult:
    conn.execute("SET LOCAL timezone = 'UTC'")  # zone-less datetimes (FOCUS 1.0 sample) are UTC
    digest = _stage(conn, path, fmt, header, digest)
    periods = [row[0] for row in conn.execute(
        "SELECT DISTINCT nullif(nullif(c{}, ''), 'NULL')::timestamptz FROM cost_stage".format(
            _position(header, "billing_period_start"))).fetchall()]
    span = conn.execute(sql.SQL(
        "SELECT min(v), max(v) FROM (SELECT {}::timestamptz AS v FROM cost_stage) AS s").format(
            _value(sql.Identifier(f"c{_position(header, 'charge_period_start')}")))).fetchone()
    assert span is not None
    if any(p is None for p in periods) or (periods and span[0] is None):
        raise CostIngestError(f"{key}: rows without BillingPeriodStart or ChargePeriodStart")
    conn.execute("SELECT nightshift.cost_ensure_partitions(%s, %s)", span)
    months = month_partitions(span[0], span[1]) if span[0] is not None else ()
    row = conn.execute(
        "INSERT INTO nightshift.cost_ingests (source_id, object_key, sha256, bytes, rows, focus_version,"
        " billing_periods) VALUES (%s, %s, %s, %s, 0, %s, %s) RETURNING id",
        (source.id, key, digest, size, header.version, periods)).fetchone()
    assert row is not None
    ingest_id = row[0]
    _replace(conn, source.id, ingest_id, [*siblings, ingest_id], periods)
    inserted = conn.execute(insert_statement(header, "cost_stage"),
                            {"source_id": source.id, "ingest_id": ingest_id}).rowcount
    conn.execute("UPDATE nightshift.cost_ingests SET rows = %s WHERE id = %s", (inserted, ingest_id))
    conn.execute("DROP TABLE cost_stage")
    log.info("cost: loaded %s rows of %s (FOCUS %s)", inserted, key, header.version)
    return FileResult(key, "loaded", inserted, header.version, tuple(p.isoformat() for p in periods),
                      months, "staged", ingest_id)


def _direct_sample(path: Path, fmt: str, header: HeaderMap) -> list[list[str]] | None:
    """The first rows of a file that can be copied straight into cost_line_items (the fast path), or
    None: it has non-FOCUS columns (kept in `extra`, which COPY cannot build), or its first MiB holds
    the bare word NULL (the FOCUS 1.0 sample's convention, which only the staging path translates)."""
    if header.extras:
        return None
    head = b""
    for chunk in csv_chunks(path, fmt):
        head += chunk
        if len(head) >= CHUNK:
            break
    try:
        text = head.decode("utf-8")
        rows = list(csv.reader(io.StringIO(text[: text.rfind("\n") + 1])))[1:]
    except (UnicodeDecodeError, csv.Error):
        return None
    if any(field == "NULL" for row in rows for field in row):
        return None
    return rows[:-1] if len(rows) > 1 else rows  # the last line may have been cut inside a quoted field


def _load_direct(conn: psycopg.Connection, source: Source, path: Path, key: str, fmt: str,
                 header: HeaderMap, digest: str | None, size: int, sample: list[list[str]],
                 siblings: list[int]) -> FileResult:
    """COPY straight into cost_line_items: one write instead of two. The COPY names
    cost_line_items_months, the partition of cost_line_items that holds the month partitions: Postgres
    refuses COPY FROM into a table under row-level security (cost_line_items, for every role), and
    checks it on the table named only (dispatcher/models.py). source_id and ingest_id come from
    their column defaults, which read the transaction's settings nightshift.cost_source_id and
    nightshift.cost_ingest_id. The partitions of the billing periods seen in the file's first rows
    are created first; a row in another month fails the COPY and the caller takes the staging path."""
    conn.execute("SET LOCAL timezone = 'UTC'")
    where = {c.column: i for i, c in enumerate(header.targets) if c is not None}
    def seen(column: str) -> list[str]:
        return [row[where[column]] for row in sample if len(row) > where[column] and row[where[column]]]
    span = conn.execute(
        "SELECT least((SELECT min(v::timestamptz) FROM unnest(%(starts)s::text[]) AS v),"
        "             (SELECT min(v::timestamptz) FROM unnest(%(charges)s::text[]) AS v)),"
        "       greatest((SELECT max(v::timestamptz) - interval '1 microsecond'"
        "                   FROM unnest(%(ends)s::text[]) AS v),"
        "                (SELECT max(v::timestamptz) FROM unnest(%(charges)s::text[]) AS v))",
        {"starts": sorted(set(seen("billing_period_start"))), "ends": sorted(set(seen("billing_period_end"))),
         "charges": sorted(set(seen("charge_period_start")))}).fetchone()
    assert span is not None
    conn.execute("SELECT nightshift.cost_ensure_partitions(%s, %s)", span)
    row = conn.execute(
        "INSERT INTO nightshift.cost_ingests (source_id, object_key, sha256, bytes, rows, focus_version,"
        " billing_periods) VALUES (%s, %s, %s, %s, 0, %s, '{}') RETURNING id",
        (source.id, key, digest or "", size, header.version)).fetchone()
    assert row is not None
    ingest_id = row[0]
    conn.execute("SELECT set_config('nightshift.cost_source_id', %s, true),"
                 " set_config('nightshift.cost_ingest_id', %s, true)", (str(source.id), str(ingest_id)))
    columns = sql.SQL(", ").join(sql.Identifier(c.column) for c in header.targets if c is not None)
    with conn.cursor() as cur:
        with cur.copy(sql.SQL("COPY nightshift.cost_line_items_months ({}) FROM STDIN"
                              " (FORMAT csv, HEADER true)")
                      .format(columns)) as copy:
            digest = _stream(copy, path, fmt, digest)
        inserted = cur.rowcount
    conn.execute("UPDATE nightshift.cost_ingests SET rows = %s, sha256 = %s WHERE id = %s",
                 (inserted, digest, ingest_id))
    log.info("cost: copied %s rows of %s (FOCUS %s)", inserted, key, header.version)
    # its billing periods and months are read from its summary rows (_settle_copied); a row without
    # BillingPeriodStart is refused there (the summary's column is NOT NULL)
    return FileResult(key, "loaded", inserted, header.version, (), (), "copied", ingest_id)


def _settle_copied(conn: psycopg.Connection, source: Source, results: list[FileResult]) -> list[FileResult]:
    """The billing periods and months of the files copied straight in, from their rows of
    cost_line_summary (a few per hour of data, where the line items are millions): recorded in the
    manifest, and what earlier deliveries said about those periods deleted (_replace)."""
    copied = [r.ingest_id for r in results if r.method == "copied"]
    if not copied:
        return results
    seen: dict[int, list[tuple[datetime, datetime, datetime]]] = {}
    for ingest_id, period, first, last in conn.execute(
            "SELECT ingest_id, billing_period_start, min(charge_period_start), max(charge_period_start)"
            " FROM nightshift.cost_line_summary WHERE ingest_id = ANY(%s) GROUP BY 1, 2 ORDER BY 1, 2",
            (copied,)).fetchall():
        seen.setdefault(ingest_id, []).append((period, first, last))
    delivery = [r.ingest_id for r in results if r.ingest_id is not None]
    settled = []
    for result in results:
        if result.method != "copied" or result.ingest_id is None:
            settled.append(result)
            continue
        rows = seen.get(result.ingest_id, [])
        periods = [period for period, _, _ in rows]
        conn.execute("UPDATE nightshift.cost_ingests SET billing_periods = %s WHERE id = %s",
                     (periods, result.ingest_id))
        # the delivery's other parts are not restatements of this one (nor this one of them)
        _replace(conn, source.id, result.ingest_id, delivery, periods)
        months = month_partitions(min(r[1] for r in rows), max(r[2] for r in rows)) if rows else ()
        settled.append(dataclasses.replace(result, billing_periods=tuple(p.isoformat() for p in periods),
                                           months=months))
    return settled


def _replace(conn: psycopg.Connection, source_id: int, ingest_id: int, delivery: list[int],
             periods: list[datetime]) -> None:
    """Delete what earlier files of the source said about these billing periods (exports restate), and
    mark those files replaced by `ingest_id`; the files of the same delivery (`delivery`, ingest_id among
    them) are parts, not restatements. The rows are found through their ingests (index on source_id,
    ingest_id): only the earlier ingests that covered one of the periods are looked at."""
    earlier = [row[0] for row in conn.execute(
        "SELECT id FROM nightshift.cost_ingests WHERE source_id = %s AND id <> ALL(%s)"
        " AND billing_periods && %s::timestamptz[]", (source_id, delivery, periods)).fetchall()]
    if not earlier:
        return
    for table in ("cost_line_items", "cost_line_summary"):
        delete = sql.SQL("DELETE FROM nightshift.{} WHERE source_id = %s AND ingest_id = ANY(%s)"
                         " AND billing_period_start = ANY(%s::timestamptz[])").format(sql.Identifier(table))
        conn.execute(delete, (source_id, earlier, periods))
    conn.execute("UPDATE nightshift.cost_ingests SET replaced_by = %s WHERE id = ANY(%s)"
                 " AND replaced_by IS NULL", (ingest_id, earlier))


def month_partitions(first: datetime, last: datetime) -> tuple[str, ...]:
    """The names of the partitions (cost_line_items_YYYY_MM, UTC months) from `first` to `last`."""
    first, last = first.astimezone(UTC), last.astimezone(UTC)
    year, month, names = first.year, first.month, []
    while (year, month) <= (last.year, last.month):
        names.append(f"cost_line_items_{year:04d}_{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(names)


def _position(header: HeaderMap, column: str) -> int:
    for position, target in enumerate(header.targets):
        if target is not None and target.column == column:
            return position
    raise AssertionError(column)  # map_header refuses files without the required columns


def _stage(conn: psycopg.Connection, path: Path, fmt: str, header: HeaderMap,
           digest: str | None = None) -> str:
    """COPY the file into the temporary table cost_stage of text columns; its sha256 (`digest`, or
    taken from the bytes streamed)."""
    columns = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(f"c{i}"))
                                 for i in range(len(header.targets)))
    conn.execute(sql.SQL("CREATE TEMPORARY TABLE cost_stage ({}) ON COMMIT DROP").format(columns))
    with conn.cursor() as cur, cur.copy("COPY cost_stage FROM STDIN (FORMAT csv, HEADER true)") as copy:
        return _stream(copy, path, fmt, digest)


def _stream(copy: psycopg.Copy, path: Path, fmt: str, digest: str | None) -> str:
    """Write the file's CSV bytes to a COPY; return `digest`, or the sha256 of the bytes written (a
    plain CSV file's own bytes: the caller hashes other formats first)."""
    if digest is not None:
        for chunk in csv_chunks(path, fmt):
            copy.write(chunk)
        return digest
    hasher = hashlib.sha256()
    for chunk in csv_chunks(path, fmt):
        hasher.update(chunk)
        copy.write(chunk)
    return hasher.hexdigest()


def _explain(conn: psycopg.Connection, path: Path, fmt: str, header: HeaderMap,
             exc: psycopg.Error) -> str:
    """Which column holds a value of the wrong type: stage the file again (the transaction is gone) and
    test each typed column; fall back on Postgres's own message."""
    message = (exc.diag.message_primary or str(exc)).strip()
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL timezone = 'UTC'")
            _stage(conn, path, fmt, header)
            for position, column in enumerate(header.targets):
                if column is None or column.type == "text":
                    continue
                bad = conn.execute(
                    sql.SQL("SELECT v FROM (SELECT {} AS v FROM cost_stage) AS s"
                            " WHERE NOT nightshift.cost_castable(v, %s) LIMIT 1").format(
                        _value(sql.Identifier(f"c{position}"))), (column.type,)).fetchone()
                if bad is not None:
                    return f"column {column.name}: {bad[0][:80]!r} is not a valid {column.type}"
    except psycopg.Error:
        pass
    return message


def ingest_source(conn: psycopg.Connection, source: Source) -> list[FileResult]:
    """Every delivery of a source, one transaction each; the first bad one stops it (the deliveries
    before it stay loaded)."""
    results: list[FileResult] = []
    try:
        if source.uri.startswith("s3://"):
            client = s3_client()
            bucket, _ = parse_s3_uri(source.uri)
            keys = [f"s3://{bucket}/{key}" for key, _etag in s3_keys(client, source.uri)]

            def fetch(key: str) -> AbstractContextManager[Path]:
                return s3_download(client, bucket, key.removeprefix(f"s3://{bucket}/"))

            def read(key: str) -> str:
                with fetch(key) as path:
                    return path.read_text(errors="replace")

            files = [k for k in keys if is_billing_file(k)]
            manifests = [k for k in keys if is_manifest(k)]
        else:
            files = [str(p) for p in local_files(source.uri)]
            manifests = [str(p) for p in local_manifests(source.uri)]

            def fetch(key: str) -> AbstractContextManager[Path]:
                return nullcontext(Path(key))

            def read(key: str) -> str:
                return Path(key).read_text(errors="replace")

        for delivery in deliveries(files, manifests, read):
            results += ingest_delivery(conn, source, delivery, fetch)
    finally:
        analyze(conn, {month for result in results for month in result.months})
    return results


def analyze(conn: psycopg.Connection, partitions: set[str]) -> None:
    """Fresh planner statistics after a load (nightshift.cost_analyze_line_items): the analysis runs
    right after, before autovacuum would have looked, and a month of rows planned as an empty table is
    a slow plan. ANALYZE of the partitioned table samples every partition and recurses into each (the
    parent's own statistics are what joins on source_id are estimated with); only the columns the
    analyses filter and group by, which took a tenth of the time of all sixty."""
    if not partitions:
        return
    try:
        conn.execute("SELECT nightshift.cost_analyze_line_items(%s)", (list(ANALYZED_COLUMNS),))
    except psycopg.Error as exc:  # a schema before the function, say: the analysis is slower, not wrong
        log.warning("cost: cannot ANALYZE the line items: %s", exc)


def ensure_source(conn: psycopg.Connection, organization: str, uri: str,
                  focus_version: str | None = None) -> Source:
    """The organization's source for `uri`, added when it is new (a local path is stored absolute)."""
    if not uri.startswith("s3://"):
        uri = str(Path(uri).expanduser().resolve())
    row = conn.execute("SELECT id FROM nightshift.organizations WHERE name = %s", (organization,)).fetchone()
    if row is None:
        raise CostIngestError(f"no organization named {organization!r}")
    found = conn.execute(
        "INSERT INTO nightshift.cost_sources (organization_id, uri, focus_version) VALUES (%s, %s, %s)"
        " ON CONFLICT (organization_id, uri) DO UPDATE SET focus_version ="
        " coalesce(EXCLUDED.focus_version, cost_sources.focus_version)"
        " RETURNING id, organization_id, uri, focus_version", (row[0], uri, focus_version)).fetchone()
    assert found is not None
    return Source(*found)


def organization_sources(conn: psycopg.Connection, organization_id: int) -> list[Source]:
    rows = conn.execute(
        "SELECT id, organization_id, uri, focus_version FROM nightshift.cost_sources"
        " WHERE organization_id = %s AND is_active ORDER BY id", (organization_id,)).fetchall()
    return [Source(*row) for row in rows]
