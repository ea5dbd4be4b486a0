"""The files of a sweep's store: parquet written with page checksums (and a SHA-256 beside
each results file), read back with both checked, so damage is named, never read as data.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sarlearn.atomic import atomic_write_bytes
from sarlearn.errors import SarlearnError

#: The compacted traces (named in messages: they cannot be rebuilt).
TRACES = "traces.parquet"

#: Every parquet file of the store carries a CRC of each data page, and every read checks it,
#: so a flipped bit is named as a damaged file (StoreCorruptError) instead of read as data.
WRITE: dict[str, Any] = {"write_page_checksum": True}


READ: dict[str, Any] = {"page_checksum_verification": True}


class StoreCorruptError(SarlearnError):
    """A file of a sweep folder is unreadable (truncated, damaged, not what it should be)."""


def write_parquet(path: Path, table: pa.Table) -> bytes:
    data = parquet_bytes(table)
    write_checked(path, data)
    return data


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **WRITE)
    return buf.getvalue()


def file_digest(path: Path) -> Path:
    """The file holding the SHA-256 of ``path``'s bytes (written with it, checked on read)."""
    return path.with_name(f"{path.name}.sha256")


def write_checked(path: Path, data: bytes) -> None:
    """Write ``data`` and its SHA-256 beside it. The old digest goes first: a crash in
    between leaves a file without a digest (read unchecked), never one with a stale digest."""
    file_digest(path).unlink(missing_ok=True)
    atomic_write_bytes(path, data)
    atomic_write_bytes(file_digest(path), hashlib.sha256(data).hexdigest().encode())


def _empty_table(schema: pa.Schema) -> pa.Table:
    return pa.Table.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema)


def part_files(folder: Path) -> list[Path]:
    # temporary files of an interrupted write start with "." and are never listed
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def existing_files(path: Path) -> list[Path]:
    return [path] if path.exists() else []


def read_checked_table(
    src: Path, root: Path | None = None, without: Sequence[str] = ()
) -> pa.Table:
    """A results file or part (:class:`StoreCorruptError` if unreadable or not one), without
    the columns named in ``without`` (never read)."""
    data = src.read_bytes()
    try:
        want = file_digest(src).read_text().strip()
    except (FileNotFoundError, UnicodeDecodeError):
        want = None  # written before digests, or by a crash between file and digest
    if want is not None and hashlib.sha256(data).hexdigest() != want:
        bad = ValueError("its SHA-256 is not the one written with it (bit rot, or an edit)")
        raise corrupt_error(src, root, bad)
    try:
        pf = pq.ParquetFile(pa.BufferReader(data), **READ)
        table = pf.read(columns=[c for c in pf.schema_arrow.names if c not in without])
    except (pa.ArrowException, OSError) as exc:
        raise corrupt_error(src, root, exc) from exc
    if "attempt_id" not in table.column_names or "run_id" not in table.column_names:
        raise corrupt_error(src, root, ValueError("no run_id/attempt_id columns"))
    return table


def _hash_file(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checked_with(path: Path, writer: Any) -> None:
    """:func:`write_checked` for a file written by ``writer(tmp_path)`` (e.g. streamed)."""
    from sarlearn.atomic import atomic_write_with

    file_digest(path).unlink(missing_ok=True)
    atomic_write_with(path, writer)
    atomic_write_bytes(file_digest(path), _hash_file(path).encode())


def iter_table(src: Path, root: Path | None = None, rows: int = 16_384) -> Any:
    """A results file in tables of at most ``rows`` rows (its SHA-256 checked first, in
    blocks), so a large file is never held whole."""
    try:
        want = file_digest(src).read_text().strip()
    except (FileNotFoundError, UnicodeDecodeError):
        want = None
    if want is not None and _hash_file(src) != want:
        bad = ValueError("its SHA-256 is not the one written with it (bit rot, or an edit)")
        raise corrupt_error(src, root, bad)
    try:
        pf = pq.ParquetFile(src, **READ)
        for batch in pf.iter_batches(batch_size=rows):
            yield pa.Table.from_batches([batch])
    except (pa.ArrowException, OSError) as exc:
        raise corrupt_error(src, root, exc) from exc


def concat_records(
    sources: Sequence[Path], schema: pa.Schema, root: Path | None = None
) -> pa.Table:
    return concat_arrow([read_checked_table(src, root) for src in sources], schema)


def concat_arrow(tables: Sequence[pa.Table], schema: pa.Schema) -> pa.Table:
    conformed = [conform(t, schema) for t in tables]
    if not conformed:
        return _empty_table(schema)
    if len(conformed) == 1:
        return conformed[0]
    return pa.concat_tables(conformed, promote_options="permissive")


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns in order (missing ones null) plus any extra ones."""
    cols, fields = [], []
    names, wanted = set(table.column_names), set(schema.names)  # each a new list per access
    for f in schema:
        if f.name in names:
            col = table.column(f.name)
            cols.append(col if col.type == f.type else col.cast(f.type))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
        fields.append(f)
    for name in table.column_names:
        if name not in wanted:
            cols.append(table.column(name))
            fields.append(table.schema.field(name))
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


def drop_duplicate_attempts(table: pa.Table) -> pa.Table:
    # a crash between replacing the compacted file and deleting its parts leaves duplicates
    ids = table.column("attempt_id").to_pylist()
    seen: set[str] = set()
    keep = []
    for a in ids:
        keep.append(a not in seen)
        seen.add(a)
    return table if all(keep) else table.filter(bools(keep))


def read_file_schema(path: Path, root: Path | None, full: bool = False) -> pa.Schema:
    """A parquet file's schema (``full``: also check every row group's metadata)."""
    try:
        if full:
            pf = pq.ParquetFile(path, **READ)
            for i in range(pf.num_row_groups):
                pf.metadata.row_group(i)
            return pf.schema_arrow
        return pq.read_schema(path)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise corrupt_error(path, root, exc) from exc


def short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}"


def corrupt_error(path: Path, root: Path | None, exc: BaseException) -> StoreCorruptError:
    folder = root if root is not None else path.parent
    if path.name == TRACES:
        fix = "its traces cannot be rebuilt; repairing sets it aside and keeps the results"
    else:
        fix = "it can be rebuilt from the run parts kept in results/"
    return StoreCorruptError(
        f"{path} is unreadable ({short(exc)}); {fix}: run `sarlearn report {folder} --repair`, "
        f"or resume the sweep (it repairs the folder first)"
    )


def bools(flags: Sequence[bool]) -> pa.Array:
    """A boolean Arrow array (a filter mask)."""
    return pa.array(flags, type=pa.bool_())
