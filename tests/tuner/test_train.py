"""Training: config validation, batching, a short QLoRA run's outputs, cancel + resume, refusals and failures."""

from __future__ import annotations

import json
import threading

import pytest

from tuner.batching import IGNORE, Collator, LengthGroupedSampler, tokenize_chat
from tuner.callbacks import overfitting, read_metrics
from tuner.train import ADAPTER_FILES, TrainConfig, resume, train


def chats(n: int) -> list[list[dict]]:
    return [
        [
            {"role": "user", "content": f"What is {i} plus {i}?"},
            {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."},
        ]
        for i in range(n)
    ]


SMALL = {"batch_size": 2, "max_seq_len": 96, "lora_r": 8, "lora_alpha": 16, "learning_rate": 1e-3}


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("lora_r", 0, "lora_r must be a positive integer"),
        ("lora_r", 2.5, "lora_r must be a positive integer"),
        ("batch_size", -1, "batch_size must be a positive integer"),
        ("learning_rate", 0, "learning_rate must be in"),
        ("lora_dropout", 1.5, "lora_dropout must be between"),
        ("eval_fraction", 0.9, "eval_fraction must be between"),
        ("max_steps", 0, "max_steps must be a positive integer"),
        ("epochs", -2, "epochs must be a positive number"),
        ("batching", "packed_weird", "batching must be one of"),
        ("lr_scheduler", "exp", "lr_scheduler must be one of"),
        ("target_modules", [], "target_modules must be"),
        ("data", "/no/such/file.json", "does not exist"),
    ],
)
def test_bad_config_values_name_the_field(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value})


def test_early_stopping_needs_an_eval_set():
    with pytest.raises(ValueError, match="early_stopping_patience needs an eval set"):
        TrainConfig(early_stopping_patience=2, eval_fraction=0.0)


def test_assistant_only_labels_cover_exactly_the_answers(tokenizer):
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello there"},
        {"role": "user", "content": "bye"},
        {"role": "assistant", "content": "Goodbye"},
    ]
    item = tokenize_chat(tokenizer, messages, 512)
    supervised = tokenizer.decode(
        [t for t, label in zip(item.input_ids, item.labels, strict=True) if label != IGNORE]
    )
    assert supervised == "Hello there<|im_end|>\nGoodbye<|im_end|>\n"
    full = tokenize_chat(tokenizer, messages, 512, assistant_only=False)
    assert full.labels == full.input_ids
    assert len(tokenize_chat(tokenizer, messages, 10).input_ids) == 10


def test_sampler_order_depends_only_on_seed_and_epoch_and_groups_lengths():
    lengths = [(i * 37) % 101 + 1 for i in range(200)]
    a, b = LengthGroupedSampler(lengths, 8, seed=1), LengthGroupedSampler(lengths, 8, seed=1)
    assert list(a) == list(b) and sorted(a) == list(range(200))
    b.set_epoch(1)
    assert list(a) != list(b)
    order = list(a)
    spread = [
        max(lengths[i] for i in order[k : k + 8]) - min(lengths[i] for i in order[k : k + 8])
        for k in range(0, 200, 8)
    ]
    assert sum(spread) / len(spread) < 15  # random batches of these lengths spread ~80


def test_padding_free_batches_do_not_leak_between_examples(lm):
    """One flat row gives the same loss as padded rows: examples cannot attend to each other."""
    import torch

    from tuner.sft import supervised_loss

    items = [tokenize_chat(lm.tokenizer, c, 128) for c in chats(3)]
    rows = [{"input_ids": t.input_ids, "labels": t.labels} for t in items]
    with torch.no_grad():
        padded, _ = supervised_loss(lm.model, Collator(lm.tokenizer.pad_token_id, "grouped", 128)(rows))
        flat, _ = supervised_loss(lm.model, Collator(lm.tokenizer.pad_token_id, "padding_free", 128)(rows))
        reference = lm.model(
            **Collator(lm.tokenizer.pad_token_id, "max_length", 128)(rows), use_cache=False
        ).loss
    assert flat.item() == pytest.approx(padded.item(), abs=2e-2)
    assert padded.item() == pytest.approx(reference.item(), abs=1e-4)


