"""Inferred style profile: propose checks from the reference answers of a training set.

Each rule looks for a property most references share (valid JSON, a length band, a fixed opening or
sign-off, bullet lists, code fences, citations...) and proposes a check with a `description` saying what it
saw. The user reviews the list, edits the YAML (`evals.checks.checks_to_yaml`) and loads it back.

    python -m evals checks infer data.json --out checks.yaml
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from evals.checks import Check
from evals.scorers import format as fmt
from evals.scorers import rag
from evals.scorers.base import sentences, words
from evals.scorers.style import DEFAULT_BANNED_PHRASES, textstat_meter

MIN_REFERENCES = 3
STRONG = 0.9  # share of references needed for a hard format rule (JSON, single sentence)
COMMON = 0.8  # share needed for a habit (opening, sign-off, lists, fences, citations)
RECURRING = 0.6  # share needed for a recurring phrase to count as a persona marker


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags)


def _pct(flags: Sequence[bool]) -> str:
    return f"{sum(flags)} of {len(flags)} ({_share(flags):.0%})"


def infer_checks(reference_answers: Sequence[str]) -> list[Check]:
    """Checks that the given reference answers mostly pass, each with a `description` saying why.

    Raises ValueError when fewer than 3 non-empty references are given.
    """
    refs = [r for r in reference_answers if isinstance(r, str) and r.strip()]
    if len(refs) < MIN_REFERENCES:
        raise ValueError(
            f"need at least {MIN_REFERENCES} non-empty reference answers to infer a style profile, got {len(refs)}"
        )
    json_flags = [fmt.is_json(r).passed for r in refs]
    structured = _share(json_flags) >= STRONG
    checks: list[Check] = []
    rules: list[Callable[[list[str]], Check | None]] = [_json_rule] if structured else [
        _opening_rule, _ending_rule, _single_sentence_rule, _list_rule, _code_rule, _length_rule,
        _readability_rule, _persona_rule,
    ]  # fmt: skip
    for rule in [*rules, _citation_rule, _banned_rule]:
        check = rule(refs)
        if check is not None:
            checks.append(check)
    return checks


def _json_rule(refs: list[str]) -> Check:
    objects = [_json_object(r) for r in refs]
    objects = [o for o in objects if isinstance(o, dict)]
    flags = [fmt.is_json(r).passed for r in refs]
    reason = f"{_pct(flags)} reference answers are valid JSON"
    if len(objects) < STRONG * len(refs):
        return Check("is-json", description=reason)
    counts = Counter(k for o in objects for k in o)
    required = [k for k, n in counts.items() if n >= STRONG * len(objects)]
    schema = {"type": "object", "required": required} if required else None
    if required:
        reason += f"; objects with keys {', '.join(required)} in >= {STRONG:.0%} of them"
    return Check("is-json", {"schema": schema}, description=reason)


def _json_object(text: str) -> object:
    found = fmt.find_json(text)
    return found[0] if found else None


def _affix_tokens(text: str, last: bool) -> list[str]:
    """Words of the first sentence of the first line (or the last sentence of the last line), in reading order."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    parts = sentences(lines[-1] if last else lines[0])
    return (parts[-1] if last else parts[0]).split() if parts else []


def _affix(refs: list[str], last: bool) -> tuple[str, list[bool]] | None:
    """The longest run of words (within one sentence) that >= COMMON of the references start or end with."""
    tokens = [_affix_tokens(r, last) for r in refs]
    best = None
    for k in range(1, 13):
        pieces = [" ".join(t[-k:] if last else t[:k]) if len(t) >= k and len(t) < len(r.split()) else None
                  for t, r in zip(tokens, refs, strict=True)]  # fmt: skip
        counts = Counter(p.casefold() for p in pieces if p)
        if not counts or counts.most_common(1)[0][1] < COMMON * len(refs):
            break
        phrase = counts.most_common(1)[0][0]
        flags = [p is not None and p.casefold() == phrase for p in pieces]
        best = (next(p for p, hit in zip(pieces, flags, strict=True) if hit), flags)
    if best is None or (len(best[0].split()) == 1 and len(best[0]) < 5):
        return None  # a lone short word ("The", "I") is chance, not a house style
    return best


def _opening_rule(refs: list[str]) -> Check | None:
    found = _affix(refs, last=False)
    if found is None:
        return None
    text, flags = found
    return Check("starts-with", {"prefix": text}, description=f"{_pct(flags)} references open with {text!r}")


def _ending_rule(refs: list[str]) -> Check | None:
    found = _affix(refs, last=True)
    if found is None:
        return None
    text, flags = found
    return Check("ends-with", {"suffix": text}, description=f"{_pct(flags)} references end with {text!r}")


def _single_sentence_rule(refs: list[str]) -> Check | None:
    flags = [len(sentences(r)) == 1 for r in refs]
    if _share(flags) < STRONG:
        return None
    return Check("single-sentence", description=f"{_pct(flags)} references are a single sentence")


