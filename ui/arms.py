"""Arms for the Compare and Arena tabs: which adapter and knowledge base the user picked, the `ArmSet` built
from them, and one batch streamed under the shared model's lock.

The batch runs in a producer thread that holds the generation lock until the batch is done, so a browser that
goes away mid-answer never leaves the lock held; the handler just yields what the thread produced.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from evals.arms import KIND_LABELS, KINDS, ArmSet, adapter_dir
from tuner.generate import ArmOutput, GenerationParams, detach_adapter, stream_arms
from ui.helpers import NO_ADAPTER, NO_INDEX
from ui.services import Services

KIND_CHOICES = [(KIND_LABELS[k], k) for k in KINDS]


def adapter_choices(services: Services) -> list[tuple[str, str]]:
    """(label, run id) of finished training runs whose adapter is on disk, newest first."""
    return [(f"{r['id']} ({r.get('dataset') or 'run'})", r["id"]) for r in services.adapter_runs()]


def resolve_adapter(services: Services, choice: str | None, lm=None) -> Path | None:
    """A run id from the registry (or, outside stakeholder mode, an adapter folder) -> the adapter folder.

    Raises:
        ValueError: the run or folder is gone; with `lm` (held under the generation lock) the stale adapter is
            detached first, so nothing answers with weights whose files were deleted.
    """
    if not choice:
        return None
    run = services.workspace.run(choice)
    if run is not None:
        folder = adapter_dir(run["path"])
    elif services.stakeholder:
        raise ValueError(f"unknown adapter {choice!r}: pick one from the list")
    else:
        folder = adapter_dir(Path(choice).expanduser())
    if not (folder / "adapter_config.json").is_file():
        if lm is not None and Path(choice).name in lm.adapters:
            detach_adapter(lm, Path(choice).name)
        raise ValueError(
            f"the adapter {choice!r} was deleted or is not an adapter folder ({folder} has no adapter_config.json): "
            "pick another adapter, or train one in the Train tab"
        )
    return folder


@dataclass
class Choice:
    """What the user picked: arm kinds, an adapter (run id or folder) and a knowledge base name."""

    kinds: Sequence[str]
    adapter: str | None = None
    index: str | None = None

    def check(self) -> None:
        """Raises ValueError (with what to do) for no arms or an arm whose adapter or index is missing."""
        if not self.kinds:
            raise ValueError("choose at least one arm")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown arm {unknown[0]!r}: choose from {', '.join(KINDS)}")
        if any(k.startswith("ft") for k in self.kinds) and not self.adapter:
            raise ValueError(f"the fine-tuned arms need an adapter. {NO_ADAPTER}")
        if any(k in ("rag", "ft+rag") for k in self.kinds) and not self.index:
            raise ValueError(f"the RAG arms need a knowledge base. {NO_INDEX}")


def build_arms(services: Services, lm, choice: Choice) -> ArmSet:
    """The `ArmSet` for `choice` bound to the loaded model; call with the generation lock held (it attaches)."""
    choice.check()
    folder = resolve_adapter(services, choice.adapter, lm) if choice.adapter else None
    kb = services.kb(choice.index) if any(k in ("rag", "ft+rag") for k in choice.kinds) else None
    adapters = [folder] if folder and any(k.startswith("ft") for k in choice.kinds) else []
    arms = ArmSet.build(lm, list(choice.kinds), adapters, kb)
    if arms.problems:
        raise ValueError("; ".join(arms.problems))
    return arms


@dataclass
class Step:
    """One streamed step: the arm names, each arm's output so far and the sources shown to each arm."""

    names: list[str]
    outputs: list[ArmOutput]
    sources: list[list[dict]]


def stream_choice(
    services: Services,
    choice: Choice,
    question: str,
    system: str | None = None,
    histories: Sequence[list[dict]] | None = None,
    params: GenerationParams | None = None,
) -> Iterator[Step]:
    """Every arm of `choice` answering `question` in ONE batch, yielded after each decoding step.

    Raises:
        ValueError: bad choice, missing adapter or index, empty question (before anything is yielded).
    """
    params = params or GenerationParams()
    steps: queue.Queue = queue.Queue()

    def produce() -> None:
        try:
            with services.generating() as lm:
                arms = build_arms(services, lm, choice)
                prepared = arms.prepare(
                    question, system=system or None, histories=histories, max_new_tokens=params.max_new_tokens
                )
                names = [a.name for a in arms.arms]
                for outputs in stream_arms(lm, prepared.requests, params):
                    steps.put(Step(names, outputs, prepared.sources))
        except BaseException as e:  # handed to the consumer, which raises it in the handler's thread
            steps.put(e)
        steps.put(None)

    threading.Thread(target=produce, daemon=True, name="generate").start()
    while (item := steps.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item
