"""The result type every scorer returns, and small text helpers the scorers share."""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

_WORD = re.compile(r"\w+(?:[-'’]\w+)*")
# A sentence ends at . ! ? followed by whitespace or the end, at 。！？ (no space in CJK), or at a blank line.
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|[。！？]+|\n\s*\n")
_ABBREVIATION = re.compile(
    r"(?:\b(?i:mr|mrs|ms|dr|prof|sr|jr|st|vs|etc|e\.g|i\.e|cf|fig|approx)|(?<![\w.])[A-Z])\.$"
)


class Score(NamedTuple):
    """One scorer's verdict on one answer (a NamedTuple: immutable and cheap to make by the million).

    score: how well the answer meets the check, in [0, 1] (1 = fully).
    passed: whether it meets the check's threshold.
    reason: one short sentence a user can read in a table cell.
    """

    score: float
    passed: bool
    reason: str

    def to_dict(self) -> dict:
        return self._asdict()


def verdict(score: float, passed: bool, reason: str) -> Score:
    """A Score with `score` clamped to [0, 1] and rounded to 4 places (stable JSON, readable tables)."""
    if score != 1.0 and score != 0.0:  # the common cases skip the arithmetic
        score = round(min(1.0, max(0.0, float(score))), 4)
    return Score(float(score), bool(passed), reason)


def words(text: str) -> list[str]:
    """Words of `text` (letters/digits in any script, keeping inner hyphens and apostrophes)."""
    return _WORD.findall(text)


def sentences(text: str) -> list[str]:
    """Sentences of `text`: split after . ! ? (and 。！？) and at blank lines; empty pieces dropped.

    A period after a common abbreviation ("Dr.", "e.g.") or a single initial ("J. Smith") does not end one.
    """
    return list(_sentences(text))


@functools.lru_cache(maxsize=1024)  # several checks split the same answer; the cache spares the re-splitting
def _sentences(text: str) -> tuple[str, ...]:
    pieces, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        if m.group(0) == "." and _ABBREVIATION.search(text[max(0, m.end() - 9) : m.end()]):
            continue
        pieces.append(text[start : m.end()])
        start = m.end()
    pieces.append(text[start:])
    return tuple(p.strip() for p in pieces if _WORD.search(p))


def band_text(low: float | None, high: float | None) -> str:
    """A bound pair for reasons: "10-80", ">= 10", "<= 80" or "any"."""
    if low is not None and high is not None:
        return f"{low}-{high}"
    if low is not None:
        return f">= {low}"
    return f"<= {high}" if high is not None else "any"


def band_score(value: float, low: float | None, high: float | None) -> float:
    """1 inside [low, high]; outside, the ratio of the nearer bound to the value (or value to bound)."""
    if low is not None and value < low:
        return value / low if low > 0 else 0.0
    if high is not None and value > high:
        return high / value if value > 0 else 0.0
    return 1.0


def shorten(text: str, limit: int = 40) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis, for reasons."""
    flat = " ".join(text[: 4 * limit].split())  # a long answer is cut before it is split
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
