"""Check sets: load them from YAML/JSON, run them on an answer, and weigh the results.

A check set file is a list of promptfoo-style entries (or a mapping with a `checks:` list):

    - type: is-json
      weight: 2
    - type: regex
      value: '"status": "(ok|error)"'
    - type: word-count
      max_words: 120
    - type: rouge-l          # needs the example's reference answer
      value: 0.3

Each entry has a `type` (see `python -m evals checks types`), the type's parameters (`value` fills the main
one), an optional `weight` (default 1) and `name`. Checks for one example only go in that example's
`checks` field and are added with `merge_checks`.

    >>> checks = parse_checks([{"type": "is-json"}, {"type": "word-count", "max_words": 50}])
    >>> weighted_score(run_checks('{"a": 1}', checks))
    1.0
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from common.atomic import atomic_write_text
from evals.registry import ALIASES, CHECK_TYPES, Context, needs_of
from evals.scorers.base import Score
from evals.scorers.style import embedding_similarities

_ENTRY_KEYS = {"type", "value", "weight", "name", "description"}
_SKIP_REASONS = {
    "reference": "no reference answer for this example",
    "sources": "no retrieved sources (not a RAG arm)",
    "embedder": "no embedder given",
}


@dataclass
class Check:
    """One check: a type from the registry, its parameters, a weight and a display name.

    `description` says why the check exists (inferred checks explain themselves here); it is written back
    to YAML as a comment-like field and ignored when scoring. Raises ValueError naming the bad field.
    """

    type: str
    params: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0
    name: str = ""
    description: str = ""
    _prepared: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _needs: frozenset = field(default=frozenset(), init=False, repr=False, compare=False)
    _scorer: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.type in ALIASES:
            self.type, fixed = ALIASES[self.type]
            self.params = {**self.params, **fixed}
        if self.type not in CHECK_TYPES:
            raise ValueError(
                f"field 'type': unknown check type {self.type!r} (known: {', '.join(CHECK_TYPES)})"
            )
        if not isinstance(self.weight, int | float) or isinstance(self.weight, bool) or self.weight < 0:
            raise ValueError(f"field 'weight' must be a number >= 0, got {self.weight!r}")
        kind = CHECK_TYPES[self.type]
        known = {p.name for p in kind.params}
        unknown = sorted(set(self.params) - known)
        if unknown:
            raise ValueError(
                f"field {unknown[0]!r} is not a parameter of {self.type} (known: {sorted(known)})"
            )
        self.params = kind.validate(self.params)
        self._prepared = kind.prepare(self.params)
        self._needs, self._scorer = needs_of(self.type, self.params), kind.score
        self.weight = float(self.weight)
        self.name = self.name or self.type

    @property
    def needs(self) -> frozenset[str]:
        """What the check needs besides the answer: "reference", "sources" and/or "embedder"."""
        return self._needs

    def score(self, answer: str, context: Context) -> Score:
        """Score `answer`; the caller has made sure the context holds what `needs` lists."""
        return self._scorer(self._prepared, answer, context)

    def to_dict(self) -> dict:
        """The entry as a user would write it: non-default parameters only, `value` not used."""
        defaults = {p.name: p.default for p in CHECK_TYPES[self.type].params}
        entry: dict[str, Any] = {"type": self.type}
        if self.name != self.type:
            entry["name"] = self.name
        entry.update({k: v for k, v in self.params.items() if v != defaults[k]})
        if self.weight != 1.0:
            entry["weight"] = self.weight
        if self.description:
            entry["description"] = self.description
        return entry


class CheckResult(NamedTuple):
    """One check's result on one answer; skipped checks (missing reference/sources/embedder) carry weight 0."""

    name: str
    type: str
    weight: float
    score: float
    passed: bool
    reason: str
    skipped: bool = False

    def to_dict(self) -> dict:
        return self._asdict()


def parse_check(entry: Mapping[str, Any]) -> Check:
    """One promptfoo-style entry (`type`, `value` or named parameters, `weight`, `name`) as a Check."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"must be a mapping with a 'type', got {type(entry).__name__}")
    if not isinstance(entry.get("type"), str):
        raise ValueError(f"field 'type' is required and must be a string, got {entry.get('type')!r}")
    kind = CHECK_TYPES.get(ALIASES.get(entry["type"], (entry["type"],))[0])
    params = {k: v for k, v in entry.items() if k not in _ENTRY_KEYS}
    if "value" in entry:
        if kind is None or kind.value is None:
            raise ValueError(
                f"field 'value' is not used by type {entry['type']!r}; name the parameter instead"
            )
        if kind.value in params:
            raise ValueError(f"fields 'value' and {kind.value!r} both given; keep one")
        params[kind.value] = entry["value"]
    name = entry.get("name", "")
    if not isinstance(name, str):
        raise ValueError(f"field 'name' must be a string, got {name!r}")
    return Check(
        str(entry["type"]), params, entry.get("weight", 1.0), name, str(entry.get("description", "") or "")
    )


def parse_checks(entries: Any, where: str = "checks") -> list[Check]:
    """Entries (a list, or a mapping with a `checks` list) as Checks.

    Raises ValueError "<where>[i] (<type>): field '<f>' ..." for the first bad entry, and for duplicate names.
    """
    if isinstance(entries, Mapping) and "checks" in entries:
        entries = entries["checks"]
    if not isinstance(entries, list):
        raise ValueError(f"{where}: expected a list of checks, got {type(entries).__name__}")
    checks, names = [], set()
    for i, entry in enumerate(entries):
        label = entry.get("type", "?") if isinstance(entry, Mapping) else "?"
        try:
            check = parse_check(entry)
        except ValueError as e:
            raise ValueError(f"{where}[{i}] ({label}): {e}") from None
        if check.name in names:
            raise ValueError(
                f"{where}[{i}] ({label}): field 'name': {check.name!r} is used twice; rename one"
            )
        names.add(check.name)
        checks.append(check)
    return checks


def load_checks(path: str | Path) -> list[Check]:
    """A check set from a .yaml/.yml or .json file; errors name the file and entry."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: check set file not found")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ValueError(
            f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {e}"
        ) from None
    return parse_checks(data, where=str(path))


