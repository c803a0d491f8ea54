"""Learning really happens: a persona adapter trained on identity.json on CPU makes the model call itself Orbit."""

from __future__ import annotations

from tuner.train import TrainConfig, train

# Tuned to learn the persona reliably in about one pass over identity.json on 2 CPU cores: a high constant learning
# rate suits the tiny 135M model and short answers; the sequences are short (system prompt + question + answer).
PERSONA = {
    "max_steps": 12,
    "batch_size": 8,
    "learning_rate": 2e-3,
    "lr_scheduler": "constant",
    "warmup_ratio": 0.0,
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.0,
    "max_seq_len": 96,
    "eval_fraction": 0.0,
    "save_every": 1000,
}


def test_persona_adapter_names_orbit_and_the_base_does_not(shared_data, workspace, lm):
    from tuner.data import fill_placeholders, load_dataset
    from tuner.generate import GenerationParams, attach_adapter, detach_adapter, generate

    dataset = load_dataset(shared_data / "llamafactory" / "identity.json")
    examples = fill_placeholders(dataset.examples, {"name": "Orbit", "author": "Acme Labs"})
    result = train(TrainConfig(**PERSONA), workspace=workspace, examples=examples)
    params = GenerationParams(max_new_tokens=24)
    base_answer = generate(lm, "Who are you?", params=params)
    name = attach_adapter(lm, result.run_dir, "orbit-test")
    try:
        tuned_answer = generate(lm, "Who are you?", adapter=name, params=params)
    finally:
        detach_adapter(lm, name)
    assert "Orbit" in tuned_answer, tuned_answer
    assert "Orbit" not in base_answer, base_answer
