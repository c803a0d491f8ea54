"""The validation report: what a dataset will really look like to training, before any training starts.

Rows read / usable / skipped (each skipped row with its number and reason), exact duplicates, empty answers,
the token-length distribution measured with the model's own chat template (plus a histogram the UI plots), how
many examples exceed `max_seq_len` and would be truncated, and the train/eval split sizes.

    from tuner.data import load_dataset
    from tuner.validate import validate
    report = validate(load_dataset("data.json"), tokenizer, max_seq_len=1024, eval_fraction=0.1, seed=42)
    print(report.format_text())                    # or report.to_json(); CLI: python -m tuner validate FILE
"""

from __future__ import annotations

import bisect
import json
import math
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from tuner.data import Example, LoadedDataset, SkippedRow, find_placeholders, split_examples

MAX_LISTED = 20  # skipped rows, duplicates and long rows listed in the report (all are counted)
HISTOGRAM_BINS = 20
EMPTY_ANSWER = "empty answer"
TEMPLATE_ERROR = "chat template error"


@dataclass
class TokenStats:
    """Token counts per example, chat template included."""

    min: int
    median: float
    p95: int
    max: int
    mean: float
    total: int


@dataclass
class ValidationReport:
    """Everything the user should know about a dataset before training on it."""

    path: str
    format: str
    rows_read: int
    usable: int
    skipped: int
    skipped_rows: list[SkippedRow]  # the first MAX_LISTED
    skip_reasons: dict[str, int]  # reason (without details) -> rows, most common first
    duplicates: int  # examples identical to an earlier one
    duplicate_rows: list[tuple[int, int]]  # (row, row it repeats), the first MAX_LISTED
    empty_answers: int
    max_seq_len: int
    template_tokens: int  # what the chat template alone costs (an empty user/assistant exchange)
    tokens: TokenStats
    histogram: dict[
        str, list[int]
    ]  # {"edges": [e0, ..., en], "counts": [c1, ..., cn]}, bin i is [e_i, e_i+1)
    over_max_seq_len: int  # examples longer than max_seq_len: truncated in training
    over_max_rows: list[int]  # the first MAX_LISTED of them
    prompt_over_max_seq_len: (
        int  # examples whose first answer starts beyond max_seq_len: nothing left to learn
    )
    eval_fraction: float
    seed: int
    train_size: int
    eval_size: int
    placeholders: dict[str, int] = field(default_factory=dict)  # unfilled {{key}} -> examples holding it
    examples: list[Example] = field(default_factory=list, repr=False, compare=False)  # usable; not serialized

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("examples")
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def format_text(self) -> str:
        """The report as readable lines for a terminal."""
        return "\n".join(_text_lines(self))


def validate(
    dataset: LoadedDataset, tokenizer, max_seq_len: int, eval_fraction: float, seed: int
) -> ValidationReport:
    """Measure `dataset` with the tokenizer's chat template and build the report.

    Examples the chat template cannot render are counted as skipped (reason "chat template error") and left
    out of `report.examples`, the usable examples training should use.

    Raises:
        ValueError: max_seq_len is not a positive integer or is smaller than the chat template itself, a bad
            eval_fraction, or no example renders.
    """
    if isinstance(max_seq_len, bool) or not isinstance(max_seq_len, int) or max_seq_len < 1:
        raise ValueError(f"max_seq_len must be a positive integer, got {max_seq_len!r}")
    overhead = template_tokens(tokenizer)
    if max_seq_len <= overhead:
        raise ValueError(
            f"max_seq_len={max_seq_len} is smaller than the chat template itself: an empty user/assistant "
            f"exchange already takes {overhead} tokens with this model's template; use at least {overhead + 64}"
        )
    examples, lengths, prompt_lengths, rejected = _measure(dataset.examples, tokenizer)
    if not examples:
        raise ValueError(
            f"{dataset.path}: the chat template could not render any example: {rejected[0].reason}"
        )
    skipped = sorted(dataset.skipped + rejected, key=lambda s: s.row)
    train, held_out = split_examples(examples, eval_fraction, seed)
    duplicate_rows = _duplicates(examples)
    over = [ex.row for ex, n in zip(examples, lengths, strict=True) if n > max_seq_len]
    return ValidationReport(
        path=dataset.path,
        format=dataset.format,
        rows_read=dataset.rows_read,
        usable=len(examples),
        skipped=len(skipped),
        skipped_rows=skipped[:MAX_LISTED],
        skip_reasons=dict(Counter(s.kind for s in skipped).most_common()),
        duplicates=len(duplicate_rows),
        duplicate_rows=duplicate_rows[:MAX_LISTED],
        empty_answers=sum(s.kind == EMPTY_ANSWER for s in skipped),
        max_seq_len=max_seq_len,
        template_tokens=overhead,
        tokens=_stats(lengths),
        histogram=histogram(lengths),
        over_max_seq_len=len(over),
        over_max_rows=over[:MAX_LISTED],
        prompt_over_max_seq_len=sum(n >= max_seq_len for n in prompt_lengths),
        eval_fraction=eval_fraction,
        seed=seed,
        train_size=len(train),
        eval_size=len(held_out),
        placeholders=find_placeholders(examples),
        examples=examples,
    )


