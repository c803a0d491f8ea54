"""Turning chat examples into training batches: tokens, assistant-only labels, length-grouped order, collation.

Each example is rendered with the model's own chat template. Loss is put on assistant turns only by rendering the
chat turn by turn: the tokens an assistant turn adds after its generation prompt are its answer. Batches come in
three shapes (`TrainConfig.batching`):

- `grouped`: examples of similar length share a batch, padded to the longest of the batch (little padding, no
  attention masking cost). The default.
- `padding_free`: a batch is flattened into one row with per-example position ids; transformers builds a
  block-diagonal mask from them, so examples never attend to each other (no cross-contamination).
- `max_length`: every batch padded to `max_seq_len` (static shapes; the slow baseline of the benchmark).

Used by `tuner.train`; nothing here loads a model.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

IGNORE = -100  # label value the loss skips


@dataclass
class Tokenized:
    """One training example as token ids and labels (IGNORE where no loss is taken)."""

    input_ids: list[int]
    labels: list[int]
    row: int = 0

    @property
    def supervised(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def _render(tokenizer, messages: list[dict], generation_prompt: bool, tools: list | None = None) -> list[int]:
    out = tokenizer.apply_chat_template(
        messages, tools=tools, add_generation_prompt=generation_prompt, tokenize=True, return_dict=True
    )
    return list(out["input_ids"])


def tokenize_chat(
    tokenizer, messages: list[dict], max_seq_len: int, assistant_only: bool = True, tools: list | None = None
) -> Tokenized:
    """Token ids of a chat (chat template applied) and its labels, truncated to `max_seq_len` (keeping the start).

    With `assistant_only`, labels are IGNORE except on the tokens each assistant turn adds (its answer and the
    end-of-turn marker). Raises ValueError when the template does not render a chat as a prefix of its longer
    continuation (then assistant-only labels cannot be placed: set assistant_only_loss to False).
    """
    ids = _render(tokenizer, messages, False, tools)
    if not assistant_only:
        labels = list(ids)
    else:
        labels = [IGNORE] * len(ids)
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            start = len(_render(tokenizer, messages[:i], True, tools)) if i else 0
            upto = _render(tokenizer, messages[: i + 1], False, tools)
            end = len(upto)
            if ids[:end] != upto:
                raise ValueError(
                    "the chat template does not render turns incrementally, so assistant-only loss cannot be "
                    "placed: set assistant_only_loss=False (--no-assistant-only-loss)"
                )
            labels[start:end] = ids[start:end]
    return Tokenized(ids[:max_seq_len], labels[:max_seq_len])


def tokenize_examples(
    tokenizer, examples, max_seq_len: int, assistant_only: bool = True
) -> tuple[list[Tokenized], int]:
    """Tokenize every example; returns the usable ones and how many were dropped (no answer token left)."""
    kept, dropped = [], 0
    for example in examples:
        item = tokenize_chat(
            tokenizer, example.messages, max_seq_len, assistant_only, getattr(example, "tools", None)
        )
        item.row = example.row
        if item.supervised == 0:
            dropped += 1  # truncation cut the whole answer away: nothing to learn from it
        else:
            kept.append(item)
    return kept, dropped


class TokenDataset:
    """A map-style dataset over Tokenized examples (what the Trainer's dataloader indexes)."""

    def __init__(self, items: list[Tokenized]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return {"input_ids": self.items[i].input_ids, "labels": self.items[i].labels}

    def lengths(self) -> list[int]:
        return [len(x.input_ids) for x in self.items]


class LengthGroupedSampler:
    """Random order, but (with `group`) each run of `batch_size` indices has similar lengths.

    Shuffles, cuts the order into mega-batches of `batch_size * 32`, sorts each by length and shuffles the batches.
    The order is a pure function of (seed, epoch), so a resumed run sees exactly the batches the first run would have.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int, group: bool = True) -> None:
        self.lengths = lengths
        self.batch_size = batch_size
        self.seed = seed
        self.group = group
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        if not self.group:
            return iter(order)
        mega = self.batch_size * 32
        batches = []
        for start in range(0, len(order), mega):
            chunk = sorted(order[start : start + mega], key=lambda i: -self.lengths[i])
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        rng.shuffle(batches)
        return iter([i for batch in batches for i in batch])


class TokenCounter:
    """Counts the real (non-padding) tokens trained on; read by the progress callback."""

    def __init__(self) -> None:
        self.tokens = 0


class Collator:
    """Builds model inputs from a list of dataset items in the chosen batching mode."""

    def __init__(self, pad_id: int, mode: str, max_seq_len: int) -> None:
        self.pad_id = pad_id
        self.mode = mode
        self.max_seq_len = max_seq_len

    def __call__(self, items: list[dict[str, list[int]]]) -> dict[str, Any]:
        if self.mode == "padding_free":
            return self._flat(items)
        width = self.max_seq_len if self.mode == "max_length" else max(len(x["input_ids"]) for x in items)
        return self._padded(items, width)

    def _padded(self, items, width: int) -> dict[str, Any]:
        import torch

        ids, labels, mask = [], [], []
        for x in items:
            pad = width - len(x["input_ids"])
            ids.append(x["input_ids"] + [self.pad_id] * pad)
            labels.append(x["labels"] + [IGNORE] * pad)
            mask.append([1] * len(x["input_ids"]) + [0] * pad)
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(mask),
        }

    def _flat(self, items) -> dict[str, Any]:
        import torch

        ids, labels, positions = [], [], []
        for x in items:
            ids += x["input_ids"]
            # the first label of each example must not be predicted from the previous example's last token
            labels += [IGNORE, *x["labels"][1:]]
            positions += list(range(len(x["input_ids"])))
        return {
            "input_ids": torch.tensor([ids]),
            "labels": torch.tensor([labels]),
            "position_ids": torch.tensor([positions]),
        }


def padding_fraction(
    lengths: list[int], batch_size: int, mode: str, max_seq_len: int, seed: int = 0
) -> float:
    """The share of padding tokens one epoch would carry in a batching mode (for reports and benchmarks)."""
    if mode == "padding_free" or not lengths:
        return 0.0
    order = (
        list(LengthGroupedSampler(lengths, batch_size, seed))
        if mode == "grouped"
        else list(range(len(lengths)))
    )
    if mode == "random":
        random.Random(seed).shuffle(order)
    total = 0
    for start in range(0, len(order), batch_size):
        batch = [lengths[i] for i in order[start : start + batch_size]]
        total += (max_seq_len if mode == "max_length" else max(batch)) * len(batch)
    return 1 - sum(lengths) / total if total else 0.0
