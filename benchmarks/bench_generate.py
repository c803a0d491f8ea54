"""Foundation benchmarks: 4-bit footprint vs fp32, and 4 arms in one mixed batch vs one arm and vs 4 in a row.

python -m benchmarks.run generate
"""

from __future__ import annotations

import tempfile
import time

from common.workspace import Workspace

NEW_TOKENS = 48
REPEATS = 3


def _timed(fn) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run() -> str:
    import torch
    from peft import LoraConfig, get_peft_model

    from tuner.generate import ArmRequest, GenerationParams, attach_adapter, chat_messages, generate_arms
    from tuner.models import load_model

    models_dir = Workspace().models_dir
    start = time.perf_counter()
    lm = load_model(models_dir=models_dir)
    load_4bit = time.perf_counter() - start
    full = load_model(four_bit=False, models_dir=models_dir)
    ratio = lm.model.get_memory_footprint() / full.model.get_memory_footprint()
    fp32_mb = full.model.get_memory_footprint() / 2**20
    del full

    torch.manual_seed(0)
    folder = tempfile.mkdtemp()
    scratch = load_model(models_dir=models_dir)
    get_peft_model(
        scratch.model, LoraConfig(r=16, target_modules="all-linear", init_lora_weights=False)
    ).save_pretrained(folder)
    del scratch
    attach_adapter(lm, folder, "ft")
    question = "Explain in a few sentences why the sky is blue."
    context = "Sources:\n\n[1] wiki: Rayleigh scattering makes shorter wavelengths scatter more strongly in air.\n\n"
    arms = [
        ArmRequest(chat_messages(question)),
        ArmRequest(chat_messages(question), "ft"),
        ArmRequest(chat_messages(context + "Question: " + question)),
        ArmRequest(chat_messages(context + "Question: " + question), "ft"),
    ]
    # Forced length: every arm generates exactly NEW_TOKENS so the three timings do the same work.
    params = GenerationParams(max_new_tokens=NEW_TOKENS)
    lm.model.generation_config.min_new_tokens = NEW_TOKENS
    generate_arms(lm, arms[:1], params)  # warm-up
    one = _timed(lambda: generate_arms(lm, arms[:1], params))
    batch = _timed(lambda: generate_arms(lm, arms, params))
    serial = _timed(lambda: [generate_arms(lm, [a], params) for a in arms])
    lm.model.generation_config.min_new_tokens = None
    rows = [
        ("1 arm", one, NEW_TOKENS / one),
        ("4 arms, one mixed batch", batch, 4 * NEW_TOKENS / batch),
        ("4 arms one after another", serial, 4 * NEW_TOKENS / serial),
    ]
    table = "\n".join(f"| {name} | {secs:.2f} | {tps:.1f} |" for name, secs, tps in rows)
    return f"""## Foundation: 4-bit loading and multi-arm generation

Embedded SmolLM2-135M-Instruct, CPU, greedy, {NEW_TOKENS} new tokens per arm (best of {REPEATS}); arms = base,
fine-tuned (random LoRA r=16 on all linear layers), base+RAG, fine-tuned+RAG (longer prompt). Command:
`python -m benchmarks.run generate`.

| figure | value | goal |
|---|---|---|
| 4-bit NF4 footprint / fp32 footprint | **{ratio:.2f}x** ({ratio * fp32_mb:.0f} MiB vs {fp32_mb:.0f} MiB) | <= 0.35x |
| 4-bit load from the converted cache | {load_4bit:.1f} s | |
| 4 arms in one batch / 1 arm (wall time) | **{batch / one:.2f}x** | <= 1.5x |
| 4 arms one after another / 4 arms in one batch | **{serial / batch:.2f}x** | >= 2x |

| run | seconds | tokens/s |
|---|---|---|
{table}

The footprint counts every parameter and buffer: the tied 49152x576 embedding stays in full precision (as
bitsandbytes leaves embeddings), which is most of what the 4-bit model still weighs.
"""
