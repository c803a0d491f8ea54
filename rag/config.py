"""Settings of a knowledge base (`IndexConfig`, stored in its manifest) and of one upload (`ReadOptions`).

The CLI (`python -m rag index ...`) and the app fill these same dataclasses; every check lives in
`__post_init__`, so a bad value fails early with the field name and the value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

IndexType = Literal["auto", "flat", "hnsw"]
INDEX_TYPES = ("auto", "flat", "hnsw")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass
class IndexConfig:
    """How documents are chunked and how vectors are indexed; fixed when the knowledge base is created."""

    chunk_size: int = field(default=200, metadata={"help": "Most embedder tokens per chunk."})
    overlap: int = field(
        default=40,
        metadata={"help": "Tokens of whole sentences repeated from the end of the previous chunk."},
    )
    index_type: IndexType = field(
        default="auto",
        metadata={
            "help": "flat: exact search; hnsw: approximate graph; auto: flat below hnsw_threshold chunks."
        },
    )
    hnsw_threshold: int = field(
        default=50_000, metadata={"help": "With index_type auto, switch to HNSW from this many chunks."}
    )
    hnsw_m: int = field(
        default=32, metadata={"help": "HNSW links per node (more: better recall, more memory)."}
    )
    hnsw_ef_construction: int = field(default=80, metadata={"help": "HNSW build-time search width."})
    hnsw_ef_search: int = field(
        default=128, metadata={"help": "HNSW query-time search width (more: better recall, slower)."}
    )
    batch_size: int = field(default=64, metadata={"help": "Chunks per embedder batch."})

    def __post_init__(self) -> None:
        for name in (
            "chunk_size",
            "hnsw_threshold",
            "hnsw_m",
            "hnsw_ef_construction",
            "hnsw_ef_search",
            "batch_size",
        ):
            _positive_int(name, getattr(self, name))
        if isinstance(self.overlap, bool) or not isinstance(self.overlap, int) or self.overlap < 0:
            raise ValueError(f"overlap must be a non-negative integer, got {self.overlap!r}")
        if self.overlap >= self.chunk_size:
            raise ValueError(
                f"overlap must be smaller than chunk_size ({self.chunk_size}), got {self.overlap!r}"
            )
        if self.index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be one of {', '.join(INDEX_TYPES)}, got {self.index_type!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class ReadOptions:
    """How the files of one upload are read into documents."""

    lines_as_documents: bool = field(
        default=False, metadata={"help": "Read each non-empty line of a .txt file as its own document."}
    )
    text_columns: tuple[str, ...] | None = field(
        default=None,
        metadata={
            "help": ".csv/.jsonl columns to index (default: every column holding text), as 'col: value'."
        },
    )
    max_file_mb: float = field(
        default=100.0, metadata={"help": "Largest single file (or archive member) read."}
    )
    max_archive_mb: float = field(
        default=500.0,
        metadata={"help": "Most uncompressed bytes read from one .zip (guards against zip bombs)."},
    )
    max_archive_files: int = field(default=10_000, metadata={"help": "Most members read from one .zip."})

    def __post_init__(self) -> None:
        if not isinstance(self.lines_as_documents, bool):
            raise ValueError(f"lines_as_documents must be true or false, got {self.lines_as_documents!r}")
        if self.text_columns is not None:
            if isinstance(self.text_columns, str) or not all(
                isinstance(c, str) and c.strip() for c in self.text_columns
            ):
                raise ValueError(f"text_columns must be a list of column names, got {self.text_columns!r}")
            self.text_columns = tuple(c.strip() for c in self.text_columns)
            if not self.text_columns:
                raise ValueError("text_columns must name at least one column, got an empty list")
        for name in ("max_file_mb", "max_archive_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        _positive_int("max_archive_files", self.max_archive_files)

    def fingerprint(self) -> str:
        """The options that change what is read from a file (part of each document's hash)."""
        return f"lines={self.lines_as_documents};columns={','.join(self.text_columns or ())}"
