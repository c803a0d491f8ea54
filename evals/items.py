"""Eval items: the held-out examples of an eval run, as question, history, system prompt and reference answer.

The data is a dataset file in any format the training loader reads (`tuner.data.load_dataset`; bad files fail
with the same messages as training validation), or a training run folder: its saved eval split
(`data.jsonl`, rows with `"split": "eval"`), or when the run saved none, the split recomputed from its
`train_config.json` (data, eval_fraction, seed) with `tuner.data.split_examples`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

RUN_DATA_FILE = "data.jsonl"  # tuner.train: one line per example with its split
RUN_CONFIG_FILE = "train_config.json"  # tuner.train: {"run_id", "config": TrainConfig fields}


@dataclass(frozen=True)
class EvalItem:
    """One held-out example: the last user turn is the question, the assistant's answer the reference."""

    index: int  # 0-based position in the eval set
    row: int  # 1-based row in the source file
    question: str
    reference: str | None
    system: str | None = None
    history: list[dict] = field(default_factory=list)


def to_item(index: int, row: int, messages: list[dict], default_system: str | None = None) -> EvalItem | None:
    """The example's last user turn (and what came before it) and the answer after it; None without a question."""
    text = [m for m in messages if isinstance(m.get("content"), str)]
    system = text[0]["content"] if text and text[0]["role"] == "system" else default_system
    turns = text[1:] if text and text[0]["role"] == "system" else text
    users = [i for i, m in enumerate(turns) if m["role"] == "user"]
    if not users or not turns[users[-1]]["content"].strip():
        return None
    last = users[-1]
    after = [m["content"] for m in turns[last + 1 :] if m["role"] == "assistant"]
    reference = after[0] if after and after[0].strip() else None
    return EvalItem(index, row, turns[last]["content"].strip(), reference, system, turns[:last])


def _items(pairs: list[tuple[int, list[dict]]], limit: int | None, system: str | None) -> list[EvalItem]:
    items = []
    for row, messages in pairs:
        item = to_item(len(items), row, messages, system)
        if item is not None:
            items.append(item)
        if limit is not None and len(items) >= limit:
            break
    return items


def _run_split(folder: Path) -> tuple[list[tuple[int, list[dict]]], str]:
    """(row, messages) of a training run's eval split, and where they came from."""
    saved = folder / RUN_DATA_FILE
    if saved.is_file():
        pairs = []
        for i, line in enumerate(saved.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                raise ValueError(f"{saved}: line {i} is not valid JSON; the run folder is damaged") from None
            if entry.get("split") == "eval":
                pairs.append((entry.get("row", i), entry["messages"]))
        return pairs, f"the eval split saved by training run {folder.name} ({saved.name})"
    return _recomputed_split(folder)


def _recomputed_split(folder: Path) -> tuple[list[tuple[int, list[dict]]], str]:
    from tuner.data import load_dataset, split_examples

    path = folder / RUN_CONFIG_FILE
    if not path.is_file():
        raise ValueError(
            f"{folder} is neither a dataset file nor a training run folder (no {RUN_DATA_FILE} or {RUN_CONFIG_FILE})"
        )
    config = json.loads(path.read_text(encoding="utf-8")).get("config", {})
    if not config.get("data"):
        raise ValueError(f"{path} names no dataset file: pass the held-out data with --data FILE")
    dataset = load_dataset(config["data"], config.get("data_format", "auto"), config.get("columns"))
    _, held_out = split_examples(dataset.examples, config.get("eval_fraction", 0.1), config.get("seed", 42))
    note = (
        f"the eval split of training run {folder.name}, recomputed from {config['data']} "
        f"(eval_fraction {config.get('eval_fraction')}, seed {config.get('seed')})"
    )
    return [(e.row, e.messages) for e in held_out], note


def load_items(
    data: str | Path, fmt: str = "auto", limit: int | None = None, system: str | None = None
) -> tuple[list[EvalItem], str]:
    """The eval items of a dataset file or a training run folder, and a note saying where they came from.

    Raises:
        ValueError: the file cannot be read (the training loader's message), or no example has a question.
    """
    from tuner.data import load_dataset

    path = Path(data)
    if path.is_dir():
        pairs, note = _run_split(path)
    elif path.is_file():
        dataset = load_dataset(path, fmt)
        pairs = [(e.row, e.messages) for e in dataset.examples]
        skipped = f", {len(dataset.skipped)} rows skipped" if dataset.skipped else ""
        note = f"{path.name} ({dataset.format} format, {len(pairs)} examples{skipped})"
    else:
        raise ValueError(f"eval data {path} does not exist: pass a dataset file or a training run folder")
    items = _items(pairs, limit, system)
    if not items:
        raise ValueError(
            f"the eval set is empty: {note} holds no example with a user question. "
            "Pass a dataset with at least one example (or train with eval_fraction > 0)."
        )
    return items, note


def run_dir_adapter(data: str | Path, arms: str) -> list[str]:
    """[the training run folder] when `data` is one holding an adapter and a fine-tuned arm is asked for."""
    path = Path(data)
    wants_ft = any(k.startswith("ft") for k in arms.split(","))
    has_adapter = any((path / sub / "adapter_config.json").is_file() for sub in (".", "adapter"))
    return [str(path)] if wants_ft and path.is_dir() and has_adapter else []
