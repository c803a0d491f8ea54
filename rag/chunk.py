"""Token-aware chunking: documents -> chunks of at most `chunk_size` embedder tokens.

A document is cut into sentences (paragraph ends remembered); sentences longer than a chunk are cut into
token windows. Sentences are then packed greedily into chunks, each chunk ending at a paragraph end when one
lies in its second half, and the next chunk starts with the last whole sentences of the previous one up to
`overlap` tokens. Token counts come from the embedder's own tokenizer through `token_spans(text)`, a function
returning the character span of every token, so the chunker can be tested with any stand-in.

    >>> from rag.chunk import chunk_document, whitespace_spans
    >>> from rag.readers import Document
    >>> [c.text for c in chunk_document(Document("a.txt", "One two. Three four."), whitespace_spans, 3, 0)]
    ['One two.', 'Three four.']
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

from rag.readers import Document, citation

TokenSpans = Callable[[str], list[tuple[int, int]]]

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|(?<=[。！？])\s*|\n+")


@dataclass(slots=True)
class Chunk:
    """A piece of a document that is embedded and retrieved as a whole.

    `start`/`end` are character offsets of `text` in the document's text (a page for PDFs, a section for
    headed formats, a line or row for record-wise reading); `hash` identifies the text for re-use.
    """

    source: str
    text: str
    start: int
    end: int
    tokens: int
    hash: str
    page: int | None = None
    heading: str | None = None
    record: str | None = None

    @property
    def citation(self) -> str:
        return citation(self.source, self.page, self.record)


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    paragraph_end: bool


def whitespace_spans(text: str) -> list[tuple[int, int]]:
    """A stand-in tokenizer: one token per whitespace-separated word."""
    return [m.span() for m in re.finditer(r"\S+", text)]


def hf_token_spans(tokenizer) -> TokenSpans:
    """Token spans from a Hugging Face fast tokenizer (the embedder's own), without special tokens."""

    def spans(text: str) -> list[tuple[int, int]]:
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [tuple(span) for span in encoded["offset_mapping"] if span[1] > span[0]]

    return spans


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def chunk_document(doc: Document, token_spans: TokenSpans, chunk_size: int, overlap: int) -> list[Chunk]:
    """Cut one document into chunks of at most `chunk_size` tokens, `overlap` tokens of whole sentences shared."""
    spans = token_spans(doc.text)
    if not spans:
        return []
    units = _units(doc.text, spans, chunk_size)
    chunks = []
    for first, last in _pack(units, chunk_size, overlap):
        start, end = units[first].start, units[last - 1].end
        text = doc.text[start:end]
        tokens = sum(u.tokens for u in units[first:last])
        chunks.append(
            Chunk(doc.source, text, start, end, tokens, text_hash(text), doc.page, doc.heading, doc.record)
        )
    return chunks


def _units(text: str, spans: list[tuple[int, int]], chunk_size: int) -> list[_Unit]:
    """Sentences (with paragraph ends marked); a sentence longer than a chunk becomes token windows."""
    starts = [s for s, _ in spans]
    units: list[_Unit] = []
    for p_start, p_end in _pieces(text, _PARAGRAPH_BREAK, 0, len(text)):
        sentences = list(_pieces(text, _SENTENCE_END, p_start, p_end))
        for index, (s_start, s_end) in enumerate(sentences):
            first, last = bisect_left(starts, s_start), bisect_left(starts, s_end)
            if last == first:
                continue
            para_end = index == len(sentences) - 1
            for w in range(first, last, chunk_size):
                w_last = min(w + chunk_size, last)
                units.append(
                    _Unit(spans[w][0], spans[w_last - 1][1], w_last - w, para_end and w_last == last)
                )
    return units


def _pieces(text: str, separator: re.Pattern, start: int, end: int):
    """Non-blank (start, end) spans of text[start:end] between separator matches, trimmed of whitespace."""
    cursor = start
    for match in separator.finditer(text, start, end):
        yield from _trimmed(text, cursor, match.start())
        cursor = match.end()
    yield from _trimmed(text, cursor, end)


def _trimmed(text: str, start: int, end: int):
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        lead = len(piece) - len(piece.lstrip())
        yield start + lead, start + lead + len(stripped)


def _pack(units: list[_Unit], chunk_size: int, overlap: int) -> list[tuple[int, int]]:
    """Group unit indexes into chunks [first, last): full chunks, cut at a paragraph end when one is late enough."""
    groups = []
    first = 0
    while first < len(units):
        last, total = first, 0
        while last < len(units) and total + units[last].tokens <= chunk_size:
            total += units[last].tokens
            last += 1
        last = max(last, first + 1)
        last = _paragraph_cut(units, first, last, chunk_size)
        groups.append((first, last))
        if last >= len(units):
            break
        first = _overlap_start(units, first, last, overlap)
    return groups


def _paragraph_cut(units: list[_Unit], first: int, last: int, chunk_size: int) -> int:
    if last >= len(units) or units[last - 1].paragraph_end:
        return last
    total = sum(u.tokens for u in units[first:last])
    for cut in range(last - 1, first, -1):
        total -= units[cut].tokens
        if total < chunk_size // 2:
            break
        if units[cut - 1].paragraph_end:
            return cut
    return last


def _overlap_start(units: list[_Unit], first: int, last: int, overlap: int) -> int:
    """Where the next chunk starts: back over whole units worth at most `overlap` tokens, always moving on."""
    start, shared = last, 0
    while start - 1 > first and shared + units[start - 1].tokens <= overlap:
        shared += units[start - 1].tokens
        start -= 1
    return start
