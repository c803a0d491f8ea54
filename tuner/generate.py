"""Generation: chat-template prompts, sampling parameters, token streaming and multi-arm batches.

One base model stays in memory. LoRA adapters are attached to it with PEFT under a name each, and several arms
(base, fine-tuned, each with or without retrieved context in its messages) are generated in ONE batch with PEFT's
mixed adapter batches (`adapter_names=[...]`, `"__base__"` for no adapter). `stream_arms` yields every arm's text
so far after each decoding step.

    python -m tuner generate "What is the capital of France?" [--adapter RUN_DIR]
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE = "__base__"  # PEFT's name for "no adapter" in a mixed batch


@dataclass
class GenerationParams:
    """Decoding settings shared by every arm of a batch."""

    max_new_tokens: int = field(default=256, metadata={"help": "upper bound on generated tokens per arm"})
    temperature: float = field(
        default=0.0, metadata={"help": "0 = greedy (deterministic); higher = more random"}
    )
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass (only when temperature > 0)"})
    repetition_penalty: float = field(default=1.0, metadata={"help": ">1 discourages repeating tokens"})
    seed: int | None = field(default=None, metadata={"help": "sampling seed (temperature > 0)"})

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}")
        if not 0 <= self.temperature <= 5:
            raise ValueError(f"temperature must be between 0 and 5, got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not 0.5 <= self.repetition_penalty <= 3:
            raise ValueError(f"repetition_penalty must be between 0.5 and 3, got {self.repetition_penalty!r}")

    def generate_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "repetition_penalty": self.repetition_penalty,
        }
        if self.temperature > 0:
            kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs


@dataclass
class ArmRequest:
    """One arm of a batch: its full chat (system, history, question) and the adapter it runs with (None = base)."""

    messages: list[dict[str, str]]
    adapter: str | None = None


@dataclass
class ArmOutput:
    """What one arm produced: the answer and its token counts (prompt tokens include any retrieved context)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    finished: bool = True
    token_ids: list[int] = field(default_factory=list)


def chat_messages(prompt: str, system: str | None = None, history: list[dict] | None = None) -> list[dict]:
    """Messages for one user turn: an optional system prompt, earlier turns, then the prompt."""
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, *(history or []), {"role": "user", "content": prompt}]


def prompt_ids(tokenizer, messages: list[dict]) -> list[int]:
    """The token ids of a chat rendered with the tokenizer's own chat template, ready for the answer."""
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    return list(ids["input_ids"])


# -- adapters -------------------------------------------------------------------------------------------------


def adapter_dir(path: str | Path) -> Path:
    """A training run directory or an adapter folder -> the folder holding adapter_config.json."""
    path = Path(path)
    return path / "adapter" if (path / "adapter" / "adapter_config.json").is_file() else path


def attach_adapter(lm, adapter_dir: str | Path, name: str | None = None) -> str:
    """Attach a LoRA adapter folder to the loaded base model under `name`; returns the name.

    The first adapter wraps the model in a `PeftModel`; later ones are loaded beside it, sharing the base weights.
    Re-attaching a name already loaded from the same folder is a no-op.
    """
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ValueError(
            f"{adapter_dir} is not a LoRA adapter folder (no adapter_config.json): train one first."
        )
    name = name or adapter_dir.name
    if name == BASE:
        raise ValueError(f"adapter name {BASE!r} is reserved for the base model")
    if lm.adapters.get(name) == str(adapter_dir.resolve()):
        return name
    if name in lm.adapters:
        detach_adapter(lm, name)
    if isinstance(lm.model, PeftModel):
        lm.model.load_adapter(str(adapter_dir), adapter_name=name, is_trainable=False)
    else:
        lm.model = PeftModel.from_pretrained(
            lm.model, str(adapter_dir), adapter_name=name, is_trainable=False
        )
    lm.model.eval()
    lm.adapters[name] = str(adapter_dir.resolve())
    return name


def detach_adapter(lm, name: str) -> None:
    """Remove an attached adapter (e.g. after its folder was deleted)."""
    if name not in lm.adapters:
        return
    del lm.adapters[name]
    if not lm.adapters:
        lm.model = lm.model.unload()  # back to the plain base model: no LoRA layers left behind
        return
    lm.model.delete_adapter(name)
    lm.model.set_adapter(next(iter(lm.adapters)))


# -- batched generation ---------------------------------------------------------------------------------------


class _StepStreamer:
    """Receives the batch's new token ids after each decoding step (transformers' BaseStreamer protocol)."""

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue()
        self._prompt_seen = False

    def put(self, value) -> None:
        if not self._prompt_seen and value.dim() == 2:
            self._prompt_seen = True  # generate() first hands over the prompt itself
            return
        self.queue.put(value.reshape(-1).tolist())

    def end(self) -> None:
        self.queue.put(None)