def template_tokens(tokenizer) -> int:
    """Tokens the chat template adds around an empty user/assistant exchange (incl. any default system prompt)."""
    empty = [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}]
    try:
        text = tokenizer.apply_chat_template(empty, tokenize=False)
    except Exception as e:  # no template at all, or one that refuses a plain exchange
        raise ValueError(f"the model's chat template cannot render a user/assistant exchange: {e}") from None
    return _lengths(tokenizer, [text])[0]


def _measure(
    examples: list[Example], tokenizer
) -> tuple[list[Example], list[int], list[int], list[SkippedRow]]:
    """Token counts of every example, whole and up to its first answer; examples the template rejects are skipped."""
    kept, texts, prompts, rejected = [], [], [], []
    for ex in examples:
        try:
            text = tokenizer.apply_chat_template(ex.messages, tools=ex.tools, tokenize=False)
            prompt = tokenizer.apply_chat_template(
                _before_first_answer(ex.messages), tools=ex.tools, tokenize=False, add_generation_prompt=True
            )
        except Exception as e:  # jinja errors of the model's template (e.g. roles must alternate)
            rejected.append(SkippedRow(ex.row, f"the model's chat template rejects it: {e}", TEMPLATE_ERROR))
            continue
        kept.append(ex)
        texts.append(text)
        prompts.append(prompt)
    lengths, prompt_lengths = _lengths_with_prefixes(tokenizer, texts, prompts)
    return kept, lengths, prompt_lengths, rejected


def _lengths_with_prefixes(tokenizer, texts: list[str], prefixes: list[str]) -> tuple[list[int], list[int]]:
    """Token counts of `texts` and of their `prefixes`, tokenizing the texts once where the tokenizer gives offsets.

    A prefix's count is the number of tokens of the whole text that start inside it, so a token straddling the
    boundary counts as prefix; prefixes that are not a prefix of their text (or a slow tokenizer) are tokenized.
    """
    if not texts:
        return [], []
    try:
        encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError:  # slow (Python) tokenizers have no offsets
        return _lengths(tokenizer, texts), _lengths(tokenizer, prefixes)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    counts: list[int | None] = [
        bisect.bisect_left([start for start, _ in offsets], len(prefix)) if text.startswith(prefix) else None
        for text, prefix, offsets in zip(texts, prefixes, encoded["offset_mapping"], strict=True)
    ]
    missing = [i for i, n in enumerate(counts) if n is None]
    for i, n in zip(missing, _lengths(tokenizer, [prefixes[i] for i in missing]), strict=True):
        counts[i] = n
    return lengths, counts


def _before_first_answer(messages: list[dict]) -> list[dict]:
    first = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return messages[:first]


def _lengths(tokenizer, texts: list[str]) -> list[int]:
    # The rendered template already holds the special tokens; this is what apply_chat_template(tokenize=True) does.
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []


def _duplicates(examples: list[Example]) -> list[tuple[int, int]]:
    first_row: dict[str, int] = {}
    repeats = []
    for ex in examples:
        key = json.dumps([ex.messages, ex.tools], sort_keys=True, ensure_ascii=False)
        if key in first_row:
            repeats.append((ex.row, first_row[key]))
        else:
            first_row[key] = ex.row
    return repeats


