"""Export: adapter zip, merged full model equal to base + adapter, and pushes refused offline."""

from __future__ import annotations

import zipfile

import pytest

from tuner.export import export
from tuner.train import TrainConfig, train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, models_dir):
    from common.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("export") / "ws")
    chats = [
        [{"role": "user", "content": f"Hi {i}"}, {"role": "assistant", "content": f"Hello {i}!"}]
        for i in range(4)
    ]
    config = TrainConfig(
        max_steps=1, batch_size=2, max_seq_len=64, lora_r=4, learning_rate=5e-3, eval_fraction=0
    )
    return train(config, workspace=ws, examples=chats).run_dir


def test_zip_holds_the_adapter_and_tokenizer(run_dir):
    out = export(run_dir, zip=True)
    names = set(zipfile.ZipFile(out["zip"]).namelist())
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer_config.json",
        "train_config.json",
    } <= names


def test_merged_model_matches_base_plus_adapter(run_dir, models_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tuner.models import load_model

    merged_dir = export(run_dir, merge=True, models_dir=models_dir)["merged"]
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    assert not hasattr(merged.config, "quantization_config")
    base = load_model(models_dir=models_dir).model.dequantize()
    reference = PeftModel.from_pretrained(base, str(run_dir))
    ids = torch.tensor([[1, 504, 3458, 314, 253, 1012]])
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, reference(input_ids=ids).logits, atol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"push": "me/model", "token": "hf_x"}, "offline"),
        ({}, "nothing to export"),
    ],
)
def test_bad_exports_are_refused_before_anything_is_written(run_dir, kwargs, match, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match=match):
        export(run_dir, **kwargs)


def test_a_folder_without_adapter_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no trained adapter"):
        export(tmp_path, zip=True)
