"""Check types: the names a check set uses (`is-json`, `regex`, ...), their parameters, and the scorer each
one calls.

A check set entry is promptfoo-style, e.g. `{"type": "regex", "value": "^Dear"}`: `value` is shorthand for
the type's main parameter (here `pattern`). `python -m evals checks types` lists every type and parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from evals.scorers import format as fmt
from evals.scorers import rag, style
from evals.scorers.base import Score


class Context(NamedTuple):
    """What a check may look at besides the answer; None means "not available for this answer"."""

    reference: str | None = None
    sources: Sequence[Mapping] | None = None
    embedder: Any = None


# -- parameter validators: return the normalized value or raise ValueError saying what is expected -----------


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"must be a non-empty string, got {v!r}")
    return v


def _texts(v: Any) -> list[str]:
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, list) or not items or not all(isinstance(s, str) and s for s in items):
        raise ValueError(f"must be a non-empty string or a list of non-empty strings, got {v!r}")
    return list(items)


def _count(low: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ValueError(f"must be an integer >= {low}, got {v!r}")
        return v

    return check


def _number(low: float | None = None, high: float | None = None) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        ok = isinstance(v, int | float) and not isinstance(v, bool)
        if not ok or (low is not None and v < low) or (high is not None and v > high):
            raise ValueError(f"must be a number{_range_text(low, high)}, got {v!r}")
        return float(v)

    return check


def _range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" from {low} to {high}"
    return f" >= {low}" if low is not None else (f" <= {high}" if high is not None else "")


def _flag(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false, got {v!r}")
    return v


def _choice(*options: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {v!r}")
        return v

    return check


def _pattern(v: Any) -> str:
    fmt.compile_regex(_text(v))  # raises ValueError("invalid regex ...")
    return v


def _schema(v: Any) -> dict:
    fmt.compile_schema(v)  # raises ValueError("invalid JSON Schema ...")
    return v


@dataclass(frozen=True)
class Param:
    name: str
    validate: Callable[[Any], Any]
    help: str
    required: bool = False
    default: Any = None


@dataclass(frozen=True)
class CheckType:
    """One check type: its parameters and how to score an answer with prepared parameters."""

    name: str
    group: str  # format / style / rag
    help: str
    score: Callable[[dict, str, Context], Score]
    params: tuple[Param, ...] = ()
    value: str | None = None  # the parameter that promptfoo's `value:` fills
    needs: frozenset[str] = frozenset()  # "reference", "sources", "embedder"
    prepare: Callable[[dict], dict] = field(default=lambda p: p)

    def validate(self, given: Mapping[str, Any]) -> dict:
        """Checked parameters with defaults filled in; ValueError names the bad field."""
        params = {}
        for p in self.params:
            if p.name in given and given[p.name] is not None:
                try:
                    params[p.name] = p.validate(given[p.name])
                except ValueError as e:
                    raise ValueError(f"field {self._field(p.name)} {e}") from None
            elif p.required:
                raise ValueError(f"field {self._field(p.name)} is required ({p.help})")
            else:
                params[p.name] = p.default
        return params

    def _field(self, name: str) -> str:
        return f"'value'/'{name}'" if name == self.value else f"'{name}'"


def _regex_prepare(p: dict) -> dict:
    return {**p, "pattern": fmt.compile_regex(p["pattern"], p["ignore_case"])}


def _schema_prepare(p: dict) -> dict:
    return {**p, "schema": fmt.compile_schema(p["schema"]) if p["schema"] is not None else None}


def _bounds_check(kind: str) -> Callable[[dict], dict]:
    def prepare(p: dict) -> dict:
        low, high = p[f"min_{kind}"], p[f"max_{kind}"]
        if low is None and high is None:
            raise ValueError(f"field 'min_{kind}' or 'max_{kind}' is required (at least one bound)")
        if low is not None and high is not None and low > high:
            raise ValueError(f"field 'min_{kind}' ({low}) is greater than 'max_{kind}' ({high})")
        return p

    return prepare


_CASE = Param("case_sensitive", _flag, "match letter case exactly", default=False)
_SCHEMA = Param("schema", _schema, "a JSON Schema the JSON must match")


def _bounds(kind: str) -> tuple[Param, Param]:
    return (
        Param(f"min_{kind}", _count(0), f"fewest {kind} allowed"),
        Param(f"max_{kind}", _count(0), f"most {kind} allowed"),
    )


def _threshold(default: float) -> Param:
    return Param("threshold", _number(0, 1), f"score needed to pass (default {default})", default=default)


CHECK_TYPES: dict[str, CheckType] = {
    t.name: t
    for t in [
        # -- format ----------------------------------------------------------------------------------------
        CheckType("is-json", "format", "the whole answer is a JSON object or array (one ``` fence allowed)",
                  lambda p, a, c: fmt.is_json(a, p["schema"], p["allow_fence"]),
                  (_SCHEMA, Param("allow_fence", _flag, "accept a single ``` fence around it", default=True)),
                  value="schema", prepare=_schema_prepare),
        CheckType("contains-json", "format", "a JSON object or array appears somewhere in the answer",
                  lambda p, a, c: fmt.contains_json(a, p["schema"]), (_SCHEMA,), value="schema",
                  prepare=_schema_prepare),
        CheckType("json-schema", "format", "the whole answer is JSON matching a JSON Schema",
                  lambda p, a, c: fmt.json_schema(a, p["schema"]),
                  (Param("schema", _schema, "a JSON Schema", required=True),), value="schema",
                  prepare=_schema_prepare),
        CheckType("regex", "format", "the answer matches a regular expression (re.search, multiline)",
                  lambda p, a, c: fmt.regex(a, p["pattern"]),
                  (Param("pattern", _pattern, "a Python regular expression", required=True),
                   Param("ignore_case", _flag, "ignore letter case", default=False)),
                  value="pattern", prepare=_regex_prepare),
        CheckType("not-regex", "format", "the answer never matches a regular expression",
                  lambda p, a, c: fmt.not_regex(a, p["pattern"]),
                  (Param("pattern", _pattern, "a Python regular expression", required=True),
                   Param("ignore_case", _flag, "ignore letter case", default=False)),
                  value="pattern", prepare=_regex_prepare),
        CheckType("contains", "format", "the answer contains any (or all) of the given strings",
                  lambda p, a, c: fmt.contains(a, p["values"], p["mode"], p["case_sensitive"]),
                  (Param("values", _texts, "a string or a list of strings", required=True),
                   Param("mode", _choice("any", "all"), "any or all of the strings", default="any"), _CASE),
                  value="values"),
        CheckType("not-contains", "format", "the answer contains none of the given strings",
                  lambda p, a, c: fmt.not_contains(a, p["values"], p["case_sensitive"]),
                  (Param("values", _texts, "a string or a list of strings", required=True), _CASE),
                  value="values"),
        CheckType("starts-with", "format", "the answer starts with a string",
                  lambda p, a, c: fmt.starts_with(a, p["prefix"], p["case_sensitive"]),
                  (Param("prefix", _text, "the opening text", required=True), _CASE), value="prefix"),
        CheckType("ends-with", "format", "the answer ends with a string",
                  lambda p, a, c: fmt.ends_with(a, p["suffix"], p["case_sensitive"]),
                  (Param("suffix", _text, "the closing text", required=True), _CASE), value="suffix"),
        CheckType("word-count", "format", "the number of words lies within bounds",
                  lambda p, a, c: fmt.word_count(a, p["min_words"], p["max_words"]),
                  _bounds("words"), prepare=_bounds_check("words")),
        CheckType("sentence-count", "format", "the number of sentences lies within bounds",
                  lambda p, a, c: fmt.sentence_count(a, p["min_sentences"], p["max_sentences"]),
                  _bounds("sentences"), prepare=_bounds_check("sentences")),
        CheckType("char-count", "format", "the number of characters lies within bounds",
                  lambda p, a, c: fmt.char_count(a, p["min_chars"], p["max_chars"]),
                  _bounds("chars"), prepare=_bounds_check("chars")),
        CheckType("is-list", "format", "the answer holds a bullet or numbered list",
                  lambda p, a, c: fmt.is_list(a, p["kind"], p["min_items"]),
                  (Param("kind", _choice("bullet", "numbered", "any"), "list kind", default="any"),
                   Param("min_items", _count(1), "fewest items", default=2)), value="kind"),
        CheckType("code-block", "format", "the answer holds a fenced code block (of a language, if given)",
                  lambda p, a, c: fmt.code_block(a, p["language"]),
                  (Param("language", _text, "the fence's language tag, e.g. python"),), value="language"),
        CheckType("single-sentence", "format", "the answer is exactly one sentence",
                  lambda p, a, c: fmt.single_sentence(a)),
        CheckType("exact-match", "format", "the answer equals a string (default: the reference answer)",
                  lambda p, a, c: fmt.exact_match(a, p["expected"] or c.reference, p["case_sensitive"]),
                  (Param("expected", _text, "the expected answer; omit to use the reference"), _CASE),
                  value="expected"),
        # -- style -----------------------------------------------------------------------------------------
        CheckType("similarity", "style", "embedding cosine similarity to the reference answer",
                  lambda p, a, c: style.embedding_similarity(a, c.reference, c.embedder, p["threshold"]),
                  (_threshold(0.7),), value="threshold", needs=frozenset({"reference", "embedder"})),
        CheckType("rouge-l", "style", "ROUGE-L F-measure against the reference answer",
                  lambda p, a, c: style.rouge_l(a, c.reference, p["threshold"]),
                  (_threshold(0.3),), value="threshold", needs=frozenset({"reference"})),
        CheckType("length-ratio", "style", "answer length / reference length lies within a band",
                  lambda p, a, c: style.length_ratio(a, c.reference, p["low"], p["high"]),
                  (Param("low", _number(0), "smallest ratio", default=0.5),
                   Param("high", _number(0), "largest ratio", default=2.0)), needs=frozenset({"reference"})),
        CheckType("readability", "style", "Flesch-Kincaid grade level lies within bounds",
                  lambda p, a, c: style.readability(a, p["min_grade"], p["max_grade"]),
                  (Param("min_grade", _number(), "lowest grade"), Param("max_grade", _number(), "highest grade")),
                  value="max_grade"),
        CheckType("banned-phrases", "style", 'none of the banned phrases (default: "As an AI" and kin) appears',
                  lambda p, a, c: style.banned_phrases(a, p["phrases"], p["case_sensitive"]),
                  (Param("phrases", _texts, "phrases to ban", default=list(style.DEFAULT_BANNED_PHRASES)), _CASE),
                  value="phrases"),
        CheckType("persona", "style", "at least min_count of the persona's markers appear",
                  lambda p, a, c: style.persona_markers(a, p["markers"], p["min_count"], p["case_sensitive"]),
                  (Param("markers", _texts, "names, catchphrases, sign-offs", required=True),
                   Param("min_count", _count(1), "markers needed", default=1), _CASE), value="markers"),
        # -- rag -------------------------------------------------------------------------------------------
        CheckType("cites-sources", "rag", "cites retrieved sources as [n], and only ones that exist",
                  lambda p, a, c: rag.cites_sources(a, c.sources, p["min_citations"]),
                  (Param("min_citations", _count(1), "citations needed", default=1),), value="min_citations",
                  needs=frozenset({"sources"})),
        CheckType("support-proxy", "rag", "PROXY: share of answer sentences overlapping the retrieved text",
                  lambda p, a, c: rag.support_proxy(
                      a, c.sources, c.embedder if p["method"] == "embedding" else None, p["threshold"]),
                  (Param("method", _choice("overlap", "embedding"), "word overlap or embeddings", default="overlap"),
                   _threshold(0.6)), value="threshold", needs=frozenset({"sources"})),
    ]
}  # fmt: skip

# promptfoo names that map onto a type with fixed parameters
ALIASES: dict[str, tuple[str, dict]] = {
    "icontains": ("contains", {"case_sensitive": False}),
    "contains-any": ("contains", {"mode": "any"}),
    "contains-all": ("contains", {"mode": "all"}),
    "not-icontains": ("not-contains", {"case_sensitive": False}),
    "similar": ("similarity", {}),
}

FORMAT_TYPES = tuple(name for name, t in CHECK_TYPES.items() if t.group == "format")


def needs_of(type_name: str, params: Mapping[str, Any]) -> frozenset[str]:
    """What a check needs beyond the answer (support-proxy needs an embedder only with method: embedding)."""
    needs = CHECK_TYPES[type_name].needs
    if type_name == "support-proxy" and params.get("method") == "embedding":
        needs = needs | {"embedder"}
    if type_name == "exact-match" and not params.get("expected"):
        needs = needs | {"reference"}
    return needs


def describe_types() -> str:
    """Every check type with its parameters, for `python -m evals checks types`."""
    lines = []
    for t in CHECK_TYPES.values():
        lines.append(f"{t.name} ({t.group}): {t.help}")
        for p in t.params:
            star = (
                " (required)" if p.required else f" (default {p.default!r})" if p.default is not None else ""
            )
            short = " = value" if p.name == t.value else ""
            lines.append(f"    {p.name}{short}: {p.help}{star}")
    lines.append("aliases: " + ", ".join(f"{a} -> {t}" for a, (t, _) in ALIASES.items()))
    return "\n".join(lines)
