"""Dataset loading: a JSON, JSONL, CSV/TSV or Parquet file in, chat examples (`system`/`user`/`assistant`) out.

Supported row formats (auto-detected from the fields, or forced with `fmt=`):

- `alpaca`: `instruction`, optional `input`, `output`, optional `system`, optional `history` ([user, answer] pairs)
- `sharegpt`: `conversations` of `{from, value}` (human/gpt/system; function_call/observation become tool turns
  when the model's chat template has a tool role), optional `system` and `tools`
- `openai`: `messages` of `{role, content}`, content a string or a list of `{"type": "text", "text"|"value"}` parts
- `prompt_completion`: `prompt`, `completion` (strings or message lists), optional `system`
- `columns`: any two text columns, e.g. `columns={"prompt": "question", "response": "answer", "system": None}`

A file that cannot be read is one `ValueError` naming the file and what to do; a bad row is skipped and reported
(`LoadedDataset.skipped`, with its 1-based row number: the N-th record, or the line number in JSONL).

    from tuner.data import load_dataset
    ds = load_dataset("alpaca_en_demo.json")       # python -m tuner validate FILE prints the report
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tuner.data_files import DEFAULT_MAX_BYTES, RowError, read_rows, type_name
from tuner.data_formats import convert_row

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMATS",
    "Example",
    "LoadedDataset",
    "SkippedRow",
    "detect_format",
    "fill_placeholders",
    "find_placeholders",
    "load_dataset",
    "split_examples",
    "tool_roles_supported",
]

Message = dict  # {"role": "system"|"user"|"assistant"|"tool", "content": str}

FORMATS = ("auto", "alpaca", "sharegpt", "openai", "prompt_completion", "columns")
COLUMN_KEYS = ("prompt", "response", "system")
# Column pairs recognised without an explicit mapping (matched case-insensitively), most specific first.
COLUMN_PAIRS = [
    ("question", "answer"),
    ("query", "response"),
    ("prompt", "response"),
    ("instruction", "response"),
    ("input", "output"),
    ("user", "assistant"),
]
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass
class Example:
    """One training conversation and where it came from."""

    messages: list[dict]
    row: int  # 1-based row number in the file
    tools: list | None = None  # tool definitions of the row (ShareGPT/OpenAI `tools`), for the chat template


@dataclass
class SkippedRow:
    """A row that could not become an example, and why."""

    row: int
    reason: str  # readable, with details ("field 'output' must be a string, got int")
    kind: str = ""  # the reason without details, for counting ("not a string"); defaults to `reason`

    def __post_init__(self) -> None:
        self.kind = self.kind or self.reason


@dataclass
class LoadedDataset:
    """What `load_dataset` read: the usable examples and every skipped row."""

    path: str
    format: str
    rows_read: int
    examples: list[Example]
    skipped: list[SkippedRow]
    columns: dict | None = None  # the column mapping used by the `columns` format


def load_dataset(
    path: str | Path,
    fmt: str = "auto",
    columns: dict | None = None,
    *,
    tool_roles: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> LoadedDataset:
    """Read a dataset file and normalize every row to chat messages.

    Args:
        path: a .json (array, or object of arrays), .jsonl, .csv, .tsv or .parquet file.
        fmt: one of FORMATS; "auto" detects it from the fields of the first rows.
        columns: for fmt "columns" (or "auto"): {"prompt": col, "response": col, "system": col or None}.
        tool_roles: whether the model's chat template renders a "tool" role (`tool_roles_supported`);
            rows with tool turns are skipped when it does not.
        max_bytes: files larger than this are refused.

    Raises:
        ValueError: unreadable file, wrong shape, unknown format or columns, or no usable row (naming the most
            common reason).
    """
    path = Path(path)
    columns = _check_options(fmt, columns)
    rows = read_rows(path, max_bytes)
    if not rows:
        raise ValueError(f"{path.name} holds no rows: add at least one example")
    if fmt == "auto":
        fmt, columns = detect_format(rows, path.name, columns)
    elif fmt == "columns":
        _check_columns_exist(rows, path.name, columns)
    examples, skipped = [], []
    for number, row in rows:
        try:
            if isinstance(row, RowError):
                raise row
            messages, tools = convert_row(fmt, row, tool_roles=tool_roles, columns=columns)
            examples.append(Example(messages, number, tools))
        except RowError as e:
            skipped.append(SkippedRow(number, e.reason, e.kind))
    if not examples:
        raise ValueError(_all_invalid_message(path.name, fmt, skipped))
    return LoadedDataset(str(path), fmt, len(rows), examples, skipped, columns)


def _check_options(fmt: str, columns: dict | None) -> dict | None:
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if columns is None:
        if fmt == "columns":
            raise ValueError(
                "fmt='columns' needs columns={'prompt': COLUMN, 'response': COLUMN, 'system': None}"
            )
        return None
    if fmt not in ("auto", "columns"):
        raise ValueError(f"columns only applies to fmt='columns' (or 'auto'), got fmt={fmt!r}")
    unknown = sorted(set(columns) - set(COLUMN_KEYS))
    if unknown:
        raise ValueError(f"columns keys must be among {', '.join(COLUMN_KEYS)}, got {unknown}")
    for key in ("prompt", "response"):
        if not isinstance(columns.get(key), str) or not columns[key]:
            raise ValueError(f"columns[{key!r}] must name a column of the file, got {columns.get(key)!r}")
    if columns.get("system") is not None and not isinstance(columns["system"], str):
        raise ValueError(f"columns['system'] must be a column name or None, got {columns['system']!r}")
    return {"prompt": columns["prompt"], "response": columns["response"], "system": columns.get("system")}


def _field_names(rows: list[tuple[int, Any]], limit: int = 100) -> list[str]:
    names: dict[str, None] = {}
    for _, row in rows[:limit]:
        if isinstance(row, dict):
            names.update(dict.fromkeys(row))
    return list(names)


def detect_format(
    rows: list[tuple[int, Any]], name: str, columns: dict | None = None
) -> tuple[str, dict | None]:
    """The format of `rows` (and the column mapping for "columns"), from the fields of the first rows."""
    fields = _field_names(rows)
    if not fields:
        readable = [(number, row) for number, row in rows if not isinstance(row, RowError)]
        if not readable:  # e.g. a .jsonl file with no valid JSON line
            skipped = [SkippedRow(number, row.reason, row.kind) for number, row in rows]
            raise ValueError(_all_invalid_message(name, None, skipped))
        number, first = readable[0]
        raise ValueError(
            f"{name}: expected rows that are objects with fields, but row {number} is {type_name(first)}"
        )
    if columns is not None:
        _check_columns_exist(rows, name, columns)
        return "columns", columns
    keys = set(fields)
    for fmt, needed in (
        ("openai", {"messages"}),
        ("sharegpt", {"conversations"}),
        ("alpaca", {"instruction", "output"}),
        ("prompt_completion", {"prompt", "completion"}),
    ):
        if needed <= keys:
            return fmt, None
    lower = {f.lower(): f for f in fields}
    for prompt, response in COLUMN_PAIRS:
        if prompt in lower and response in lower:
            return "columns", {
                "prompt": lower[prompt],
                "response": lower[response],
                "system": lower.get("system"),
            }
    raise ValueError(
        f"{name}: cannot tell the format from its fields {fields[:12]}; expected alpaca (instruction/output), "
        "sharegpt (conversations), openai (messages), prompt/completion or question/answer columns; "
        "pass fmt='columns' with columns={'prompt': ..., 'response': ...}"
    )


def _check_columns_exist(rows: list[tuple[int, Any]], name: str, columns: dict) -> None:
    fields = _field_names(rows)
    for key in COLUMN_KEYS:
        if columns.get(key) is not None and columns[key] not in fields:
            raise ValueError(
                f"{name}: column {columns[key]!r} (columns[{key!r}]) not found; its columns are {fields}"
            )


def _all_invalid_message(name: str, fmt: str | None, skipped: list[SkippedRow]) -> str:
    kind, count = Counter(s.kind for s in skipped).most_common(1)[0]
    first = next(s for s in skipped if s.kind == kind)
    return (
        f"{name}: all {len(skipped)} rows are invalid{f' as {fmt}' if fmt else ''}; most common reason ({count} rows): "
        f"{first.reason} (first at row {first.row}). Fix the file or choose the format/columns explicitly"
    )


# --- after loading ---------------------------------------------------------------------------------------------


def split_examples(
    examples: list[Example], eval_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """A deterministic train/eval split: the same examples, fraction and seed always give the same split.

    The eval set gets round(n * eval_fraction) examples, at least one when eval_fraction > 0 and n >= 2, and the
    train set keeps at least one. Both keep file order.
    """
    if (
        isinstance(eval_fraction, bool)
        or not isinstance(eval_fraction, (int, float))
        or not 0 <= eval_fraction < 1
    ):
        raise ValueError(f"eval_fraction must be a number in [0, 1), got {eval_fraction!r}")
    n = len(examples)
    n_eval = round(n * eval_fraction)
    if eval_fraction > 0 and n >= 2:
        n_eval = max(n_eval, 1)
    n_eval = min(n_eval, max(n - 1, 0))
    chosen = set(random.Random(seed).sample(range(n), n_eval))
    train = [e for i, e in enumerate(examples) if i not in chosen]
    return train, [e for i, e in enumerate(examples) if i in chosen]


def fill_placeholders(examples: list[Example], values: dict[str, str]) -> list[Example]:
    """Copies of `examples` with `{{key}}` replaced by `values[key]` in every message (unknown keys stay)."""

    def fill(text: str) -> str:
        return PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)

    return [
        replace(ex, messages=[{**m, "content": fill(m["content"])} for m in ex.messages]) for ex in examples
    ]


def find_placeholders(examples: list[Example]) -> dict[str, int]:
    """How many examples hold each `{{key}}` placeholder (left unfilled, the model would learn it literally)."""
    counts: Counter[str] = Counter()
    for ex in examples:
        counts.update({m for msg in ex.messages for m in PLACEHOLDER.findall(msg["content"])})
    return dict(counts.most_common())


def tool_roles_supported(tokenizer) -> bool:
    """Whether the tokenizer's chat template renders a "tool" message (rather than failing or dropping it)."""
    marker = "tool-result-5f3a"
    messages = [
        {"role": "user", "content": "What is the weather?"},
        {"role": "assistant", "content": '{"name": "weather", "arguments": {}}'},
        {"role": "tool", "content": marker},
        {"role": "assistant", "content": "Sunny."},
    ]
    try:
        rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    except (
        Exception
    ):  # templates signal unsupported roles by raising (jinja raise_exception) or lack a template
        return False
    return isinstance(rendered, str) and marker in rendered
