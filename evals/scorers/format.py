"""Format scorers: JSON, JSON Schema, regex, contains, starts/ends with, length bounds, lists, code blocks.

Every scorer is a pure function `answer, params... -> Score` (see `evals.scorers.base.Score`); none loads a
model. Text matching (contains, starts/ends with, exact match) is case-insensitive unless
`case_sensitive=True`; regexes are taken as written unless `ignore_case=True`.

    >>> from evals.scorers.format import is_json
    >>> is_json('```json\\n{"a": 1}\\n```').passed
    True
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any, Literal

from evals.scorers.base import Score, band_score, band_text, sentences, shorten, verdict, words

_FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([\w+#.-]*)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.S | re.M)
_FENCE_OPEN = re.compile(r"^[ \t]*(```+|~~~+)", re.M)
_BULLET = re.compile(r"^[ \t]*[-*•+][ \t]+\S", re.M)
_NUMBERED = re.compile(r"^[ \t]*\d{1,3}[.)][ \t]+\S", re.M)
_JSON_START = re.compile(r"[{\[]")
_DECODER = json.JSONDecoder()
_MAX_JSON_STARTS = 8  # how many '{' / '[' positions contains-json tries before giving up


# -- JSON ------------------------------------------------------------------------------------------------


def compile_schema(schema: dict) -> Any:
    """A jsonschema validator for `schema`. Raises ValueError if `schema` is not a valid JSON Schema."""
    from jsonschema import exceptions, validators

    if not isinstance(schema, dict):
        raise ValueError(f"a JSON Schema must be an object (mapping), got {type(schema).__name__}")
    cls = validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except exceptions.SchemaError as e:
        where = "/".join(str(p) for p in e.path) or "(root)"
        raise ValueError(f"invalid JSON Schema at {where}: {e.message}") from None
    return cls(schema)


def _whole_fence(text: str) -> str | None:
    """The body of the code fence if the whole stripped `text` is exactly one fenced block."""
    m = _FENCE.match(text)
    return m.group(3) if m and m.end() >= len(text.rstrip()) else None


def _schema_score(obj: Any, schema: Any, where: str) -> Score:
    validator = compile_schema(schema) if isinstance(schema, dict) else schema
    error = next(iter(validator.iter_errors(obj)), None)
    if error is None:
        return verdict(1.0, True, f"JSON{where} matches the schema")
    path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return verdict(0.5, False, f"JSON{where} breaks the schema at {path}: {shorten(error.message, 80)}")


def is_json(answer: str, schema: dict | Any | None = None, allow_fence: bool = True) -> Score:
    """The whole answer is one JSON object or array (optionally inside a single ``` fence).

    Score 1 if it is (and matches `schema`, a dict or a `compile_schema` validator, when given); 0.5 when the
    JSON is valid but breaks the schema, or when JSON is followed by other text; 0 otherwise. Bare scalars
    (`42`, `"text"`) do not count: an LLM answer that "is JSON" means a structure.
    """
    text = answer.strip()
    if not text:
        return verdict(0.0, False, "empty answer")
    where = ""
    if allow_fence and text[0] in "`~":
        body = _whole_fence(text)
        if body is not None:
            text, where = body.strip(), " (inside a code fence)"
    if text[:1] not in "{[":
        return verdict(0.0, False, f"not JSON: starts with {shorten(text, 20)!r}")
    try:
        obj, end = _DECODER.raw_decode(text)
    except json.JSONDecodeError as e:
        return verdict(0.0, False, f"invalid JSON{where}: {e.msg} at line {e.lineno} column {e.colno}")
    rest = text[end:].strip()
    if rest:
        return verdict(0.5, False, f"valid JSON{where} followed by extra text {shorten(rest, 30)!r}")
    if schema is not None:
        return _schema_score(obj, schema, where)
    return verdict(1.0, True, f"valid JSON {type(obj).__name__}{where}")


def find_json(text: str) -> tuple[Any, int] | None:
    """The first JSON object or array inside `text` and its start offset, or None."""
    for body in [m.group(3) for m in _FENCE.finditer(text)] + [text]:
        found = _first_json(body)
        if found is not None:
            return found if body is text else (found[0], text.find(body) + found[1])
    return None


def _first_json(text: str) -> tuple[Any, int] | None:
    for m in itertools.islice(_JSON_START.finditer(text), _MAX_JSON_STARTS):
        try:
            return _DECODER.raw_decode(text, m.start())[0], m.start()
        except json.JSONDecodeError:
            continue
    return None


def contains_json(answer: str, schema: dict | Any | None = None) -> Score:
    """Some JSON object or array appears anywhere in the answer (fenced or inline), matching `schema` if given."""
    found = find_json(answer)
    if found is None:
        return verdict(0.0, False, "no JSON object or array found" if answer.strip() else "empty answer")
    obj, at = found
    if schema is not None:
        return _schema_score(obj, schema, f" at char {at}")
    return verdict(1.0, True, f"JSON {type(obj).__name__} found at char {at}")


def json_schema(answer: str, schema: dict | Any) -> Score:
    """The whole answer is JSON (fence allowed) matching `schema`; see `is_json`."""
    return is_json(answer, schema=schema)


# -- regex and substrings --------------------------------------------------------------------------------


def compile_regex(pattern: str | re.Pattern, ignore_case: bool = False) -> re.Pattern:
    """`pattern` compiled (multiline); raises ValueError naming the pattern if it is not a valid regex."""
    if isinstance(pattern, re.Pattern):
        return pattern
    try:
        return re.compile(pattern, re.M | (re.I if ignore_case else 0))
    except re.error as e:
        raise ValueError(f"invalid regex {pattern!r}: {e}") from None


def regex(answer: str, pattern: str | re.Pattern, ignore_case: bool = False) -> Score:
    """The answer matches `pattern` somewhere (re.search, multiline: ^ and $ match at line ends)."""
    rx = compile_regex(pattern, ignore_case)
    m = rx.search(answer)
    if m:
        return verdict(1.0, True, f"matches /{shorten(rx.pattern, 30)}/ at char {m.start()}")
    return verdict(0.0, False, f"no match for /{shorten(rx.pattern, 30)}/")


def not_regex(answer: str, pattern: str | re.Pattern, ignore_case: bool = False) -> Score:
    """The answer never matches `pattern`."""
    rx = compile_regex(pattern, ignore_case)
    m = rx.search(answer)
    if m:
        return verdict(0.0, False, f"matches /{shorten(rx.pattern, 30)}/: {shorten(m.group(0), 30)!r}")
    return verdict(1.0, True, f"no match for /{shorten(rx.pattern, 30)}/")


def _found(answer: str, values: str | list[str], case_sensitive: bool) -> tuple[list[str], list[str]]:
    values = [values] if isinstance(values, str) else list(values)
    hay = answer if case_sensitive else answer.casefold()
    hits = [v for v in values if (v if case_sensitive else v.casefold()) in hay]
    return hits, values


def contains(
    answer: str, value: str | list[str], mode: Literal["any", "all"] = "any", case_sensitive: bool = False
) -> Score:
    """The answer contains any (or all) of `value`. Score for "all": the fraction found."""
    hits, values = _found(answer, value, case_sensitive)
    if mode == "all":
        missing = [v for v in values if v not in hits]
        reason = "contains all" if not missing else f"missing {', '.join(map(repr, missing[:3]))}"
        return verdict(len(hits) / len(values), not missing, reason)
    if hits:
        return verdict(1.0, True, f"contains {hits[0]!r}")
    return verdict(0.0, False, f"contains none of {', '.join(map(repr, values[:3]))}")


def not_contains(answer: str, value: str | list[str], case_sensitive: bool = False) -> Score:
    """The answer contains none of `value`. Score: the fraction of values absent."""
    hits, values = _found(answer, value, case_sensitive)
    if hits:
        return verdict(1 - len(hits) / len(values), False, f"contains {', '.join(map(repr, hits[:3]))}")
    return verdict(1.0, True, "contains none of them")


def _norm(text: str, case_sensitive: bool) -> str:
    flat = " ".join(text.split())
    return flat if case_sensitive else flat.casefold()


def _norm_end(text: str, want: str, case_sensitive: bool, last: bool) -> str:
    """The normalized head (or tail) of `text`, at least as long as `want` when the text allows.

    Normalizing a slice gives a prefix (suffix) of the normalized whole, so long answers are not normalized
    in full just to look at their first or last words.
    """
    size = 4 * len(want) + 64
    if len(text) > size:
        part = _norm(text[-size:] if last else text[:size], case_sensitive)
        if len(part) > len(want):
            return part
    return _norm(text, case_sensitive)


def starts_with(answer: str, prefix: str, case_sensitive: bool = False) -> Score:
    """The answer begins with `prefix` (leading whitespace ignored; runs of whitespace count as one space)."""
    want = _norm(prefix, case_sensitive)
    if _norm_end(answer.lstrip(), want, case_sensitive, last=False).startswith(want):
        return verdict(1.0, True, f"starts with {shorten(prefix, 30)!r}")
    return verdict(0.0, False, f"starts with {shorten(answer, 30)!r}, not {shorten(prefix, 30)!r}")


def ends_with(answer: str, suffix: str, case_sensitive: bool = False) -> Score:
    """The answer ends with `suffix` (trailing whitespace ignored; runs of whitespace count as one space)."""
    want = _norm(suffix, case_sensitive)
    tail = _norm_end(answer.rstrip(), want, case_sensitive, last=True)
    if tail.endswith(want):
        return verdict(1.0, True, f"ends with {shorten(suffix, 30)!r}")
    return verdict(0.0, False, f"ends with {tail[-30:]!r}, not {shorten(suffix, 30)!r}")


def exact_match(answer: str, expected: str, case_sensitive: bool = False) -> Score:
    """The answer equals `expected` after trimming and collapsing whitespace."""
    if _norm(answer, case_sensitive) == _norm(expected, case_sensitive):
        return verdict(1.0, True, "exact match")
    return verdict(0.0, False, f"{shorten(answer, 30)!r} differs from {shorten(expected, 30)!r}")


# -- length and shape ------------------------------------------------------------------------------------


def _bounds(n: int, unit: str, low: int | None, high: int | None) -> Score:
    ok = (low is None or n >= low) and (high is None or n <= high)
    return verdict(band_score(n, low, high), ok, f"{n} {unit} (want {band_text(low, high)})")


def word_count(answer: str, min_words: int | None = None, max_words: int | None = None) -> Score:
    """Word count within [min_words, max_words]; outside, the score falls with the distance (bound / count)."""
    return _bounds(len(words(answer)), "words", min_words, max_words)


def sentence_count(answer: str, min_sentences: int | None = None, max_sentences: int | None = None) -> Score:
    """Sentence count within [min_sentences, max_sentences]."""
    return _bounds(len(sentences(answer)), "sentences", min_sentences, max_sentences)


def char_count(answer: str, min_chars: int | None = None, max_chars: int | None = None) -> Score:
    """Character count of the trimmed answer within [min_chars, max_chars]."""
    return _bounds(len(answer.strip()), "characters", min_chars, max_chars)


def list_items(answer: str) -> tuple[int, int]:
    """How many bullet (-, *, •, +) and numbered (1. / 1)) lines the answer has."""
    return len(_BULLET.findall(answer)), len(_NUMBERED.findall(answer))


def is_list(answer: str, kind: Literal["bullet", "numbered", "any"] = "any", min_items: int = 2) -> Score:
    """The answer holds a list of at least `min_items` bullet or numbered lines. Score: items / min_items."""
    bullets, numbered = list_items(answer)
    n = {"bullet": bullets, "numbered": numbered, "any": max(bullets, numbered)}[kind]
    what = "list items" if kind == "any" else f"{kind} items"
    return verdict(n / min_items, n >= min_items, f"{n} {what} (need {min_items})")


def code_blocks(answer: str) -> list[tuple[str, str]]:
    """(language, body) of every closed ``` or ~~~ fence in the answer; language is '' when not given."""
    return [(m.group(2).lower(), m.group(3)) for m in _FENCE.finditer(answer)]


def code_block(answer: str, language: str | None = None) -> Score:
    """The answer holds a closed fenced code block (of `language` if given; 0.5 for another language)."""
    blocks = code_blocks(answer)
    if not blocks:
        opened = bool(_FENCE_OPEN.search(answer))
        return verdict(0.0, False, "code fence opened but never closed" if opened else "no fenced code block")
    if language is None:
        return verdict(1.0, True, f"{len(blocks)} fenced code block(s)")
    langs = [lang for lang, _ in blocks]
    if language.lower() in langs:
        return verdict(1.0, True, f"```{language} block found")
    return verdict(0.5, False, f"code block languages {langs}, not {language!r}")


def single_sentence(answer: str) -> Score:
    """The answer is exactly one sentence. Score: 1 / number of sentences (0 when empty)."""
    n = len(sentences(answer))
    if n == 0:
        return verdict(0.0, False, "empty answer")
    return verdict(1 / n, n == 1, "one sentence" if n == 1 else f"{n} sentences")
