"""Forgetting check: does fine-tuning cost general ability? A built-in set of 36 short general questions
(capitals, arithmetic, colours, opposites, science, everyday facts; `evals/data/general.jsonl`, written for
this project) with expected answers, scored per arm.

The eval run generates one answer per question and arm (`general_questions()` gives the prompts); this module
only scores them. An answer is correct when it contains any expected answer as a whole word, ignoring case:

    >>> questions = general_questions()
    >>> report = score_forgetting({"base": ["Paris"] * 36, "ft": ["Lyon"] * 36}, questions)
    >>> report.arm("ft").drop
    0.0278
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

GENERAL_SET = Path(__file__).resolve().parent / "data" / "general.jsonl"


@dataclass(frozen=True)
class GeneralQuestion:
    id: str
    category: str
    prompt: str
    expected: tuple[str, ...]  # any of these, as a whole word, case-insensitive

    def is_correct(self, answer: str) -> bool:
        return any(_whole_word(e).search(answer) for e in self.expected)


def _whole_word(text: str) -> re.Pattern:
    # (?<!\w) / (?!\w) rather than \b so "4" does not match "14" and expected answers may end in symbols.
    return re.compile(rf"(?<!\w){re.escape(text)}(?!\w)", re.I)


def general_questions(path: str | Path = GENERAL_SET) -> list[GeneralQuestion]:
    """The general-ability questions (the built-in set by default). Raises ValueError naming a bad line."""
    questions = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            expected = row["expected"]
            if (
                not isinstance(expected, list)
                or not expected
                or not all(isinstance(e, str) and e for e in expected)
            ):
                raise ValueError("'expected' must be a non-empty list of strings")
            questions.append(GeneralQuestion(row["id"], row["category"], row["prompt"], tuple(expected)))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ValueError(
                f"{path}: line {i}: {e}; each line needs id, category, prompt, expected"
            ) from None
    return questions


@dataclass(frozen=True)
class ArmAccuracy:
    arm: str
    correct: int
    total: int
    accuracy: float
    drop: float | None  # base accuracy minus this arm's (positive = forgot); None for the base or without one
    by_category: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ForgettingReport:
    base_arm: str | None
    arms: list[ArmAccuracy]
    correct: dict[str, list[bool]]  # per arm, per question
    questions: list[GeneralQuestion]

    def arm(self, name: str) -> ArmAccuracy:
        for a in self.arms:
            if a.arm == name:
                return a
        raise ValueError(f"no arm {name!r} in the forgetting report (arms: {[a.arm for a in self.arms]})")

    def regressions(self, arm: str) -> list[GeneralQuestion]:
        """Questions the base arm got right and `arm` got wrong."""
        if self.base_arm is None:
            return []
        base, mine = self.correct[self.base_arm], self.correct[arm]
        return [q for q, b, m in zip(self.questions, base, mine, strict=True) if b and not m]

    def to_dict(self) -> dict:
        return {
            "base_arm": self.base_arm,
            "arms": [asdict(a) for a in self.arms],
            "regressions": {a.arm: [q.id for q in self.regressions(a.arm)] for a in self.arms},
        }


def score_forgetting(
    answers_by_arm: Mapping[str, Sequence[str]],
    questions: Sequence[GeneralQuestion] | None = None,
    base_arm: str = "base",
) -> ForgettingReport:
    """Accuracy per arm on the general set and each arm's drop against `base_arm` (if it was run).

    Raises ValueError when no arm is given or an arm's answers do not line up with the questions.
    """
    questions = list(questions) if questions is not None else general_questions()
    if not answers_by_arm:
        raise ValueError("no arms to score: answers_by_arm is empty")
    if not questions:
        raise ValueError("the general-ability question set is empty")
    correct = {}
    for arm, answers in answers_by_arm.items():
        if len(answers) != len(questions):
            raise ValueError(f"arm {arm!r} has {len(answers)} answers for {len(questions)} questions")
        correct[arm] = [
            q.is_correct(a if isinstance(a, str) else "") for q, a in zip(questions, answers, strict=True)
        ]
    base = base_arm if base_arm in correct else None
    base_acc = _accuracy(correct[base]) if base else None
    arms = [
        ArmAccuracy(arm, sum(flags), len(flags), _accuracy(flags),
                    None if base_acc is None or arm == base else round(base_acc - _accuracy(flags), 4),
                    _by_category(questions, flags))
        for arm, flags in correct.items()
    ]  # fmt: skip
    return ForgettingReport(base, arms, correct, questions)


def _accuracy(flags: Sequence[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else 0.0


def _by_category(questions: Sequence[GeneralQuestion], flags: Sequence[bool]) -> dict[str, float]:
    cats: dict[str, list[bool]] = {}
    for q, ok in zip(questions, flags, strict=True):
        cats.setdefault(q.category, []).append(ok)
    return {c: _accuracy(v) for c, v in cats.items()}