@pytest.mark.parametrize(
    ("evals", "expected"),
    [
        ([(2.0, 1.0), (1.8, 1.1), (1.6, 1.2), (1.4, 1.3)], True),
        ([(2.0, 1.0), (1.8, 0.9), (1.6, 1.2), (1.4, 1.3)], False),
        ([(2.0, 1.0), (2.1, 1.1), (2.2, 1.2), (2.3, 1.3)], False),
        ([(2.0, 1.0), (1.8, 1.1), (1.6, 1.2)], False),
    ],
)
def test_overfitting_needs_eval_rising_while_train_falls(evals, expected):
    assert overfitting(evals) is expected


def test_training_changes_lora_weights_and_freezes_the_base(workspace):
    import torch

    from tuner import sft
    from tuner.batching import TokenCounter
    from tuner.callbacks import make_run_callback

    config = TrainConfig(max_steps=2, **SMALL)
    model, lm = sft.load_lora_model(config, workspace.models_dir)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    items = [tokenize_chat(lm.tokenizer, c, 96) for c in chats(6)]
    counter = TokenCounter()
    callback = make_run_callback(
        progress=None, cancel=None, counter=counter, metrics_path=None, early_stopping_patience=None
    )
    args = sft.training_arguments(config, workspace.root / "ckpt", 2, has_eval=False)
    sft.build_trainer(model, lm.tokenizer, config, args, items, [], callback, counter).train()
    after = dict(model.named_parameters())
    lora = [n for n in before if "lora_" in n]
    assert lora and all(after[n].requires_grad for n in lora)
    assert any(not torch.equal(before[n], after[n]) for n in lora if "lora_B" in n)
    frozen = [n for n in before if "lora_" not in n]
    assert frozen and all(torch.equal(before[n], after[n].detach()) for n in frozen)
    seen = list(LengthGroupedSampler([len(t.input_ids) for t in items], 2, config.seed))[:4]  # 2 steps of 2
    assert counter.tokens == sum(len(items[i].input_ids) for i in seen)


def test_evaluation_does_not_break_gradients_through_4bit_layers(workspace):
    """bitsandbytes repacks 4-bit weights in eval mode for a kernel without autograd; training must not use it."""
    import torch

    from tuner import sft

    model, lm = sft.load_lora_model(TrainConfig(**SMALL, lora_dropout=0.0), workspace.models_dir)
    ids = torch.tensor([lm.tokenizer("The quick brown fox jumps over the lazy dog")["input_ids"]])

    def grads():
        model.train()
        model.zero_grad()
        model(input_ids=ids, labels=ids).loss.backward()
        return {
            n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None and "lora_B" in n
        }

    fresh = grads()
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)
    after_eval = grads()
    assert fresh.keys() == after_eval.keys()
    assert all(torch.allclose(fresh[n], after_eval[n], atol=1e-6) for n in fresh)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, models_dir):
    from common.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("short") / "ws")
    events = []
    config = TrainConfig(max_steps=3, eval_fraction=0.25, eval_every=2, **SMALL)
    result = train(config, workspace=ws, examples=chats(10), progress=events.append)
    return ws, result, events


