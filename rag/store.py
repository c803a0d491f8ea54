"""An index folder on disk, and the FAISS side of it.

    <index dir>/
      manifest.json    embedder id and dimension, chunking and index settings, documents and their hashes
      index.faiss      the vectors (row i = chunk i), written by faiss.write_index
      chunks.parquet   chunk text and metadata, one row per vector

Nothing is pickled. A save builds a complete new folder beside the old one and swaps it in
(`common.atomic.atomic_dir`), so a crash mid-save leaves the previous index as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from common.atomic import atomic_dir
from rag.chunk import Chunk
from rag.config import IndexConfig

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FAISS_FILE = "index.faiss"
CHUNKS_FILE = "chunks.parquet"
_CHUNK_FIELDS = ("source", "text", "start", "end", "tokens", "hash", "page", "heading", "record")


def is_index_dir(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def recover_interrupted_save(path: Path) -> None:
    """Put back the previous index if a save died between moving it aside and moving the new one in.

    `atomic_dir` swaps folders with two renames; in the instant between them only `.<name>.old` exists.
    """
    path = Path(path)
    old = path.with_name(f".{path.name}.old")
    if is_index_dir(path) or not is_index_dir(old):
        return
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
    if not path.exists():
        os.replace(old, path)


def folder_stats(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Counts and settings of an index folder, from its manifest, plus its size on disk."""
    docs = manifest["documents"].values()
    config = manifest["config"]
    return {
        "path": str(path),
        "embedder": manifest["embedder"],
        "dimension": manifest["dimension"],
        "index": manifest["index"]["kind"],
        "recall_at_10": manifest["index"].get("recall_at_10"),
        "sources": len(manifest["documents"]),
        "documents": sum(d["documents"] for d in docs),
        "chunks": manifest["chunks"],
        "chunk_size": config["chunk_size"],
        "overlap": config["overlap"],
        "bytes_on_disk": sum(f.stat().st_size for f in Path(path).iterdir() if f.is_file()),
        "updated": manifest["updated"],
    }


def stats_at(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Stats and per-source rows of the index at `path`, read from its manifest alone (no embedder needed)."""
    manifest = read_manifest(Path(path))
    sources = [{"source": s, **d} for s, d in sorted(manifest["documents"].items())]
    return folder_stats(Path(path), manifest), sources


# -- FAISS -----------------------------------------------------------------------------------------------
def choose_kind(config: IndexConfig, count: int) -> str:
    """flat or hnsw for an index of `count` vectors under `config.index_type`."""
    if config.index_type != "auto":
        return config.index_type
    return "hnsw" if count >= config.hnsw_threshold else "flat"


def build_faiss(vectors: np.ndarray, dimension: int, kind: str, config: IndexConfig):
    """A new inner-product index (exact flat or HNSW) holding `vectors` in order."""
    import faiss

    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.hnsw_ef_construction
        index.hnsw.efSearch = config.hnsw_ef_search
    else:
        index = faiss.IndexFlatIP(dimension)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def index_kind(index) -> str:
    return "hnsw" if hasattr(index, "hnsw") else "flat"


def all_vectors(index) -> np.ndarray:
    """Every stored vector, in row order (flat and HNSW-flat indexes keep them uncompressed)."""
    if index.ntotal == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    return index.reconstruct_n(0, index.ntotal)


def vectors_at(index, rows: list[int]) -> np.ndarray:
    if not rows:
        return np.zeros((0, index.d), dtype=np.float32)
    return np.vstack([index.reconstruct(int(r)) for r in rows])


def recall_at_k(index, vectors: np.ndarray, k: int = 10, queries: int = 200, seed: int = 0) -> float:
    """Recall@k of `index` against exact search, on noisy copies of stored vectors as queries."""
    import faiss

    count = len(vectors)
    if count == 0:
        return 1.0
    rng = np.random.default_rng(seed)
    picks = rng.choice(count, size=min(queries, count), replace=False)
    noisy = vectors[picks] + rng.normal(0, 0.05, size=(len(picks), vectors.shape[1])).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    k = min(k, count)
    _, exact = faiss.knn(noisy, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
    _, approx = index.search(noisy, k)
    found = sum(len(set(a) & set(e)) for a, e in zip(approx.tolist(), exact.tolist(), strict=True))
    return found / exact.size


# -- files -----------------------------------------------------------------------------------------------
def write_index_dir(path: Path, manifest: dict[str, Any], index, chunks: list[Chunk]) -> None:
    """Write a whole index folder atomically: all three files appear together or not at all."""
    import faiss

    with atomic_dir(path) as tmp:
        faiss.write_index(index, str(tmp / FAISS_FILE))
        _write_chunks(tmp / CHUNKS_FILE, chunks)
        (tmp / MANIFEST).write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the index folder at `path`. Raises ValueError if there is none or it is damaged."""
    path = Path(path)
    if not is_index_dir(path):
        raise ValueError(
            f"{path} is not a knowledge base (no {MANIFEST}); build one with `python -m rag index`"
        )
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: {MANIFEST} is damaged ({exc}); rebuild the index") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: index format {manifest.get('format_version')!r} is not {FORMAT_VERSION}; rebuild it"
        )
    return manifest


def read_index_dir(path: Path) -> tuple[dict[str, Any], Any, list[Chunk]]:
    """(manifest, FAISS index, chunks) of an index folder. Raises ValueError if it is not one or is damaged."""
    import faiss

    path = Path(path)
    manifest = read_manifest(path)
    try:
        index = faiss.read_index(str(path / FAISS_FILE))
        chunks = _read_chunks(path / CHUNKS_FILE)
    except (OSError, RuntimeError) as exc:
        raise ValueError(f"{path}: the knowledge base files are damaged ({exc}); rebuild the index") from exc
    if index.ntotal != len(chunks):
        raise ValueError(
            f"{path}: {index.ntotal} vectors but {len(chunks)} chunks; the index is damaged, rebuild it"
        )
    return manifest, index, chunks


def _write_chunks(path: Path, chunks: list[Chunk]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("source", pa.string()),
            ("text", pa.string()),
            ("start", pa.int64()),
            ("end", pa.int64()),
            ("tokens", pa.int32()),
            ("hash", pa.string()),
            ("page", pa.int32()),
            ("heading", pa.string()),
            ("record", pa.string()),
        ]
    )
    columns = {name: [getattr(c, name) for c in chunks] for name in _CHUNK_FIELDS}
    pq.write_table(pa.table(columns, schema=schema), path)


def _read_chunks(path: Path) -> list[Chunk]:
    import pyarrow.parquet as pq

    columns = pq.read_table(path).to_pydict()
    return [Chunk(*values) for values in zip(*(columns[name] for name in _CHUNK_FIELDS), strict=True)]