def _list_rule(refs: list[str]) -> Check | None:
    counts = [fmt.list_items(r) for r in refs]
    for kind, index in (("bullet", 0), ("numbered", 1)):
        flags = [c[index] >= 2 for c in counts]
        if _share(flags) >= COMMON:
            fewest = int(np.percentile([c[index] for c in counts], 10))
            params = {"kind": kind, "min_items": max(2, fewest)}
            return Check("is-list", params, description=f"{_pct(flags)} references hold a {kind} list")
    return None


def _code_rule(refs: list[str]) -> Check | None:
    blocks = [fmt.code_blocks(r) for r in refs]
    flags = [bool(b) for b in blocks]
    if _share(flags) < COMMON:
        return None
    langs = Counter(lang for b in blocks for lang in {lang for lang, _ in b if lang})
    lang, n = langs.most_common(1)[0] if langs else (None, 0)
    if lang and n >= COMMON * len(refs):
        return Check(
            "code-block", {"language": lang}, description=f"{n} of {len(refs)} references hold ```{lang}"
        )
    return Check("code-block", description=f"{_pct(flags)} references hold a fenced code block")


def _length_rule(refs: list[str]) -> Check | None:
    """A band around the middle 90% of reference lengths, widened by 25% each way (a style, not a quota)."""
    if len(refs) < 5:
        return None
    counts = np.array([len(words(r)) for r in refs])
    p5, p50, p95 = np.percentile(counts, [5, 50, 95])
    low, high = math.floor(p5 * 0.75), math.ceil(p95 * 1.25)
    params = {"min_words": low if low >= 1 else None, "max_words": max(high, 1)}
    reason = (
        f"90% of references have {p5:.0f}-{p95:.0f} words (median {p50:.0f}); band widened by 25% each way"
    )
    return Check("word-count", params, description=reason)


def _readability_rule(refs: list[str]) -> Check | None:
    prose = [r for r in refs if len(words(r)) >= 10 and not fmt.code_blocks(r)]
    if len(prose) < 5:
        return None
    ts = textstat_meter()
    grades = np.array([ts.flesch_kincaid_grade(r) for r in prose])
    p90 = float(np.percentile(grades, 90))
    limit = max(4, math.ceil(p90) + 2)
    reason = (
        f"90% of {len(prose)} prose references read at Flesch-Kincaid grade <= {p90:.1f}; limit set 2 above"
    )
    return Check("readability", {"max_grade": float(limit)}, description=reason)


def _names(refs: list[str]) -> list[tuple[str, int]]:
    """Capitalized words not opening a sentence (names: "Tuna", "Acme") in >= RECURRING of the references."""
    capitalized, seen = Counter(), Counter()
    for r in refs:
        seen.update({t.casefold() for t in words(r)})
        inner = [t for line in r.splitlines() for sent in sentences(line) for t in words(sent)[1:]]
        capitalized.update({t.casefold() for t in inner if t[:1].isupper() and not t.isupper()})
    return [
        (w, n) for w, n in capitalized.most_common(3) if n >= RECURRING * len(refs) and n >= 0.8 * seen[w]
    ]


def _phrases(refs: list[str]) -> list[tuple[str, int]]:
    """Three-word phrases (within a sentence) found in >= RECURRING of the references."""
    grams = Counter()
    for r in refs:
        found = set()
        for sent in (s for line in r.splitlines() for s in sentences(line)):
            t = [w.casefold() for w in words(sent)]
            found.update(" ".join(t[i : i + 3]) for i in range(len(t) - 2))
        grams.update(found)
    return [(g, n) for g, n in grams.most_common(20) if n >= RECURRING * len(refs)]


def _persona_rule(refs: list[str]) -> Check | None:
    """Up to 3 names or recurring phrases that do not overlap one another."""
    markers: list[tuple[str, int]] = []
    for candidate, n in _names(refs) + _phrases(refs):
        if len(markers) < 3 and not any(set(candidate.split()) & set(m.split()) for m, _ in markers):
            markers.append((candidate, n))
    if not markers:
        return None
    shares = ", ".join(f"{m!r} in {n}" for m, n in markers)
    reason = f"recurring names/phrases ({shares} of {len(refs)} references)"
    return Check("persona", {"markers": [m for m, _ in markers]}, description=reason)


def _citation_rule(refs: list[str]) -> Check | None:
    flags = [bool(rag.citations(r)) for r in refs]
    if _share(flags) < COMMON:
        return None
    return Check("cites-sources", description=f"{_pct(flags)} references cite sources as [n]")


def _banned_rule(refs: list[str]) -> Check | None:
    if any(fmt.contains(r, list(DEFAULT_BANNED_PHRASES)).passed for r in refs):
        return None
    return Check(
        "banned-phrases", description=f"none of the {len(refs)} references use assistant boilerplate"
    )
