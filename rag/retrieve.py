"""Retrieval over an index's vectors and chunks: dense top-k, minimum score, MMR, hybrid BM25 + RRF.

`KnowledgeBase.search` is the way in; the functions here take the FAISS index, the chunks and a query vector
so they can be tested and reused without a knowledge base.

Scores: `similarity` is always the cosine similarity of query and chunk (vectors are unit length);
`score` is what the ranking used: the similarity for dense search, the reciprocal-rank-fusion score for
hybrid search. `min_score` filters on the similarity in both modes.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.chunk import Chunk
from rag.store import vectors_at

RRF_K = 60


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk: `rank` from 1, the ranking `score`, the cosine `similarity`, and the chunk."""

    rank: int
    score: float
    similarity: float
    chunk: Chunk

    @property
    def source(self) -> str:
        return self.chunk.source

    @property
    def page(self) -> int | None:
        return self.chunk.page

    @property
    def text(self) -> str:
        return self.chunk.text

    @property
    def citation(self) -> str:
        return self.chunk.citation

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `python -m rag query --json`."""
        c = self.chunk
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "source": c.source,
            "page": c.page,
            "text": c.text,
            "record": c.record,
            "heading": c.heading,
            "similarity": round(self.similarity, 6),
        }


class Bm25:
    """A BM25 (bm25s) index over chunk texts; row i = chunk i, like the FAISS index."""

    def __init__(self, texts: list[str]) -> None:
        import bm25s

        self.count = len(texts)
        self._bm25 = bm25s.BM25()
        if texts:
            tokens = bm25s.tokenize(texts, stopwords="en", show_progress=False)
            self._bm25.index(tokens, show_progress=False)

    def search(self, query: str, k: int) -> list[int]:
        """Rows of the best-matching chunks, best first; chunks sharing no word with the query are left out."""
        import bm25s

        if self.count == 0:
            return []
        tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)
        if not tokens[0]:
            return []
        rows, scores = self._bm25.retrieve(tokens, k=min(k, self.count), show_progress=False)
        return [int(r) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]


def dense_rows(index, query: np.ndarray, k: int) -> list[int]:
    """Rows of the `k` nearest vectors by inner product, best first."""
    if index.ntotal == 0:
        return []
    with _one_omp_thread():
        _, rows = index.search(query.reshape(1, -1).astype(np.float32), min(k, index.ntotal))
    return [int(r) for r in rows[0] if r >= 0]


@contextmanager
def _one_omp_thread():
    """Run one query's search on one OpenMP thread (the setting is per calling thread).

    On a small shared machine OpenMP workers spin-waiting for busy cores made a single flat query at 100k
    chunks 2-3x slower than one thread doing it all (see BENCHMARKS.md, rag section).
    """
    import faiss

    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def rrf(rankings: list[list[int]], k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion: each row scores the sum of 1 / (k + rank) over the rankings it appears in."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + 1.0 / (k + rank)
    return fused


def mmr(query: np.ndarray, vectors: np.ndarray, k: int, lambda_: float = 0.5) -> list[int]:
    """Maximal marginal relevance: positions in `vectors`, each pick relevant to the query and unlike earlier picks."""
    relevance = vectors @ query
    chosen: list[int] = []
    remaining = list(range(len(vectors)))
    while remaining and len(chosen) < k:
        if chosen:
            redundancy = (vectors[remaining] @ vectors[chosen].T).max(axis=1)
        else:
            redundancy = np.zeros(len(remaining))
        values = lambda_ * relevance[remaining] - (1 - lambda_) * redundancy
        chosen.append(remaining.pop(int(np.argmax(values))))
    return chosen


def retrieve(
    query: str,
    query_vector: np.ndarray,
    index,
    chunks: list[Chunk],
    k: int = 5,
    min_score: float | None = None,
    use_mmr: bool = False,
    mmr_lambda: float = 0.5,
    bm25: Bm25 | None = None,
    fetch_k: int | None = None,
) -> list[Hit]:
    """Top-`k` hits for one query. With `bm25`, dense and BM25 rankings are fused by RRF (hybrid search)."""
    fetch = fetch_k or (max(4 * k, 20) if (use_mmr or bm25 is not None) else k)
    dense = dense_rows(index, query_vector, fetch)
    if bm25 is not None:
        fused = rrf([dense, bm25.search(query, fetch)])
        rows = sorted(fused, key=lambda r: -fused[r])
    else:
        rows, fused = dense, None
    vectors = vectors_at(index, rows)
    similarity = vectors @ query_vector if len(rows) else np.zeros(0)
    keep = [i for i in range(len(rows)) if min_score is None or similarity[i] >= min_score]
    if use_mmr:
        picks = [keep[p] for p in mmr(query_vector, vectors[keep], k, mmr_lambda)] if keep else []
    else:
        picks = keep[:k]
    return [
        Hit(rank, fused[rows[i]] if fused else float(similarity[i]), float(similarity[i]), chunks[rows[i]])
        for rank, i in enumerate(picks, start=1)
    ]
