"""Augmentation: numbered sources, shared numbers per place, the token budget, and its errors."""

from __future__ import annotations

import pytest

from rag.augment import SYSTEM_PROMPT, augment
from rag.chunk import Chunk
from rag.retrieve import Hit


def _hit(rank: int, source: str, text: str, page: int | None = None) -> Hit:
    return Hit(rank, 1.0 - rank / 10, 1.0 - rank / 10, Chunk(source, text, 0, len(text), 0, "h", page))


def words(text: str) -> int:
    return len(text.split())


HITS = [
    _hit(1, "manual.pdf", "Hold the reset button for ten seconds.", page=4),
    _hit(2, "faq.md", "The warranty lasts two years."),
    _hit(3, "manual.pdf", "The reset clears all settings.", page=4),
    _hit(4, "manual.pdf", "Firmware updates run at night.", page=9),
]


def test_sources_are_numbered_and_hits_from_one_place_share_a_number():
    result = augment("How do I reset it?", HITS, budget_tokens=1000, count_tokens=words)
    assert [(s.number, s.label) for s in result.sources] == [
        (1, "manual.pdf, page 4"),
        (2, "faq.md"),
        (3, "manual.pdf, page 9"),
    ]
    assert result.sources[0].excerpts == [
        "Hold the reset button for ten seconds.",
        "The reset clears all settings.",
    ]
    system, user = result.messages
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert "cite" in system["content"].lower()
    assert user["role"] == "user"
    assert user["content"].startswith("Sources:\n\n[1] manual.pdf, page 4\nHold the reset button")
    assert "[2] faq.md\nThe warranty lasts two years." in user["content"]
    assert user["content"].endswith("Question: How do I reset it?")
    assert result.left_out == []


@pytest.mark.parametrize("budget", [80, 95, 110, 130])
def test_messages_fit_the_budget_and_the_rest_is_left_out(budget):
    long_hits = [_hit(i, f"doc{i}.txt", " ".join(f"w{i}x{j}" for j in range(30))) for i in range(1, 6)]
    result = augment("What is in the documents?", long_hits, budget_tokens=budget, count_tokens=words)
    total = sum(words(m["content"]) for m in result.messages)
    assert total <= budget
    used = [h for s in result.sources for h in s.hits]
    assert used + result.left_out == long_hits
    assert result.left_out  # five 30-word chunks never fit in 130 tokens with the instructions


def test_a_source_that_does_not_fit_whole_is_cut_at_a_word():
    text = " ".join(f"word{i}" for i in range(200))
    result = augment("Q?", [_hit(1, "a.txt", text)], budget_tokens=120, count_tokens=words)
    excerpt = result.sources[0].excerpts[0]
    assert excerpt.endswith(" ...") and text.startswith(excerpt[:-4])
    assert sum(words(m["content"]) for m in result.messages) <= 120


def test_budget_with_a_real_tokenizer(embedder):
    tokenizer = embedder.model.tokenizer

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    hits = [
        _hit(i, f"doc{i}.txt", "Photosynthesis turns light into sugar in the leaves. " * 8) for i in range(6)
    ]
    result = augment("What does photosynthesis do?", hits, budget_tokens=300, count_tokens=count)
    assert sum(count(m["content"]) for m in result.messages) <= 300
    assert 1 <= len(result.sources) < 6


def test_no_hits_still_gives_a_prompt():
    result = augment("Anything?", [], budget_tokens=200, count_tokens=words)
    assert "(no sources found)" in result.messages[1]["content"] and result.sources == []


@pytest.mark.parametrize(
    ("question", "budget", "message"),
    [
        ("", 500, "question is empty"),
        ("Why?", 20, r"the question and instructions need \d+ tokens but budget_tokens is 20"),
    ],
)
def test_impossible_requests_are_clear_errors(question, budget, message):
    with pytest.raises(ValueError, match=message):
        augment(question, HITS, budget_tokens=budget, count_tokens=words)