def _batch_inputs(lm, requests: list[ArmRequest]) -> tuple[dict, list[int]]:
    """Left-padded input ids and attention mask for the arms' prompts, plus each prompt's length."""
    import torch

    ids = [prompt_ids(lm.tokenizer, r.messages) for r in requests]
    width = max(len(x) for x in ids)
    pad = lm.tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids])
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
    device = next(lm.model.parameters()).device
    return {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}, [len(x) for x in ids]


def _adapter_kwargs(lm, requests: list[ArmRequest]) -> dict[str, Any]:
    from peft import PeftModel

    names = [r.adapter or BASE for r in requests]
    for name in names:
        if name != BASE and name not in lm.adapters:
            raise ValueError(
                f"adapter {name!r} is not attached: attach it (or pick another) before generating"
            )
    if not isinstance(lm.model, PeftModel):
        return {}
    return {"adapter_names": names}


def stream_arms(
    lm, requests: list[ArmRequest], params: GenerationParams | None = None
) -> Iterator[list[ArmOutput]]:
    """Generate every arm in one batch, yielding all arms' outputs so far after each decoding step.

    Each arm stops at its own end-of-turn token; the last yield has `finished=True` for every arm.
    """
    import torch

    if not requests:
        raise ValueError("no arms to generate: choose at least one arm")
    params = params or GenerationParams()
    inputs, prompt_lens = _batch_inputs(lm, requests)
    streamer = _StepStreamer()
    eos = _stop_ids(lm)
    kwargs = {
        **inputs,
        **params.generate_kwargs(),
        **_adapter_kwargs(lm, requests),
        "streamer": streamer,
        "eos_token_id": sorted(eos),
        "pad_token_id": lm.tokenizer.pad_token_id,
    }
    errors: list[BaseException] = []

    def work() -> None:
        try:
            if params.seed is not None:
                torch.manual_seed(params.seed)
            with torch.inference_mode():
                lm.model.generate(**kwargs)
        except BaseException as e:  # re-raised in the caller's thread below
            errors.append(e)
            streamer.end()

    start = time.perf_counter()
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    tokens: list[list[int]] = [[] for _ in requests]
    done = [False] * len(requests)
    while (step := streamer.queue.get()) is not None:
        for i, token in enumerate(step):
            if done[i]:
                continue
            if token in eos:
                done[i] = True
            else:
                tokens[i].append(token)
        yield _outputs(lm, tokens, prompt_lens, done, start)
    thread.join()
    if errors:
        raise errors[0]
    yield _outputs(lm, tokens, prompt_lens, [True] * len(requests), start)


def _stop_ids(lm) -> set[int]:
    eos = lm.model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    ids.add(lm.tokenizer.eos_token_id)
    end_turn = lm.tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(end_turn, int) and end_turn != lm.tokenizer.unk_token_id:
        ids.add(end_turn)
    return {i for i in ids if i is not None}


def _outputs(lm, tokens, prompt_lens, done, start) -> list[ArmOutput]:
    elapsed = time.perf_counter() - start
    return [
        ArmOutput(lm.tokenizer.decode(t, skip_special_tokens=True).strip(), n, len(t), elapsed, d, list(t))
        for t, n, d in zip(tokens, prompt_lens, done, strict=True)
    ]


def generate_arms(lm, requests: list[ArmRequest], params: GenerationParams | None = None) -> list[ArmOutput]:
    """Generate every arm in one batch and return the final outputs."""
    last: list[ArmOutput] = []
    for last in stream_arms(lm, requests, params):  # noqa: B007 - we want the final value
        pass
    return last


def generate(
    lm,
    prompt: str,
    *,
    system: str | None = None,
    adapter: str | None = None,
    params: GenerationParams | None = None,
) -> str:
    """One answer to one prompt (a batch of one arm)."""
    return generate_arms(lm, [ArmRequest(chat_messages(prompt, system), adapter)], params)[0].text


def first_step_logits(lm, requests: list[ArmRequest]):
    """Next-token logits of every arm's prompt in one mixed batch (for checking arms are not mixed up)."""
    import torch

    inputs, _ = _batch_inputs(lm, requests)
    positions = (inputs["attention_mask"].cumsum(-1) - 1).clamp(
        min=0
    )  # left padding must not shift positions
    with torch.inference_mode():
        out = lm.model(**inputs, position_ids=positions, **_adapter_kwargs(lm, requests))
    return out.logits[:, -1, :].float()
