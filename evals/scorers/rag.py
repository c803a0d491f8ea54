"""RAG scorers: does the answer cite the retrieved sources, and is it (by a proxy) supported by them?

`sources` is what retrieval gave the prompt: a list of dicts with at least {"n": int, "source": str,
"text": str}, where `n` is the number shown to the model as `[n]`.

`support_proxy` is a PROXY for groundedness, not a fact check: it measures how much of each answer sentence
overlaps (in content words, or in embedding space when an embedder is given) with the retrieved text. An
answer can copy words and still be wrong, or paraphrase and still be right.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from evals.scorers.base import Score, sentences, verdict, words
from evals.scorers.style import Embedder, embed_texts

_CITATION = re.compile(r"\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")
# fmt: off
_STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could", "did", "do", "does",
    "for", "from", "had", "has", "have", "he", "her", "his", "i", "if", "in", "into", "is", "it", "its",
    "me", "my", "no", "not", "of", "on", "or", "our", "she", "so", "such", "than", "that", "the", "their",
    "them", "then", "there", "these", "they", "this", "those", "to", "was", "we", "were", "what", "when",
    "where", "which", "who", "will", "with", "would", "you", "your",
})
# fmt: on


def check_sources(sources: Sequence[Mapping]) -> dict[int, str]:
    """{n: text} of `sources`; raises ValueError naming the entry that lacks an integer "n" or a "text"."""
    by_n = {}
    for i, src in enumerate(sources):
        if not isinstance(src, Mapping):
            raise ValueError(
                f"sources[{i}] must be a dict with 'n', 'source' and 'text', got {type(src).__name__}"
            )
        n, text = src.get("n"), src.get("text")
        if not isinstance(n, int) or isinstance(n, bool):
            raise ValueError(f"sources[{i}]['n'] must be an integer, got {n!r}")
        if not isinstance(text, str):
            raise ValueError(f"sources[{i}]['text'] must be a string, got {type(text).__name__}")
        by_n[n] = text
    return by_n


def citations(answer: str) -> list[int]:
    """Source numbers cited as [n], [n, m] or [n-m] in the answer, in order of first appearance."""
    seen: dict[int, None] = {}
    for m in _CITATION.finditer(answer):
        for part in re.split(r"\s*[,;]\s*", m.group(1)):
            bounds = [int(x) for x in re.split(r"\s*[–-]\s*", part)]
            first, last = bounds[0], bounds[-1]
            for n in range(first, min(last, first + 50) + 1):  # [1-3] means 1, 2, 3; cap absurd ranges
                seen.setdefault(n, None)
    return list(seen)


def cites_sources(answer: str, sources: Sequence[Mapping], min_citations: int = 1) -> Score:
    """The answer cites at least `min_citations` of the given sources as [n] and cites no source that
    does not exist. Score: valid citations / all citations (0 when there are none)."""
    known = check_sources(sources)
    cited = citations(answer)
    if not cited:
        return verdict(0.0, False, "no [n] citation" if known else "no sources were retrieved and none cited")
    valid = [n for n in cited if n in known]
    invalid = [n for n in cited if n not in known]
    ok = len(valid) >= min_citations and not invalid
    reason = f"cites {valid or 'nothing valid'}"
    if invalid:
        reason += f"; {invalid} are not among the {len(known)} sources"
    return verdict(len(valid) / len(cited), ok, reason)


def _content_words(text: str) -> set[str]:
    return {w for w in (t.casefold() for t in words(text)) if w not in _STOPWORDS}


def _claims(answer: str) -> list[str]:
    """Answer sentences that carry content words, citation markers removed."""
    return [s for s in sentences(_CITATION.sub(" ", answer)) if _content_words(s)]


def support_proxy(
    answer: str, sources: Sequence[Mapping], embedder: Embedder | None = None, threshold: float | None = None
) -> Score:
    """PROXY for "supported by the retrieved text": the share of answer sentences close to the sources.

    Without an embedder a sentence counts as supported when at least `threshold` (default 0.6) of its content
    words appear in the retrieved text; with one, when its best cosine to a source is >= `threshold` (default
    0.6). Overlap is not truth: use it to compare arms, not to certify an answer.
    """
    texts = list(check_sources(sources).values())
    claims = _claims(answer)
    if not claims:
        return verdict(0.0, False, "empty answer")
    if not texts:
        return verdict(0.0, False, "no retrieved text to support the answer")
    limit = 0.6 if threshold is None else threshold
    support = _embedding_support(claims, texts, embedder) if embedder else _overlap_support(claims, texts)
    supported = int(np.sum(support >= limit))
    how = "cosine" if embedder else "content-word overlap"
    reason = f"proxy: {supported} of {len(claims)} sentences reach {how} {limit} with the retrieved text"
    return verdict(supported / len(claims), supported == len(claims), reason)


def _overlap_support(claims: list[str], texts: list[str]) -> np.ndarray:
    vocabulary = set().union(*(_content_words(t) for t in texts))
    return np.array([len(_content_words(c) & vocabulary) / len(_content_words(c)) for c in claims])


def _embedding_support(claims: list[str], texts: list[str], embedder: Embedder) -> np.ndarray:
    vectors = embed_texts(embedder, [*claims, *texts])
    return (vectors[: len(claims)] @ vectors[len(claims) :].T).max(axis=1)
