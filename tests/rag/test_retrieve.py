"""Retrieval: RRF and MMR maths, minimum score, hybrid keyword matches, argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from rag import KnowledgeBase
from rag.retrieve import RRF_K, mmr, rrf


def test_rrf_adds_reciprocal_ranks():
    fused = rrf([[7, 3, 5], [3, 9]])
    assert fused[3] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert fused[7] == pytest.approx(1 / (RRF_K + 1))
    assert fused[9] == pytest.approx(1 / (RRF_K + 2))
    assert sorted(fused, key=lambda r: -fused[r]) == [3, 7, 9, 5]


def test_mmr_prefers_a_different_second_pick_over_a_near_duplicate():
    def unit(*v):
        v = np.array(v, dtype=np.float32)
        return v / np.linalg.norm(v)

    query = unit(1, 0, 0)
    vectors = np.stack([unit(0.95, 0.3, 0), unit(0.95, 0.31, 0), unit(0.8, 0, 0.6)])
    assert mmr(query, vectors, 2, lambda_=1.0) == [0, 1]  # pure relevance
    assert mmr(query, vectors, 2, lambda_=0.5) == [0, 2]  # diversity wins the second slot


def test_search_returns_ranked_scored_hits(kb):
    hits = kb.search("When is castling forbidden?", k=3)
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].source == "docs/chess.txt"
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and all(h.score == h.similarity for h in hits)
    assert hits[0].to_dict().keys() >= {"rank", "score", "source", "page", "text"}


def test_min_score_drops_weak_hits(kb):
    everything = kb.search("castling", k=50)
    assert len(everything) == len(kb.chunks)
    cutoff = everything[0].similarity - 1e-6
    strong = kb.search("castling", k=50, min_score=cutoff)
    assert [h.text for h in strong] == [everything[0].text]
    assert kb.search("castling", k=5, min_score=1.0) == []


def test_mmr_search_trades_near_duplicates_for_a_different_relevant_chunk(tmp_path, embedder, small_config):
    folder = tmp_path / "baking"
    folder.mkdir()
    texts = {
        "knead1.txt": "Knead the bread dough for ten minutes until it is smooth and elastic.",
        "knead2.txt": "Knead the bread dough for ten minutes until it becomes smooth and elastic.",
        "knead3.txt": "Knead your bread dough ten minutes, until smooth and elastic.",
        "bake.txt": "Bake the bread at 220 degrees for thirty minutes until the crust is brown.",
        "chess.txt": "Castling moves the king two squares towards a rook.",
    }
    for name, text in texts.items():
        (folder / name).write_text(text)
    kb = KnowledgeBase.create(tmp_path / "kb", embedder, small_config)
    kb.add_paths([folder])
    plain = [h.source for h in kb.search("how long to knead bread dough", k=3)]
    diverse = [h.source for h in kb.search("how long to knead bread dough", k=3, mmr=True, mmr_lambda=0.3)]
    assert sorted(plain) == ["baking/knead1.txt", "baking/knead2.txt", "baking/knead3.txt"]
    assert diverse[0] == plain[0] and "baking/bake.txt" in diverse


def test_hybrid_search_finds_an_exact_code_word(tmp_path, embedder, small_config):
    folder = tmp_path / "manuals"
    folder.mkdir()
    (folder / "router.txt").write_text(
        "Error QX-7781 means the router lost its uplink; restart the modem first."
    )
    for i, topic in enumerate(["printer paper jams", "router lights", "modem restart", "wifi passwords"]):
        (folder / f"other{i}.txt").write_text(
            f"Troubleshooting {topic}: check the cables and restart the device."
        )
    kb = KnowledgeBase.create(tmp_path / "kb", embedder, small_config)
    kb.add_paths([folder])
    hybrid = kb.search("QX-7781", k=3, hybrid=True)
    assert hybrid[0].source == "manuals/router.txt"
    # First by BM25 (the only chunk with the code) plus its dense rank among the 5 chunks.
    assert hybrid[0].score >= 1 / (RRF_K + 1) + 1 / (RRF_K + 5)
    assert all(h.score <= 2 / (RRF_K + 1) for h in hybrid)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": "  "}, "query is empty"),
        ({"query": "x", "k": 0}, "k must be a positive integer, got 0"),
        (
            {"query": "x", "min_score": 2.0},
            r"min_score must be between -1 and 1 \(cosine similarity\), got 2.0",
        ),
        ({"query": "x", "mmr": True, "mmr_lambda": 1.5}, "mmr_lambda must be between 0 and 1, got 1.5"),
    ],
)
def test_bad_search_arguments_are_named(kb, kwargs, message):
    with pytest.raises(ValueError, match=message):
        kb.search(**kwargs)
