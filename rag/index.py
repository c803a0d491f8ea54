"""The knowledge base: a persistent FAISS index of document chunks that updates as documents change.

    from rag import Embedder, IndexConfig, KnowledgeBase
    kb = KnowledgeBase.open("workspace/indexes/manuals", Embedder.load(), IndexConfig(chunk_size=200))
    report = kb.add_paths(["manual.pdf", "faq.zip"], progress=lambda done, total, msg: ...)
    hits = kb.search("How do I reset it?", k=5, hybrid=True)

Every change (`add_paths`, `remove`) is saved at once, atomically (see `rag.store`); if it fails, the
knowledge base on disk and in memory stays as it was before the call. Re-adding a file whose bytes did not
change does nothing; a changed file has its chunks replaced, and chunks whose text is unchanged keep their
vectors instead of being embedded again. CLI: `python -m rag --help`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.workspace import Workspace
from rag.chunk import Chunk, chunk_document
from rag.config import IndexConfig, ReadOptions
from rag.embed import Embedder
from rag.ingest import PendingFile, collect, read_file
from rag.retrieve import Bm25, Hit, retrieve
from rag.store import (
    FORMAT_VERSION,
    all_vectors,
    build_faiss,
    choose_kind,
    folder_stats,
    index_kind,
    is_index_dir,
    read_index_dir,
    recall_at_k,
    recover_interrupted_save,
    vectors_at,
    write_index_dir,
)

Progress = Callable[[int, int, str], None]


@dataclass
class AddReport:
    """What one `add_paths` call did. `errors` and `skipped` hold one message per file, naming it."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    embedded: int = 0
    reused: int = 0

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.replaced)} replaced, {len(self.unchanged)} unchanged, "
            f"{len(self.skipped)} skipped, {len(self.errors)} failed; {self.chunks_added} chunks in "
            f"({self.embedded} embedded, {self.reused} reused), {self.chunks_removed} out"
        )


@dataclass(frozen=True)
class SourceInfo:
    """One indexed file: its chunk count and how many documents (pages, sections, lines, rows) it gave."""

    source: str
    chunks: int
    documents: int
    hash: str