def checks_to_yaml(checks: Sequence[Check]) -> str:
    """The check set as YAML a user can edit and load back with `load_checks`."""
    import yaml

    return yaml.safe_dump([c.to_dict() for c in checks], sort_keys=False, allow_unicode=True, width=100)


def save_checks(path: str | Path, checks: Sequence[Check]) -> Path:
    """Write the check set atomically, as JSON if `path` ends in .json, else YAML."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        text = json.dumps([c.to_dict() for c in checks], indent=2, ensure_ascii=False) + "\n"
    else:
        text = checks_to_yaml(checks)
    return atomic_write_text(path, text)


def merge_checks(global_checks: Sequence[Check], example_entries: Any, where: str = "example") -> list[Check]:
    """The global checks plus one example's own entries; an example check replaces a global one of the
    same name. `example_entries` None or empty means the global checks only."""
    if not example_entries:
        return list(global_checks)
    own = parse_checks(example_entries, where=f"{where} checks")
    replaced = {c.name for c in own}
    return [c for c in global_checks if c.name not in replaced] + own


def _missing(check: Check, context: Context) -> str | None:
    if not check.needs:
        return None
    for need in sorted(check.needs):
        value = getattr(context, need)
        if value is None or (need == "reference" and not value):
            return _SKIP_REASONS[need]
    return None


def _result(check: Check, score: Score) -> CheckResult:
    return CheckResult(check.name, check.type, check.weight, score.score, score.passed, score.reason)


def _skipped(check: Check, reason: str) -> CheckResult:
    return CheckResult(check.name, check.type, 0.0, 0.0, False, f"skipped: {reason}", skipped=True)


def run_checks(
    answer: str,
    checks: Sequence[Check],
    reference: str | None = None,
    sources: Sequence[Mapping] | None = None,
    embedder: Any = None,
) -> list[CheckResult]:
    """Every check on one answer, in order. Checks whose reference, sources or embedder is missing are
    skipped (weight 0), not failed: `sources=None` means a non-RAG arm, `sources=[]` a RAG arm that found
    nothing (RAG checks then fail)."""
    context = Context(reference, sources, embedder)
    results = []
    for check in checks:
        missing = _missing(check, context)
        results.append(_skipped(check, missing) if missing else _result(check, check.score(answer, context)))
    return results


def score_batch(
    answers: Sequence[str],
    checks: Sequence[Check],
    references: Sequence[str | None] | None = None,
    sources: Sequence[Sequence[Mapping] | None] | None = None,
    embedder: Any = None,
) -> list[list[CheckResult]]:
    """`run_checks` over many answers with the same checks; similarity checks embed all answers in one batch."""
    n = len(answers)
    references = list(references) if references is not None else [None] * n
    sources = list(sources) if sources is not None else [None] * n
    if len(references) != n or len(sources) != n:
        raise ValueError(f"got {n} answers, {len(references)} references and {len(sources)} source lists")
    batched = {
        c.name: _batched_similarity(c, answers, references, embedder)
        for c in checks
        if c.type == "similarity"
    }
    out = []
    for i, answer in enumerate(answers):
        results = run_checks(
            answer, [c for c in checks if c.name not in batched], references[i], sources[i], embedder
        )
        by_name = {r.name: r for r in results} | {name: scores[i] for name, scores in batched.items()}
        out.append([by_name[c.name] for c in checks])
    return out


def _batched_similarity(
    check: Check, answers: Sequence[str], references: list, embedder: Any
) -> list[CheckResult]:
    if embedder is None:
        return [_skipped(check, _SKIP_REASONS["embedder"])] * len(answers)
    todo = [i for i, ref in enumerate(references) if ref]
    scores = embedding_similarities([answers[i] for i in todo], [references[i] for i in todo], embedder,
                                    check.params["threshold"])  # fmt: skip
    results = [_skipped(check, _SKIP_REASONS["reference"])] * len(answers)
    for i, score in zip(todo, scores, strict=True):
        results[i] = _result(check, score)
    return results


def weighted_score(results: Sequence[CheckResult]) -> float | None:
    """The weight-averaged score of the checks that ran; None when none ran (or all weigh 0)."""
    total = sum(r.weight for r in results if not r.skipped)
    if total == 0:
        return None
    return round(sum(r.weight * r.score for r in results if not r.skipped) / total, 4)
