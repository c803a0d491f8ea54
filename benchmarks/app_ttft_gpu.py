"""Time to first streamed token of Compare's multi-arm batch on a GPU (a device check, not part of `make bench`).

    python -m benchmarks.app_ttft_gpu MODEL_FOLDER      # a folder with config.json and the tokenizer files

Builds the model from its config with random weights in bf16 on CUDA (no download: the timing depends on the
architecture and prompt lengths, not on the weights), attaches a random LoRA adapter, and times
`tuner.generate.stream_arms` up to its first yield for 1 arm (base), 2 arms (base, fine-tuned), 1 arm with a
RAG-sized prompt, and 4 arms (base, fine-tuned, base+RAG, fine-tuned+RAG), alternating, median of 10 each.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from tuner.generate import ArmRequest, GenerationParams, attach_adapter, prompt_ids, stream_arms

QUESTION = "What is anarchism and where did the word come from?"
CONTEXT = " ".join(
    f"Source sentence {i} about the history of political philosophy and its words." for i in range(80)
)
REPEATS = 10


def _lm(folder: Path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from tuner.models import LoadedModel, resolve

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(folder)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).cuda().eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    adapter = Path(tempfile.mkdtemp()) / "ft"
    lora = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_config(config), lora).save_pretrained(adapter)
    lm = LoadedModel(model, tokenizer, resolve(str(folder)), False, str(folder))
    attach_adapter(lm, adapter, "ft")
    return lm


def _requests(kinds: list[str]) -> list[ArmRequest]:
    rag_system = f"Answer using only these sources.\n[1] {CONTEXT}"
    out = []
    for kind in kinds:
        system = [{"role": "system", "content": rag_system}] if "rag" in kind else []
        out.append(
            ArmRequest(
                [*system, {"role": "user", "content": QUESTION}], "ft" if kind.startswith("ft") else None
            )
        )
    return out


def _first(lm, kinds: list[str]) -> float:
    import torch

    torch.cuda.synchronize()
    start = time.perf_counter()
    stream = stream_arms(lm, _requests(kinds), GenerationParams(max_new_tokens=16))
    next(stream)
    elapsed = time.perf_counter() - start
    for _ in stream:
        pass
    return elapsed


def main(folder: str) -> None:
    lm = _lm(Path(folder))
    setups = {
        "1 arm (base)": ["base"],
        "2 arms (base, ft)": ["base", "ft"],
        "1 arm (ft+rag)": ["ft+rag"],
        "4 arms": ["base", "ft", "rag", "ft+rag"],
    }
    prompt_tokens = len(prompt_ids(lm.tokenizer, _requests(["rag"])[0].messages))
    for kinds in setups.values():
        _first(lm, kinds)
    times: dict[str, list[float]] = {k: [] for k in setups}
    for _ in range(REPEATS):
        for name, kinds in setups.items():
            times[name].append(_first(lm, kinds))
    import torch

    base = statistics.median(times["1 arm (base)"])
    print(f"GPU {torch.cuda.get_device_name(0)}; RAG prompt ~{prompt_tokens} tokens; median of {REPEATS}")
    for name, t in times.items():
        print(f"{name:22s} {statistics.median(t) * 1000:8.1f} ms  ratio {statistics.median(t) / base:.2f}")


if __name__ == "__main__":
    main(sys.argv[1])
