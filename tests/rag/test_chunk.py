"""Chunking: sizes, overlaps, paragraph and sentence boundaries, offsets and metadata."""

from __future__ import annotations

import itertools

import pytest

from rag.chunk import chunk_document, text_hash, whitespace_spans
from rag.readers import Document


def _sentences(count: int, words: int = 5, paragraph_every: int = 0) -> str:
    parts = []
    for i in range(count):
        parts.append(" ".join([f"w{i}"] * (words - 1)) + f" s{i}.")
        if paragraph_every and (i + 1) % paragraph_every == 0:
            parts.append("\n\n")
        else:
            parts.append(" ")
    return "".join(parts).strip()


@pytest.mark.parametrize(("size", "overlap"), [(12, 0), (12, 5), (20, 10), (7, 6)])
def test_chunks_respect_size_and_share_whole_sentences(size, overlap):
    doc = Document("a.txt", _sentences(30))
    chunks = chunk_document(doc, whitespace_spans, size, overlap)
    assert all(c.tokens <= size for c in chunks)
    assert all(len(c.text.split()) == c.tokens for c in chunks)
    for previous, current in itertools.pairwise(chunks):
        shared = previous.end - current.start
        assert current.start > previous.start  # always moves on
        if overlap == 0:
            assert shared < 0  # no shared text
        else:
            shared_words = len(doc.text[current.start : previous.end].split()) if shared > 0 else 0
            assert shared_words <= overlap
            # Whole 5-word sentences, as many as fit, but never the whole previous chunk.
            assert shared_words == 5 * min(overlap // 5, size // 5 - 1)
    # Every sentence is in some chunk.
    covered = " ".join(c.text for c in chunks)
    assert all(f"s{i}." in covered for i in range(30))


def test_offsets_point_into_the_document_and_metadata_is_copied():
    doc = Document(
        "book.pdf", "  Intro line.\n\n" + _sentences(12, paragraph_every=3), page=4, heading="Ch 1"
    )
    chunks = chunk_document(doc, whitespace_spans, 10, 0)
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert (chunk.source, chunk.page, chunk.heading, chunk.record) == ("book.pdf", 4, "Ch 1", None)
        assert chunk.hash == text_hash(chunk.text)
        assert chunk.citation == "book.pdf, page 4"
    assert chunks[0].start == 2 and chunks[0].text.startswith("Intro line.\n\nw0")


def test_chunks_end_at_paragraph_ends_when_one_is_late_enough():
    # Paragraphs of 3 sentences (15 words); chunks of 40 words would fit 8 sentences but stop after 6.
    doc = Document("a.txt", _sentences(12, paragraph_every=3))
    chunks = chunk_document(doc, whitespace_spans, 40, 0)
    assert [c.tokens for c in chunks] == [30, 30]
    assert all(c.text.endswith(("s5.", "s11.")) for c in chunks)


def test_a_paragraph_end_too_early_is_not_used():
    text = "Short one.\n\n" + _sentences(10)
    chunks = chunk_document(Document("a.txt", text), whitespace_spans, 20, 0)
    assert chunks[0].text.startswith("Short one.\n\nw0")  # not cut after 2 of 20 tokens


def test_overlong_sentence_falls_back_to_token_windows():
    words = [f"t{i}" for i in range(25)]
    chunks = chunk_document(Document("a.txt", " ".join(words)), whitespace_spans, 10, 3)
    assert [c.tokens for c in chunks] == [10, 10, 5]
    assert chunks[1].text.split()[0] == "t10"


def test_empty_document_has_no_chunks():
    assert chunk_document(Document("a.txt", "   \n "), whitespace_spans, 10, 2) == []


def test_real_tokenizer_counts_embedder_tokens(embedder):
    text = "Photosynthesis converts light energy into chemical energy. " * 40
    chunks = chunk_document(Document("bio.txt", text.strip()), embedder.token_spans(), 50, 10)
    tokenizer = embedder.model.tokenizer
    for chunk in chunks:
        real = len(tokenizer(chunk.text, add_special_tokens=False)["input_ids"])
        assert real == chunk.tokens <= 50
    assert len(chunks) > 5