def _stats(lengths: list[int]) -> TokenStats:
    ordered = sorted(lengths)
    p95 = ordered[math.ceil(0.95 * len(ordered)) - 1]  # nearest rank
    return TokenStats(
        min=ordered[0],
        median=statistics.median(ordered),
        p95=p95,
        max=ordered[-1],
        mean=round(statistics.fmean(ordered), 1),
        total=sum(ordered),
    )


def histogram(lengths: list[int], bins: int = HISTOGRAM_BINS) -> dict[str, list[int]]:
    """Equal-width integer bins from min to max: {"edges": n+1 ints, "counts": n ints}; bin i is [e_i, e_i+1)."""
    low, high = min(lengths), max(lengths)
    width = max(1, math.ceil((high - low + 1) / bins))
    n_bins = math.ceil((high - low + 1) / width)
    counts = [0] * n_bins
    for n in lengths:
        counts[(n - low) // width] += 1
    return {"edges": [low + i * width for i in range(n_bins + 1)], "counts": counts}


def _text_lines(r: ValidationReport) -> list[str]:
    lines = [
        f"Dataset     {r.path} ({r.format})",
        f"Rows        {r.rows_read} read, {r.usable} usable, {r.skipped} skipped",
        *_skipped_lines(r),
        f"Empty answers  {r.empty_answers}",
    ]
    dupes = ", ".join(f"{row} = {first}" for row, first in r.duplicate_rows[:5])
    lines.append(
        f"Duplicates  {r.duplicates}" + (f" exact repeats (row = earlier row: {dupes}, ...)" if dupes else "")
    )
    if r.placeholders:
        names = ", ".join(f"{{{{{k}}}}} in {n}" for k, n in r.placeholders.items())
        lines.append(f"Placeholders  unfilled: {names} examples (fill them before training)")
    t = r.tokens
    lines += [
        f"Tokens      min {t.min}, median {t.median:g}, p95 {t.p95}, max {t.max}, total {t.total} "
        f"(chat template included; {r.template_tokens} for an empty exchange)",
        *_histogram_lines(r.histogram, r.max_seq_len),
        _truncation_line(r),
        f"Split       {r.train_size} train / {r.eval_size} eval (eval_fraction {r.eval_fraction}, seed {r.seed})",
    ]
    return lines


def _skipped_lines(r: ValidationReport) -> list[str]:
    """One line per reason: how many rows, the first listed rows, and one full reason as an example."""
    lines = []
    for kind, count in r.skip_reasons.items():
        listed = [s for s in r.skipped_rows if s.kind == kind]
        rows = ", ".join(str(s.row) for s in listed[:8]) + (", ..." if count > min(len(listed), 8) else "")
        lines.append(f"  {count} x {kind}" + (f": rows {rows}" if listed else ""))
        if listed and listed[0].reason != kind:
            lines.append(f"      e.g. row {listed[0].row}: {listed[0].reason}")
    return lines


def _truncation_line(r: ValidationReport) -> str:
    if not r.over_max_seq_len:
        return f"Truncation  none: every example fits max_seq_len {r.max_seq_len}"
    share = 100 * r.over_max_seq_len / r.usable
    rows = ", ".join(map(str, r.over_max_rows[:10]))
    line = f"Truncation  {r.over_max_seq_len} examples ({share:.1f}%) exceed max_seq_len {r.max_seq_len} (rows {rows}"
    line += ", ...)" if r.over_max_seq_len > 10 else ")"
    if r.prompt_over_max_seq_len:
        line += (
            f"; in {r.prompt_over_max_seq_len} the first answer starts beyond it, leaving nothing to learn"
        )
    return line


def _histogram_lines(hist: dict[str, list[int]], max_seq_len: int, width: int = 40) -> list[str]:
    """Text bars, one per bin; a run of empty bins is folded into one line."""
    top = max(hist["counts"])
    bins = list(zip(hist["edges"], hist["edges"][1:], hist["counts"], strict=False))
    lines, i = [], 0
    while i < len(bins):
        low, high, count = bins[i]
        while count == 0 and i + 1 < len(bins) and bins[i + 1][2] == 0:
            i += 1
            high = bins[i][1]
        bar = "#" * max(1 if count else 0, round(width * count / top))
        mark = "  > max_seq_len" if low > max_seq_len else "  <- max_seq_len" if max_seq_len < high else ""
        lines.append(f"  {low:>6}-{high - 1:<6} {count:>6} {bar}{mark}")
        i += 1
    return lines