class KnowledgeBase:
    """Chunks of documents, their vectors in FAISS (row i = chunk i) and a manifest, kept in one folder.

    Build one with `create`, `load` or `open`, not with the constructor.
    """

    def __init__(
        self,
        path: Path,
        embedder: Embedder,
        manifest: dict[str, Any],
        index,
        chunks: list[Chunk],
        workspace: Workspace | None = None,
    ) -> None:
        self.path = Path(path)
        self.embedder = embedder
        self.config = IndexConfig.from_dict(manifest["config"])
        self.workspace = workspace
        self._manifest = manifest
        self._index = index
        self._chunks = chunks
        self._bm25: Bm25 | None = None
        self._set_ef_search()

    # -- opening ---------------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        embedder: Embedder,
        config: IndexConfig | None = None,
        workspace: Workspace | None = None,
    ) -> KnowledgeBase:
        """A new, empty knowledge base saved at `path`. Raises ValueError if one is already there."""
        path, config = Path(path), config or IndexConfig()
        recover_interrupted_save(path)
        if is_index_dir(path):
            raise ValueError(f"{path} already holds a knowledge base; load it, or choose another folder")
        if path.exists() and any(path.iterdir()):
            raise ValueError(f"{path} is a folder with other files in it; choose an empty or new folder")
        limit = embedder.max_tokens
        if limit is not None and config.chunk_size + 2 > limit:
            raise ValueError(
                f"chunk_size {config.chunk_size} does not fit embedder {embedder.model_id!r}, which reads at most "
                f"{limit} tokens (2 of them special); use chunk_size <= {limit - 2}"
            )
        now = time.time()
        manifest = {
            "format_version": FORMAT_VERSION,
            "embedder": embedder.model_id,
            "dimension": embedder.dimension,
            "config": config.to_dict(),
            "index": {"kind": choose_kind(config, 0)},
            "documents": {},
            "chunks": 0,
            "created": now,
            "updated": now,
        }
        kb = cls(
            path,
            embedder,
            manifest,
            build_faiss(np.zeros((0, 1)), embedder.dimension, manifest["index"]["kind"], config),
            [],
            workspace,
        )
        kb._save()
        return kb

    @classmethod
    def load(cls, path: str | Path, embedder: Embedder, workspace: Workspace | None = None) -> KnowledgeBase:
        """The knowledge base saved at `path`. Raises ValueError if it was built with another embedder."""
        manifest, index, chunks = read_index_dir(Path(path))
        if manifest["embedder"] != embedder.model_id or manifest["dimension"] != embedder.dimension:
            raise ValueError(
                f"{path} was built with embedder {manifest['embedder']!r} ({manifest['dimension']} dimensions), "
                f"not {embedder.model_id!r} ({embedder.dimension}); load it with that embedder or rebuild the index"
            )
        return cls(Path(path), embedder, manifest, index, chunks, workspace)

    @classmethod
    def open(
        cls,
        path: str | Path,
        embedder: Embedder,
        config: IndexConfig | None = None,
        workspace: Workspace | None = None,
    ) -> KnowledgeBase:
        """Load the knowledge base at `path`, or create it. A `config` unlike the stored one is a ValueError."""
        recover_interrupted_save(Path(path))
        if not is_index_dir(Path(path)):
            return cls.create(path, embedder, config, workspace)
        kb = cls.load(path, embedder, workspace)
        if config is not None and config != kb.config:
            stored, wanted = kb.config.to_dict(), config.to_dict()
            diff = ", ".join(
                f"{k}={stored[k]!r} (asked {wanted[k]!r})" for k in stored if stored[k] != wanted[k]
            )
            raise ValueError(f"{path} was built with {diff}; use those settings or build a new index folder")
        return kb

    # -- inspecting ------------------------------------------------------------------------------------
    @property
    def chunks(self) -> list[Chunk]:
        return list(self._chunks)

    def documents(self) -> list[SourceInfo]:
        """Indexed files, sorted by name."""
        docs = self._manifest["documents"]
        return [SourceInfo(s, d["chunks"], d["documents"], d["hash"]) for s, d in sorted(docs.items())]

    def stats(self) -> dict[str, Any]:
        """Counts and settings: sources (files), documents, chunks, index kind (and HNSW recall), size on disk."""
        return folder_stats(self.path, self._manifest)

    # -- searching -------------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        k: int = 5,
        min_score: float | None = None,
        mmr: bool = False,
        hybrid: bool = False,
        mmr_lambda: float = 0.5,
    ) -> list[Hit]:
        """The `k` best chunks for `query` (see `rag.retrieve` for what the scores mean).

        Raises:
            ValueError: empty query, k not a positive integer, min_score outside [-1, 1], mmr_lambda outside [0, 1].
        """
        if not query or not query.strip():
            raise ValueError("query is empty; type a question")
        if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if min_score is not None and not -1.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be between -1 and 1 (cosine similarity), got {min_score!r}")
        if not 0.0 <= mmr_lambda <= 1.0:
            raise ValueError(f"mmr_lambda must be between 0 and 1, got {mmr_lambda!r}")
        vector = self.embedder.encode_query(query)
        bm25 = self._bm25_index() if hybrid else None
        return retrieve(query, vector, self._index, self._chunks, k, min_score, mmr, mmr_lambda, bm25)

    def _bm25_index(self) -> Bm25:
        if self._bm25 is None:
            self._bm25 = Bm25([c.text for c in self._chunks])
        return self._bm25

    # -- changing --------------------------------------------------------------------------------------
    def add_paths(
        self,
        paths: Iterable[str | Path],
        options: ReadOptions | None = None,
        progress: Progress | None = None,
    ) -> AddReport:
        """Add or update files, folders and .zip archives. Bad files are reported in the result, not raised."""
        options = options or ReadOptions()
        pending, errors = collect(paths, options)
        report = AddReport(errors=errors)
        owner = {d["hash"]: s for s, d in self._manifest["documents"].items()}
        fresh: dict[str, tuple[str, list[Chunk], int]] = {}
        if progress:
            progress(0, len(pending), "reading files")
        for done, item in enumerate(pending, start=1):
            entry = self._read_one(item, options, owner, report)
            if entry is not None:
                owner[entry[0]] = item.source
                fresh[item.source] = entry
            if progress:
                progress(done, len(pending), "reading files")
        if fresh:
            self._apply(fresh, report, progress)
        return report

    def _read_one(
        self, item: PendingFile, options: ReadOptions, owner: dict[str, str], report: AddReport
    ) -> tuple[str, list[Chunk], int] | None:
        """(hash, chunks, document count) of a new or changed file; None (noted in `report`) otherwise."""
        try:
            docs, digest = read_file(item, options)
        except ValueError as exc:
            report.errors.append(str(exc))
            return None
        known = self._manifest["documents"].get(item.source)
        if known and known["hash"] == digest:
            report.unchanged.append(item.source)
            return None
        if owner.get(digest, item.source) != item.source:
            report.skipped.append(f"{item.source}: same content as {owner[digest]}, already indexed; skipped")
            return None
        size, overlap, spans = self.config.chunk_size, self.config.overlap, self.embedder.token_spans()
        chunks = [c for d in docs for c in chunk_document(d, spans, size, overlap)]
        if not chunks:
            report.errors.append(f"{item.source}: has no text to index")
            return None
        return digest, chunks, len(docs)

    def remove(self, source: str) -> int:
        """Remove a file's chunks (or every file under a folder or archive name). Returns chunks removed."""
        docs = self._manifest["documents"]
        prefix = source.rstrip("/") + "/"
        gone = [s for s in docs if s == source or s.startswith(prefix)]
        if not gone:
            names = ", ".join(sorted(docs)[:10]) or "(none)"
            raise ValueError(
                f"{source!r} is not in the knowledge base at {self.path}; indexed sources: {names}"
            )
        before = len(self._chunks)
        self._change(set(gone), {}, np.zeros((0, self.embedder.dimension), dtype=np.float32))
        return before - len(self._chunks)

    def _apply(
        self, fresh: dict[str, tuple[str, list[Chunk], int]], report: AddReport, progress: Progress | None
    ) -> None:
        """Embed what is new (re-using vectors of unchanged chunk texts), then swap the chunks in and save."""
        replaced = {s for s in fresh if s in self._manifest["documents"]}
        reusable = {c.hash: row for row, c in enumerate(self._chunks) if c.source in replaced}
        new_chunks = [c for _, chunks, _ in fresh.values() for c in chunks]
        texts = {c.hash: c.text for c in new_chunks if c.hash not in reusable}
        encoded = self.embedder.encode(list(texts.values()), self.config.batch_size, progress)
        by_hash = dict(zip(texts, encoded, strict=True))
        reused_rows = [reusable[c.hash] for c in new_chunks if c.hash in reusable]
        by_hash.update(
            zip(
                (self._chunks[r].hash for r in reused_rows), vectors_at(self._index, reused_rows), strict=True
            )
        )
        vectors = np.vstack([by_hash[c.hash] for c in new_chunks]).astype(np.float32)
        report.chunks_removed = sum(1 for c in self._chunks if c.source in replaced)
        report.chunks_added, report.embedded, report.reused = len(new_chunks), len(texts), len(reused_rows)
        report.replaced = sorted(replaced)
        report.added = [s for s in fresh if s not in replaced]
        entries = {s: {"hash": h, "chunks": len(cs), "documents": n} for s, (h, cs, n) in fresh.items()}
        if progress:
            progress(0, 1, "saving index")
        self._change(replaced, entries, vectors, new_chunks)
        if progress:
            progress(1, 1, "saving index")

    def _change(
        self,
        drop: set[str],
        entries: dict[str, dict],
        vectors: np.ndarray,
        new_chunks: list[Chunk] | None = None,
    ) -> None:
        """Drop sources, append chunks with their vectors, save; on any failure restore the saved state."""
        new_chunks = new_chunks or []
        try:
            keep = [row for row, c in enumerate(self._chunks) if c.source not in drop]
            total = len(keep) + len(new_chunks)
            kind = choose_kind(self.config, total)
            if len(keep) < len(self._chunks) or kind != index_kind(self._index):
                stored = all_vectors(self._index)[keep]
                self._index = build_faiss(
                    np.vstack([stored, vectors]), self.embedder.dimension, kind, self.config
                )
            elif len(vectors):
                self._index.add(vectors)
            self._chunks = [self._chunks[r] for r in keep] + new_chunks
            docs = {s: d for s, d in self._manifest["documents"].items() if s not in drop}
            now = time.time()
            docs.update({s: {**e, "updated": now} for s, e in entries.items()})
            self._manifest.update(documents=docs, chunks=len(self._chunks), updated=now)
            self._bm25 = None
            self._save()
        except BaseException:
            self._restore()
            raise

    def _save(self) -> None:
        self._manifest["index"] = {"kind": index_kind(self._index)}
        if index_kind(self._index) == "hnsw":
            self._manifest["index"]["recall_at_10"] = round(
                recall_at_k(self._index, all_vectors(self._index)), 4
            )
        write_index_dir(self.path, self._manifest, self._index, self._chunks)
        if self.workspace is not None:
            self.workspace.record_index(
                self.path.name,
                self.path,
                self._manifest["embedder"],
                len(self._manifest["documents"]),
                len(self._chunks),
            )

    def _restore(self) -> None:
        manifest, self._index, self._chunks = read_index_dir(self.path)
        self._manifest = manifest
        self._bm25 = None
        self._set_ef_search()

    def _set_ef_search(self) -> None:
        if index_kind(self._index) == "hnsw":
            self._index.hnsw.efSearch = self.config.hnsw_ef_search
