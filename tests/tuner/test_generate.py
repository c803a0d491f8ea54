"""Generation: greedy answers, parameters, streaming, and multi-arm mixed-adapter batches."""

from __future__ import annotations

import pytest
import torch

from tuner.generate import (
    ArmRequest,
    GenerationParams,
    attach_adapter,
    chat_messages,
    detach_adapter,
    first_step_logits,
    generate,
    generate_arms,
    stream_arms,
)


@pytest.fixture(scope="module")
def random_adapter(tmp_path_factory, models_dir):
    """A LoRA adapter with non-zero random weights, saved like a trained one."""
    from peft import LoraConfig, get_peft_model

    from tuner.models import load_model

    torch.manual_seed(0)
    lm = load_model(models_dir=models_dir)
    config = LoraConfig(r=8, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    folder = tmp_path_factory.mktemp("adapter")
    get_peft_model(lm.model, config).save_pretrained(folder)
    return folder


@pytest.fixture
def lm_with_adapter(lm, random_adapter):
    attach_adapter(lm, random_adapter, "ft")
    yield lm
    detach_adapter(lm, "ft")


def test_greedy_capital_of_france_names_paris(lm):
    answer = generate(lm, "What is the capital of France?", params=GenerationParams(max_new_tokens=24))
    assert "Paris" in answer


def test_greedy_is_deterministic(lm):
    params = GenerationParams(max_new_tokens=16)
    assert generate(lm, "Name a fruit.", params=params) == generate(lm, "Name a fruit.", params=params)


def test_system_prompt_reaches_the_template(lm):
    ids = lm.tokenizer.apply_chat_template(chat_messages("hi", system="You are Zed."), tokenize=False)
    assert "You are Zed." in ids


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"repetition_penalty": 9}, "repetition_penalty"),
    ],
)
def test_bad_generation_params_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        GenerationParams(**kwargs)


def test_streaming_grows_and_ends_finished(lm):
    steps = list(
        stream_arms(lm, [ArmRequest(chat_messages("Count to five."))], GenerationParams(max_new_tokens=12))
    )
    lengths = [s[0].completion_tokens for s in steps]
    assert len(steps) > 3 and lengths == sorted(lengths)
    assert steps[-1][0].finished and steps[-1][0].text


def test_mixed_batch_matches_each_arm_alone(lm_with_adapter):
    lm = lm_with_adapter
    msgs = chat_messages("Who are you?")
    other = chat_messages("Write one sentence about the sea.", system="Be brief.")
    requests = [ArmRequest(msgs), ArmRequest(msgs, "ft"), ArmRequest(other), ArmRequest(other, "ft")]
    batch = first_step_logits(lm, requests)
    alone = torch.stack([first_step_logits(lm, [r])[0] for r in requests])
    # Left padding moves fp32 sums by well under 1 logit (logits span about +-30); the two arms of one prompt
    # differ by tens of logits, so a mixed-up arm (or an adapter applied to the wrong row) fails this check.
    partner = [1, 0, 3, 2]
    for i in range(len(requests)):
        assert (batch[i] - alone[i]).abs().max() < 2.0
        assert batch[i].argmax() == alone[i].argmax()
        assert (batch[i] - alone[partner[i]]).abs().max() > 10.0

    params = GenerationParams(max_new_tokens=8)
    outs = generate_arms(lm, requests, params)
    solo = [generate_arms(lm, [r], params)[0] for r in requests]
    for b, s in zip(outs, solo, strict=True):
        assert (
            b.token_ids[:2] == s.token_ids[:2]
        )  # long greedy runs may drift under padding; the start may not
    assert outs[0].text != outs[1].text


def test_unknown_adapter_name_is_refused(lm):
    with pytest.raises(ValueError, match="not attached"):
        generate_arms(lm, [ArmRequest(chat_messages("hi"), "missing")])


def test_attach_rejects_a_folder_without_adapter(lm, tmp_path):
    with pytest.raises(ValueError, match="not a LoRA adapter folder"):
        attach_adapter(lm, tmp_path)


def test_rag_arm_prompt_counts_context_tokens(lm):
    plain = chat_messages("When was the bridge built?")
    with_context = chat_messages("Context: [1] The bridge was built in 1932.\n\nWhen was the bridge built?")
    outs = generate_arms(
        lm, [ArmRequest(plain), ArmRequest(with_context)], GenerationParams(max_new_tokens=4)
    )
    assert outs[1].prompt_tokens > outs[0].prompt_tokens
