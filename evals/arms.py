"""Arms: the variants the user compares — base, fine-tuned, base+RAG, fine-tuned+RAG — and their prompts.

An arm is a base model (always the one in memory), an optional LoRA adapter attached to it, and whether its
prompt carries retrieved sources. `ArmSet` turns one question into one `ArmRequest` per arm (retrieving once for
all RAG arms) so `tuner.generate` can run every arm in ONE batch. The app's Compare and Arena tabs and the eval
runs all go through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner.generate import ArmRequest, adapter_dir, attach_adapter

KINDS = ("base", "ft", "rag", "ft+rag")
KIND_LABELS = {"base": "base", "ft": "fine-tuned", "rag": "base+RAG", "ft+rag": "fine-tuned+RAG"}
DEFAULT_CONTEXT = 2048  # tokens of prompt + answer the RAG budget is planned for (small models, CPU speed)


@dataclass(frozen=True)
class Arm:
    """One arm: a display name, the adapter it runs with (None = base) and whether it retrieves."""

    name: str
    kind: str
    adapter: str | None = None
    rag: bool = False


@dataclass
class Prepared:
    """One question made ready for every arm: the batch requests and, per arm, the sources shown to it."""

    requests: list[ArmRequest]
    sources: list[list[dict[str, Any]]]
    retrieval_seconds: float = 0.0


def parse_kinds(spec: str | Sequence[str]) -> list[str]:
    """`"base,ft,rag,ft+rag"` -> the list of kinds, validated (ValueError naming the unknown one)."""
    kinds = [k.strip().lower() for k in (spec.split(",") if isinstance(spec, str) else spec) if k.strip()]
    aliases = {"fine-tuned": "ft", "base+rag": "rag", "ft+rag": "ft+rag", "fine-tuned+rag": "ft+rag"}
    kinds = [aliases.get(k, k) for k in kinds]
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"unknown arm {k!r}: choose from {', '.join(KINDS)}")
    if not kinds:
        raise ValueError(f"no arms given: choose from {', '.join(KINDS)}")
    return list(dict.fromkeys(kinds))


@dataclass
class ArmSet:
    """The arms for one comparison, bound to the loaded model and (for RAG arms) a knowledge base.

    `problems` names every arm that could not be set up (missing adapter or index); the other arms still run.
    """

    lm: Any
    arms: list[Arm]
    kb: Any = None
    k: int = 4
    hybrid: bool = False
    context_tokens: int = DEFAULT_CONTEXT
    problems: list[str] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        lm,
        kinds: Sequence[str],
        adapters: Sequence[str | Path] = (),
        kb=None,
        **options: Any,
    ) -> ArmSet:
        """Arms for `kinds`; a fine-tuned kind gives one arm per adapter (a run dir or adapter folder)."""
        arms, problems = [], []
        attached: list[str] = []
        for path in dict.fromkeys(str(p) for p in adapters):  # the same folder twice is one arm
            folder = adapter_dir(path)
            try:
                attached.append(attach_adapter(lm, folder, _unique_name(Path(path).name, attached)))
            except ValueError as e:
                problems.append(f"adapter {path}: {e}")
        for kind in kinds:
            rag = kind in ("rag", "ft+rag")
            if rag and kb is None:
                problems.append(f"arm {KIND_LABELS[kind]}: no knowledge base: build one in the Knowledge tab")
                continue
            if kind.startswith("ft"):
                if not attached:
                    problems.append(f"arm {KIND_LABELS[kind]}: no adapter: train one in the Train tab")
                for name in attached:
                    suffix = f" ({name})" if len(attached) > 1 or name else ""
                    arms.append(Arm(KIND_LABELS[kind] + suffix, kind, name, rag))
            else:
                arms.append(Arm(KIND_LABELS[kind], kind, None, rag))
        return cls(lm, arms, kb, problems=problems, **options)

    def budget(self, max_new_tokens: int) -> int:
        limit = getattr(self.lm.model.config, "max_position_embeddings", None) or self.context_tokens
        return max(256, min(limit, self.context_tokens) - max_new_tokens)

    def count_tokens(self, text: str) -> int:
        return len(self.lm.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prepare(
        self,
        question: str,
        *,
        system: str | None = None,
        histories: Sequence[list[dict]] | None = None,
        max_new_tokens: int = 256,
    ) -> Prepared:
        """One `ArmRequest` per arm for `question` (retrieval runs once, shared by the RAG arms)."""
        import time

        if not question or not question.strip():
            raise ValueError("the question is empty: type a question")
        histories = histories or [[] for _ in self.arms]
        augmented, seconds = None, 0.0
        if any(a.rag for a in self.arms):
            from rag import augment

            start = time.perf_counter()
            hits = self.kb.search(question, k=self.k, hybrid=self.hybrid)
            augmented = augment(question, hits, self.budget(max_new_tokens), self.count_tokens)
            seconds = time.perf_counter() - start
        requests, sources = [], []
        for arm, history in zip(self.arms, histories, strict=True):
            if arm.rag:
                rag_system, user = augmented.messages[0]["content"], augmented.messages[-1]
                merged = f"{system}\n\n{rag_system}" if system else rag_system
                messages = [{"role": "system", "content": merged}, *history, user]
                sources.append([_source_dict(s) for s in augmented.sources])
            else:
                messages = [*([{"role": "system", "content": system}] if system else []), *history]
                messages.append({"role": "user", "content": question.strip()})
                sources.append([])
            requests.append(ArmRequest(messages, arm.adapter))
        return Prepared(requests, sources, seconds)


def _unique_name(name: str, taken: list[str]) -> str:
    """`name`, or `name-2`, `name-3`... when another folder of this comparison already uses it: two runs'
    `checkpoint-100` folders must not share one adapter name (the second would replace the first)."""
    unique, n = name, 1
    while unique in taken:
        n += 1
        unique = f"{name}-{n}"
    return unique


def _source_dict(source) -> dict[str, Any]:
    """A source as plain data for scorers, reports and the UI: {"n", "source", "text", "label", "score"}."""
    first = source.hits[0] if source.hits else None
    return {
        "n": source.number,
        "label": source.label,
        "source": first.source if first else source.label,
        "page": first.page if first else None,
        "score": round(first.score, 4) if first else None,
        "text": "\n...\n".join(source.excerpts),
    }
