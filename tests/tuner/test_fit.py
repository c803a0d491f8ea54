"""Will it fit: QLoRA memory estimates from model shapes, offline, against a given GPU size."""

from __future__ import annotations

import pytest

from tuner.fit import GIB, KNOWN, estimate_memory, model_shape, shape_from_config

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_embedded_model_config_matches_the_built_in_table(models_dir):
    from transformers import AutoConfig

    from tuner.models import model_folder, resolve

    config = AutoConfig.from_pretrained(model_folder(resolve(SMOL), models_dir)).to_dict()
    assert shape_from_config(config) == KNOWN[SMOL]


def test_parameter_count_of_smollm2_is_its_published_135m():
    s = KNOWN[SMOL]
    kv = s["kv"] * s["h"] // s["heads"]
    per_layer = 2 * s["h"] * s["h"] + 2 * s["h"] * kv + 3 * s["h"] * s["inter"]
    params = s["layers"] * per_layer + s["vocab"] * s["h"]
    assert params == pytest.approx(134.5e6, rel=0.01)


@pytest.mark.parametrize(
    ("model", "gpu_gib", "batch", "seq", "fits"),
    [
        ("Qwen/Qwen2.5-7B-Instruct", 24, 1, 1024, True),
        ("Qwen/Qwen2.5-7B-Instruct", 8, 8, 4096, False),
        ("mistralai/Mistral-7B-Instruct-v0.3", 16, 1, 512, True),
        (SMOL, 8, 4, 1024, True),
        (SMOL, 2, 8, 2048, False),
    ],
)
def test_verdict_against_a_gpu(model, gpu_gib, batch, seq, fits):
    est = estimate_memory(model, batch_size=batch, max_seq_len=seq, gpu=("test GPU", gpu_gib * GIB))
    assert est.fits is fits
    assert est.total == est.base_weights + est.lora_state + est.activations + est.logits + est.overhead
    assert (est.advice == "It fits.") is fits


def test_qlora_weights_are_about_a_quarter_of_bf16_and_checkpointing_saves_activations():
    q = estimate_memory("meta-llama/Llama-3.2-3B-Instruct", gpu=("g", 80 * GIB))
    full = estimate_memory("meta-llama/Llama-3.2-3B-Instruct", four_bit=False, gpu=("g", 80 * GIB))
    ckpt = estimate_memory(
        "meta-llama/Llama-3.2-3B-Instruct", gradient_checkpointing=True, gpu=("g", 80 * GIB)
    )
    assert 0.2 < q.base_weights / full.base_weights < 0.5  # embeddings stay in bf16
    assert ckpt.activations < q.activations / 5
    assert (
        "gradient checkpointing"
        in estimate_memory(
            "Qwen/Qwen2.5-7B-Instruct", batch_size=8, max_seq_len=4096, gpu=("g", 8 * GIB)
        ).advice
    )


def test_a_config_dict_works_offline_and_bad_ones_are_named():
    config = {
        "hidden_size": 896,
        "num_hidden_layers": 24,
        "intermediate_size": 4864,
        "num_attention_heads": 14,
    }
    est = estimate_memory(
        {**config, "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True}
    )
    assert est.base_weights == estimate_memory("Qwen/Qwen2.5-0.5B-Instruct").base_weights
    with pytest.raises(ValueError, match="lacks 'vocab_size'"):
        estimate_memory(config)
    with pytest.raises(ValueError, match="must be positive"):
        estimate_memory(SMOL, batch_size=0)


def test_unknown_model_offline_is_a_clear_error():
    with pytest.raises(ValueError, match="offline"):
        model_shape("someone/not-a-real-model-xyz")
