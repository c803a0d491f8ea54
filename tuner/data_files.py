"""Reading dataset files into numbered rows: JSON (array or object of arrays), JSONL, CSV/TSV and Parquet.

Used by `tuner.data.load_dataset`, which turns the rows into chat examples. A file that cannot be read at all
raises one `ValueError` naming the file, where it broke and what to do; a single unreadable record (a bad JSONL
line, a CSV record with the wrong number of fields) comes back as a `RowError` in its place so it is reported,
not fatal.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_MAX_BYTES = (
    1 << 30
)  # 1 GiB: larger files are refused before reading (they would not fit in memory parsed)

SUFFIXES = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class RowError(ValueError):
    """A row that cannot become an example; `reason` is readable, `kind` is the reason without details."""

    def __init__(self, reason: str, kind: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind or reason


def type_name(value: Any) -> str:
    """The JSON kind of a value, with its article: "a string", "a number", "an object", "null"."""
    if value is None:
        return "null"
    kinds = [
        (bool, "a boolean"),
        (str, "a string"),
        ((int, float), "a number"),
        (list, "a list"),
        (dict, "an object"),
    ]
    return next((kind for types, kind in kinds if isinstance(value, types)), f"a {type(value).__name__}")


def read_rows(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> list[tuple[int, Any]]:
    """The records of a dataset file as (1-based row number, record or RowError) pairs.

    Raises:
        ValueError: missing, too large, empty, not UTF-8, or not parseable as its type.
    """
    data = _read_bytes(path, max_bytes)
    kind = file_kind(path, data)
    if kind == "parquet":
        return _parquet_rows(path)
    text = _decode(path, data)
    if not text.strip():
        raise ValueError(f"{path.name} is empty: it holds only whitespace")
    if kind == "json":
        return _json_rows(path, text)
    if kind == "jsonl":
        return _jsonl_rows(text)
    return _csv_rows(path, text, "\t" if kind == "tsv" else ",")


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    if not path.exists():
        raise ValueError(f"dataset file {path} does not exist")
    if not path.is_file():
        raise ValueError(f"dataset path {path} is not a file")
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(
            f"{path.name} is {_size(size)}, over the {_size(max_bytes)} limit for a dataset file; "
            "use a smaller sample or split it into several files"
        )
    if size == 0:
        raise ValueError(f"{path.name} is empty (0 bytes)")
    return path.read_bytes()


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def file_kind(path: Path, data: bytes) -> str:
    """json, jsonl, csv, tsv or parquet, from the suffix, else from the first bytes."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind:
        return kind
    if data[:4] == b"PAR1":
        return "parquet"
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"[", b"{"):
        return "json"
    raise ValueError(
        f"{path.name}: unknown file type {path.suffix or '(no suffix)'!r} and the content is not JSON or "
        f"Parquet; use one of {', '.join(SUFFIXES)}"
    )


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(
            f"{path.name} is not valid UTF-8 text: byte 0x{data[e.start]:02x} at line {line} (offset {e.start}); "
            "re-save the file as UTF-8"
        ) from None


def _json_rows(path: Path, text: str) -> list[tuple[int, Any]]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # several JSON values one after the other: JSON Lines saved as .json
            return _jsonl_rows(text)
        raise ValueError(
            f"{path.name} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}; "
            "expected an array of rows (or JSON Lines, one row per line)"
        ) from None
    if isinstance(value, list):
        return list(enumerate(value, 1))
    if isinstance(value, dict):
        return _object_rows(path, value)
    raise ValueError(
        f"{path.name}: expected a JSON array of rows or an object of arrays, got {type_name(value)}"
    )


def _object_rows(path: Path, obj: dict) -> list[tuple[int, Any]]:
    """{"train": [rows], ...} (arrays of row objects, concatenated) or {"column": [values], ...} (columnar)."""
    not_lists = [k for k, v in obj.items() if not isinstance(v, list)]
    if not obj or not_lists:
        where = f"key {not_lists[0]!r} holds {type_name(obj[not_lists[0]])}" if not_lists else "it is empty"
        raise ValueError(f"{path.name}: expected a JSON array of rows or an object of arrays, but {where}")
    if all(isinstance(item, dict) for v in obj.values() for item in v):
        return list(enumerate((row for v in obj.values() for row in v), 1))
    lengths = {k: len(v) for k, v in obj.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"{path.name}: an object of column arrays needs arrays of equal length, got lengths {lengths}"
        )
    keys = list(obj)
    return [(i + 1, {k: obj[k][i] for k in keys}) for i in range(next(iter(lengths.values())))]


def _jsonl_rows(text: str) -> list[tuple[int, Any]]:
    rows: list[tuple[int, Any]] = []
    for number, line in enumerate(text.split("\n"), 1):  # not splitlines: U+2028 is legal inside JSON
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as e:
            rows.append(
                (number, RowError(f"line is not valid JSON ({e.msg} at column {e.colno})", "not valid JSON"))
            )
    return rows


def _csv_rows(path: Path, text: str, delimiter: str) -> list[tuple[int, Any]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long answers exceed the 128 KB default
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
        records = [record for record in reader if record]
    except csv.Error as e:
        raise ValueError(f"{path.name} is not readable as CSV at line {reader.line_num}: {e}") from None
    header = [name.strip() for name in header]
    if not any(header):
        raise ValueError(f"{path.name}: the first line must be a header naming the columns")
    rows: list[tuple[int, Any]] = []
    for number, record in enumerate(records, 1):
        if len(record) != len(header):
            reason = f"has {len(record)} fields, the header has {len(header)}"
            rows.append((number, RowError(reason, "wrong number of fields")))
        else:
            rows.append((number, dict(zip(header, record, strict=True))))
    return rows


def _parquet_rows(path: Path) -> list[tuple[int, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise ValueError(f"{path.name} is not a readable Parquet file: {e}") from None
    return list(enumerate(table.to_pylist(), 1))
