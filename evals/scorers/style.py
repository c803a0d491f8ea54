"""Style scorers: similarity to a reference answer (embedding, ROUGE-L, length ratio), readability, banned
phrases and persona markers.

Pure functions `answer (+ reference) -> Score`. The embedder is an argument (a SentenceTransformer, or any
callable mapping a list of texts to a 2-D array), never loaded here; `rag.embed.load_embedder()` gives the
embedded all-MiniLM-L6-v2. ROUGE-L comes from `rouge-score`, readability from `textstat`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from evals.scorers.base import Score, band_score, band_text, shorten, verdict, words

DEFAULT_BANNED_PHRASES = (
    "As an AI",
    "as a language model",
    "As an assistant, I",
    "I'm just an AI",
    "I cannot browse",
    "I don't have personal opinions",
    "I hope this helps",
)

Embedder = (
    Any  # has .encode(texts) (SentenceTransformer, rag.embed.Embedder) or is a callable texts -> (n, dim)
)

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_ROUGE_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")


def embed_texts(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """Unit-length embeddings of `texts` (rows), from anything with `.encode(texts)` or a plain callable."""
    if hasattr(embedder, "encode"):
        vectors = embedder.encode(list(texts))  # SentenceTransformer or rag.embed.Embedder
    elif callable(embedder):
        vectors = embedder(list(texts))
    else:
        raise ValueError(f"embedder must have .encode or be callable, got {type(embedder).__name__}")
    vectors = np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def embedding_similarities(
    answers: Sequence[str], references: Sequence[str], embedder: Embedder, threshold: float = 0.7
) -> list[Score]:
    """Cosine similarity of each answer to its reference, embedded in one batch. Negative cosines score 0."""
    if len(answers) != len(references):
        raise ValueError(f"got {len(answers)} answers but {len(references)} references")
    if not answers:
        return []
    vectors = embed_texts(embedder, [*answers, *references])
    cosines = np.sum(vectors[: len(answers)] * vectors[len(answers) :], axis=1)
    scores = []
    for answer, cos in zip(answers, cosines, strict=True):
        if not answer.strip():
            scores.append(verdict(0.0, False, "empty answer"))
            continue
        scores.append(verdict(cos, cos >= threshold, f"cosine {cos:.2f} to the reference (need {threshold})"))
    return scores


def embedding_similarity(answer: str, reference: str, embedder: Embedder, threshold: float = 0.7) -> Score:
    """Cosine similarity of the answer's and the reference's embeddings; passes at >= `threshold`."""
    return embedding_similarities([answer], [reference], embedder, threshold)[0]


class _UnicodeTokenizer:
    """ROUGE tokens for any script: lower-cased words, one token per CJK character.

    rouge-score's default tokenizer keeps only [a-z0-9], so a non-English answer would score 0.
    """

    def tokenize(self, text: str) -> list[str]:
        return _ROUGE_TOKEN.findall(text.lower())


def rouge_l(answer: str, reference: str, threshold: float = 0.3) -> Score:
    """ROUGE-L F-measure (longest common subsequence of tokens) against the reference."""
    from rouge_score import rouge_scorer

    if not answer.strip() or not reference.strip():
        return verdict(0.0, False, "empty answer" if not answer.strip() else "empty reference")
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_UnicodeTokenizer())
    f = scorer.score(reference, answer)["rougeL"].fmeasure
    return verdict(f, f >= threshold, f"ROUGE-L F {f:.2f} (need {threshold})")


def length_ratio(answer: str, reference: str, low: float = 0.5, high: float = 2.0) -> Score:
    """Answer words / reference words within [low, high]; score min(r, 1/r), so 1 at equal length."""
    a, r = len(words(answer)), len(words(reference))
    if r == 0:
        return verdict(0.0, False, "empty reference")
    ratio = a / r
    score = min(ratio, 1 / ratio) if ratio > 0 else 0.0
    ok = low <= ratio <= high
    return verdict(score, ok, f"{a} words vs {r} in the reference (ratio {ratio:.2f}, band {low}-{high})")


def textstat_meter() -> Any:
    """A private textstat instance that counts syllables with pyphen.

    textstat's "en" setting looks words up in NLTK's CMU dictionary and downloads it on first use, which fails
    offline (and on every call, as failures are not cached). The language code "en-US" keeps the English
    formulas (it falls back to the "en" constants) but takes the pyphen path, which works offline.
    """
    from textstat.textstat import textstatistics

    ts = textstatistics()
    ts.set_lang("en-US")
    return ts


def readability(answer: str, min_grade: float | None = None, max_grade: float | None = None) -> Score:
    """Flesch-Kincaid grade level within [min_grade, max_grade] (reading ease shown in the reason)."""
    if not words(answer):
        return verdict(0.0, False, "empty answer")
    ts = textstat_meter()
    grade, ease = ts.flesch_kincaid_grade(answer), ts.flesch_reading_ease(answer)
    ok = (min_grade is None or grade >= min_grade) and (max_grade is None or grade <= max_grade)
    reason = f"grade {grade:.1f}, reading ease {ease:.0f} (want grade {band_text(min_grade, max_grade)})"
    return verdict(band_score(grade, min_grade, max_grade) if not ok else 1.0, ok, reason)


def banned_phrases(
    answer: str, phrases: Sequence[str] = DEFAULT_BANNED_PHRASES, case_sensitive: bool = False
) -> Score:
    """None of the banned phrases (default: assistant boilerplate like "As an AI") appears in the answer."""
    hay = answer if case_sensitive else answer.casefold()
    hits = [p for p in phrases if (p if case_sensitive else p.casefold()) in hay]
    if hits:
        return verdict(0.0, False, f"uses {', '.join(repr(shorten(h, 30)) for h in hits[:3])}")
    return verdict(1.0, True, "no banned phrase")


def persona_markers(
    answer: str, markers: Sequence[str], min_count: int = 1, case_sensitive: bool = False
) -> Score:
    """At least `min_count` of the persona's markers (names, catchphrases, sign-offs) appear.

    Score: markers found / min_count, capped at 1.
    """
    hay = answer if case_sensitive else answer.casefold()
    hits = [m for m in markers if (m if case_sensitive else m.casefold()) in hay]
    reason = f"{len(hits)} of {len(markers)} persona markers" + (
        f": {', '.join(map(repr, hits[:3]))}" if hits else ""
    )
    return verdict(len(hits) / min_count, len(hits) >= min_count, reason)
