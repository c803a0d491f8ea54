"""The real corpus: wiki_demo.txt (30 Wikipedia articles, one per line) answers factual questions.

Default tier: the first 3,000 characters of every article (all 30 documents, fast to embed); the `slow`
tier indexes the whole file. The same question set drives `benchmarks/bench_rag.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import IndexConfig, KnowledgeBase, ReadOptions

WIKI = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "llamafactory" / "wiki_demo.txt"
QUESTIONS = json.loads(Path(__file__).with_name("wiki_questions.json").read_text(encoding="utf-8"))
HEAD_CHARS = 3000

pytestmark = pytest.mark.skipif(not WIKI.is_file(), reason=f"real corpus not found at {WIKI}")


def hit_rates(kb: KnowledgeBase, hybrid: bool = False) -> tuple[float, float]:
    """Share of questions whose article is the top hit, and among the top 5 hits."""
    at1 = at5 = 0
    for item in QUESTIONS:
        records = [h.chunk.record for h in kb.search(item["question"], k=5, hybrid=hybrid)]
        at1 += records[0] == f"line {item['line']}"
        at5 += f"line {item['line']}" in records
    return at1 / len(QUESTIONS), at5 / len(QUESTIONS)


def _build(folder: Path, embedder, text: str) -> KnowledgeBase:
    (folder / "wiki_demo.txt").write_text(text, encoding="utf-8")
    kb = KnowledgeBase.create(folder / "kb", embedder, IndexConfig())
    report = kb.add_paths([folder / "wiki_demo.txt"], ReadOptions(lines_as_documents=True))
    assert report.added == ["wiki_demo.txt"] and not report.errors
    return kb


@pytest.fixture(scope="module")
def wiki_heads(tmp_path_factory, embedder) -> KnowledgeBase:
    lines = WIKI.read_text(encoding="utf-8").splitlines()
    return _build(tmp_path_factory.mktemp("wiki"), embedder, "\n".join(line[:HEAD_CHARS] for line in lines))


def test_question_set_covers_every_article():
    assert sorted(q["line"] for q in QUESTIONS) == list(range(1, 31))


def test_wiki_lines_index_as_30_documents(wiki_heads):
    stats = wiki_heads.stats()
    assert (stats["sources"], stats["documents"]) == (1, 30)
    assert {c.record for c in wiki_heads.chunks} == {f"line {n}" for n in range(1, 31)}


@pytest.mark.parametrize("hybrid", [False, True], ids=["dense", "hybrid"])
def test_factual_questions_find_their_article(wiki_heads, hybrid):
    at1, at5 = hit_rates(wiki_heads, hybrid)
    print(f"wiki heads, {'hybrid' if hybrid else 'dense'}: hit@1 {at1:.2f}, hit@5 {at5:.2f}")
    assert at1 >= 0.8 and at5 >= 0.9


@pytest.mark.slow
def test_factual_questions_on_the_whole_corpus(tmp_path, embedder):
    kb = _build(tmp_path, embedder, WIKI.read_text(encoding="utf-8"))
    at1, at5 = hit_rates(kb)
    print(f"wiki full: hit@1 {at1:.2f}, hit@5 {at5:.2f}")
    assert at1 >= 0.7 and at5 >= 0.85
