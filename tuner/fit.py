"""Will it fit? Estimate QLoRA training memory for a model and settings, and compare it with the detected GPU.

The estimate adds: the base weights (decoder linears in 4-bit NF4 with double quantization, about 4.13 bits per
weight; embeddings and an untied output head in the compute dtype), the LoRA parameters with their gradients and
AdamW state (fp32: 16 bytes each), the activations kept for the backward pass at the chosen batch size and sequence
length (far fewer with gradient checkpointing), the logits, and a fixed CUDA context allowance. It is an estimate
for planning (usually within ~20%), not a promise. Works offline: from the model's config (a local folder, the
embedded model, the HF cache) or the built-in table of common models, or a config dict.

    python -m tuner fit --model Qwen/Qwen2.5-7B-Instruct --max-seq-len 2048 --batch-size 4
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

GIB = 2**30
NF4_BITS = 4.127  # 4-bit codes + double-quantized absmax per 64-weight block
CUDA_CONTEXT = 0.6 * GIB
HEADROOM = 0.9  # leave 10% of the GPU for the allocator's fragmentation

# Shapes of common chat models as published in their config.json (for estimates without network access).
KNOWN: dict[str, dict[str, Any]] = {
    "HuggingFaceTB/SmolLM2-135M-Instruct": dict(
        h=576, layers=30, inter=1536, heads=9, kv=3, vocab=49152, tied=True
    ),
    "HuggingFaceTB/SmolLM2-360M-Instruct": dict(
        h=960, layers=32, inter=2560, heads=15, kv=5, vocab=49152, tied=True
    ),
    "HuggingFaceTB/SmolLM2-1.7B-Instruct": dict(
        h=2048, layers=24, inter=8192, heads=32, kv=32, vocab=49152, tied=True
    ),
    "Qwen/Qwen2.5-0.5B-Instruct": dict(h=896, layers=24, inter=4864, heads=14, kv=2, vocab=151936, tied=True),
    "Qwen/Qwen2.5-1.5B-Instruct": dict(
        h=1536, layers=28, inter=8960, heads=12, kv=2, vocab=151936, tied=True
    ),
    "Qwen/Qwen2.5-7B-Instruct": dict(
        h=3584, layers=28, inter=18944, heads=28, kv=4, vocab=152064, tied=False
    ),
    "meta-llama/Llama-3.2-1B-Instruct": dict(
        h=2048, layers=16, inter=8192, heads=32, kv=8, vocab=128256, tied=True
    ),
    "meta-llama/Llama-3.2-3B-Instruct": dict(
        h=3072, layers=28, inter=8192, heads=24, kv=8, vocab=128256, tied=True
    ),
    "microsoft/Phi-3.5-mini-instruct": dict(
        h=3072, layers=32, inter=8192, heads=32, kv=32, vocab=32064, tied=False
    ),
    "mistralai/Mistral-7B-Instruct-v0.3": dict(
        h=4096, layers=32, inter=14336, heads=32, kv=8, vocab=32768, tied=False
    ),
}


@dataclass
class MemoryEstimate:
    """Bytes per component, the total, the GPU found and the verdict."""

    model: str
    base_weights: int
    lora_params: int
    lora_state: int
    activations: int
    logits: int
    overhead: int
    total: int
    gpu: str | None
    gpu_bytes: int | None
    fits: bool | None  # None when there is no GPU to compare with
    advice: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format_text(self) -> str:
        rows = [
            ("base weights (4-bit)", self.base_weights),
            (f"LoRA params ({self.lora_params / 1e6:.1f} M) + grads + AdamW", self.lora_state),
            ("activations", self.activations),
            ("logits", self.logits),
            ("CUDA context", self.overhead),
            ("total", self.total),
        ]
        lines = [f"QLoRA training memory for {self.model}:"]
        lines += [f"  {name:45} {size / GIB:7.2f} GiB" for name, size in rows]
        gpu = (
            f"{self.gpu} ({self.gpu_bytes / GIB:.0f} GiB)" if self.gpu and self.gpu_bytes else "no GPU found"
        )
        lines.append(f"  GPU: {gpu}. {self.advice}")
        return "\n".join(lines)


def shape_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """The fields the estimate needs from a transformers config dict (Llama/Qwen/Mistral/Phi naming)."""
    try:
        heads = config["num_attention_heads"]
        return dict(
            h=config["hidden_size"],
            layers=config["num_hidden_layers"],
            inter=config["intermediate_size"],
            heads=heads,
            kv=config.get("num_key_value_heads") or heads,
            vocab=config["vocab_size"],
            tied=bool(config.get("tie_word_embeddings", False)),
        )
    except KeyError as e:
        raise ValueError(f"model config lacks {e.args[0]!r}: pass a decoder-only transformers config") from e


def model_shape(model: str, models_dir=None) -> dict[str, Any]:
    """Shape of a model id: the built-in table first, else its config.json where it resolves offline."""
    if model in KNOWN:
        return KNOWN[model]
    from transformers import AutoConfig

    from tuner.models import model_folder, resolve

    resolved = resolve(model)
    folder = model_folder(resolved, models_dir) if resolved.gguf is not None else resolved.path
    return shape_from_config(AutoConfig.from_pretrained(folder).to_dict())


def estimate_memory(
    model: str | dict[str, Any],
    *,
    batch_size: int = 4,
    max_seq_len: int = 1024,
    lora_r: int = 16,
    gradient_checkpointing: bool = False,
    four_bit: bool = True,
    compute_bytes: int = 2,
    gpu: tuple[str, int] | None = None,
    models_dir=None,
) -> MemoryEstimate:
    """Estimate training memory for `model` (an id, or a transformers config dict) with LoRA on all linear layers.

    `gpu` is (name, bytes) to compare against; by default the first CUDA device, if any.
    """
    if batch_size < 1 or max_seq_len < 1 or lora_r < 1:
        raise ValueError("batch_size, max_seq_len and lora_r must be positive integers")
    s = shape_from_config(model) if isinstance(model, dict) else model_shape(model, models_dir)
    name = model if isinstance(model, str) else "custom config"
    h, layers, inter, head_dim = s["h"], s["layers"], s["inter"], s["h"] // s["heads"]
    kv = s["kv"] * head_dim
    shapes = [(h, h), (h, kv), (h, kv), (h, h), (h, inter), (h, inter), (inter, h)]  # q k v o gate up down
    linear = layers * sum(i * o for i, o in shapes)
    embed = s["vocab"] * h * (1 if s["tied"] else 2)
    weight_bytes = linear * NF4_BITS / 8 if four_bit else linear * compute_bytes
    base = int(weight_bytes + embed * compute_bytes)
    lora = layers * sum(lora_r * (i + o) for i, o in shapes)
    tokens = batch_size * max_seq_len
    # per token and layer, kept for backward: norms, q/k/v/o inputs and outputs, MLP inputs/intermediates
    per_layer = (12 * h + 2 * kv + 4 * inter) * compute_bytes
    activations = tokens * (
        layers * 2 * h * compute_bytes + per_layer if gradient_checkpointing else layers * per_layer
    )
    logits = tokens * s["vocab"] * 4 * 2  # fp32 logits and their gradient
    total = int(base + 16 * lora + activations + logits + CUDA_CONTEXT)
    gpu = gpu if gpu is not None else detect_gpu()
    fits = None if gpu is None else total <= gpu[1] * HEADROOM
    return MemoryEstimate(
        model=name,
        base_weights=base,
        lora_params=lora,
        lora_state=16 * lora,
        activations=int(activations),
        logits=logits,
        overhead=int(CUDA_CONTEXT),
        total=total,
        gpu=gpu[0] if gpu else None,
        gpu_bytes=gpu[1] if gpu else None,
        fits=fits,
        advice=_advice(fits, gradient_checkpointing, batch_size),
    )


def _advice(fits: bool | None, checkpointing: bool, batch_size: int) -> str:
    if fits is None:
        return "Training would run on the CPU: fine for the small embedded model, very slow for larger ones."
    if fits:
        return "It fits."
    steps = [] if checkpointing else ["turn on gradient checkpointing"]
    if batch_size > 1:
        steps.append("lower the batch size (raise gradient accumulation to keep the effective batch)")
    steps.append("shorten max_seq_len or pick a smaller model")
    return "It does not fit: " + "; ".join(steps) + "."


def detect_gpu() -> tuple[str, int] | None:
    """(name, total bytes) of the first CUDA GPU, or None."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        props = torch.cuda.get_device_properties(0)
        return props.name, int(props.total_memory)
    except Exception:  # a broken CUDA install means "no usable GPU" for this purpose
        return None