def test_short_run_writes_a_complete_run_directory(short_run):
    ws, result, events = short_run
    names = {p.name for p in result.run_dir.iterdir()}
    expected = {
        *ADAPTER_FILES,
        "train_config.json",
        "metrics.jsonl",
        "loss_curve.png",
        "validation_report.json",
    }
    assert expected <= names and "tokenizer_config.json" in names
    assert result.status == "finished" and result.global_step == 3
    assert (result.run_dir / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((result.run_dir / "validation_report.json").read_text())
    assert report["usable"] == 10 and report["train_size"] + report["eval_size"] == 10
    metrics = read_metrics(result.run_dir / "metrics.jsonl")
    assert [e["step"] for e in metrics if e["kind"] == "step"] == [1, 2, 3]
    assert [e["step"] for e in metrics if e["kind"] == "eval"] == [2, 3]  # every 2 steps and at the end
    steps = [e for e in events if e.kind == "step"]
    assert all(e.total_steps == 3 and e.tokens_per_s > 0 and e.learning_rate is not None for e in steps)
    assert steps[-1].eta_s == 0
    assert ws.run(result.run_id)["status"] == "finished"


def test_adapter_loads_with_plain_peft(short_run, models_dir):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file

    from tuner.models import load_model

    _, result, _ = short_run
    weights = load_file(result.run_dir / "adapter_model.safetensors")
    assert weights and all("lora_" in k for k in weights)
    assert any(v.abs().sum() > 0 for k, v in weights.items() if "lora_B" in k)
    base = load_model(models_dir=models_dir)
    model = PeftModel.from_pretrained(base.model, str(result.run_dir))
    ids = torch.tensor([base.tokenizer("Hello there")["input_ids"]])
    with torch.no_grad():
        tuned = model(input_ids=ids).logits
        with model.disable_adapter():
            plain = model(input_ids=ids).logits
    assert not torch.allclose(tuned, plain)


@pytest.mark.parametrize("content", [{"run_id": "other-run", "status": "finished"}, None])
def test_output_dir_holding_another_run_is_refused(tmp_path, workspace, content):
    out = tmp_path / "out"
    out.mkdir()
    if content:
        (out / "run.json").write_text(json.dumps(content))
    else:
        (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="already holds (run other-run|other files).*--overwrite"):
        train(TrainConfig(output_dir=str(out), max_steps=1), workspace=workspace, examples=chats(4))
    assert workspace.runs() == []
    assert sorted(p.name for p in out.iterdir()) == (["run.json"] if content else ["notes.txt"])


def test_a_failing_run_is_recorded_failed_with_its_error(tmp_path, workspace):
    def explode(event):
        raise RuntimeError("progress sink broke")

    with pytest.raises(RuntimeError, match="progress sink broke"):
        train(
            TrainConfig(output_dir=str(tmp_path / "f"), max_steps=2, **SMALL),
            workspace=workspace,
            examples=chats(4),
            progress=explode,
        )
    (row,) = workspace.runs()
    assert row["status"] == "failed" and "progress sink broke" in row["error"]
    assert json.loads((tmp_path / "f" / "run.json").read_text())["status"] == "failed"


def test_cancel_then_resume_continues_the_same_loss_curve(tmp_path, workspace):
    config = {"max_steps": 5, "eval_fraction": 0.0, "save_every": 100, **SMALL}
    reference = train(
        TrainConfig(output_dir=str(tmp_path / "ref"), **config), workspace=workspace, examples=chats(12)
    )
    cancel = threading.Event()

    def stop_after_two(event):
        if event.step >= 2:
            cancel.set()

    first = train(
        TrainConfig(output_dir=str(tmp_path / "run"), **config),
        workspace=workspace,
        examples=chats(12),
        progress=stop_after_two,
        cancel=cancel,
    )
    assert first.status == "cancelled" and 2 <= first.global_step < 5
    assert (first.run_dir / "adapter_model.safetensors").is_file()
    assert workspace.run(first.run_id)["status"] == "cancelled"
    resumed = resume(first.run_dir, workspace=workspace)
    assert resumed.status == "finished" and resumed.global_step == 5
    assert workspace.run(first.run_id)["status"] == "finished"
    losses = [e["train_loss"] for e in read_metrics(resumed.run_dir / "metrics.jsonl") if e["kind"] == "step"]
    expected = [
        e["train_loss"] for e in read_metrics(reference.run_dir / "metrics.jsonl") if e["kind"] == "step"
    ]
    assert len(losses) == 5
    assert losses == pytest.approx(expected, rel=1e-3)
    with pytest.raises(ValueError, match="already finished"):
        resume(first.run_dir, workspace=workspace)
