"""Arms: kinds parsed, missing adapters and knowledge bases named, one request per arm with shared retrieval."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from evals.arms import Arm, ArmSet, adapter_dir, parse_kinds


@pytest.mark.parametrize(
    ("spec", "kinds"),
    [
        ("base,ft,rag,ft+rag", ["base", "ft", "rag", "ft+rag"]),
        (" Base , fine-tuned,base+RAG ", ["base", "ft", "rag"]),
        (["rag", "rag", "base"], ["rag", "base"]),
        ("fine-tuned+rag", ["ft+rag"]),
    ],
)
def test_parse_kinds_accepts_names_and_aliases(spec, kinds):
    assert parse_kinds(spec) == kinds


@pytest.mark.parametrize(("spec", "message"), [("base,gpt4", "unknown arm 'gpt4'"), (" , ", "no arms given")])
def test_parse_kinds_rejects_unknown_and_empty(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_kinds(spec)


def test_adapter_dir_finds_a_run_folders_adapter(tmp_path):
    (tmp_path / "run" / "adapter").mkdir(parents=True)
    (tmp_path / "run" / "adapter" / "adapter_config.json").write_text("{}")
    assert adapter_dir(tmp_path / "run") == tmp_path / "run" / "adapter"
    assert adapter_dir(tmp_path / "plain") == tmp_path / "plain"


def test_missing_adapter_and_knowledge_base_are_named_and_base_remains(tmp_path):
    lm = SimpleNamespace(adapters={})
    arms = ArmSet.build(lm, ["base", "ft", "rag", "ft+rag"], [tmp_path / "gone"], kb=None)
    assert [a.name for a in arms.arms] == ["base"]
    text = " | ".join(arms.problems)
    assert "adapter " + str(tmp_path / "gone") in text and "not a LoRA adapter folder" in text
    assert "arm base+RAG: no knowledge base" in text and "arm fine-tuned: no adapter" in text


# -- prompts --------------------------------------------------------------------------------------------------


class CountingKB:
    """A knowledge base that counts searches."""

    def __init__(self, kb) -> None:
        self.kb, self.searches = kb, 0

    def search(self, *args, **kwargs):
        self.searches += 1
        return self.kb.search(*args, **kwargs)


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    from rag import Embedder, IndexConfig, KnowledgeBase

    docs = tmp_path_factory.mktemp("docs")
    (docs / "volcano.txt").write_text("Mount Etna in Sicily is one of the most active volcanoes in Europe.")
    (docs / "bread.txt").write_text("Knead the dough for ten minutes until it is elastic, then let it rise.")
    kb = KnowledgeBase.create(
        tmp_path_factory.mktemp("kb") / "index", Embedder.load(), IndexConfig(chunk_size=64, overlap=16)
    )
    kb.add_paths([docs])
    return kb


@pytest.fixture
def arm_set(kb, tokenizer) -> ArmSet:
    """base, base+RAG and fine-tuned+RAG on a stand-in model (a tokenizer and a config suffice to prepare)."""
    lm = SimpleNamespace(
        tokenizer=tokenizer, model=SimpleNamespace(config=SimpleNamespace(max_position_embeddings=2048))
    )
    arms = [
        Arm("base", "base"),
        Arm("base+RAG", "rag", None, True),
        Arm("fine-tuned+RAG", "ft+rag", "ft", True),
    ]
    return ArmSet(lm, arms, CountingKB(kb), k=2)


def test_rag_arms_share_one_retrieval_and_get_numbered_sources(arm_set):
    prepared = arm_set.prepare("Which volcano is in Sicily?", system="Be brief.", max_new_tokens=16)
    assert arm_set.kb.searches == 1
    base, rag, ft_rag = prepared.requests
    assert [r.adapter for r in prepared.requests] == [None, None, "ft"]
    assert base.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Which volcano is in Sicily?"},
    ]
    assert rag.messages == ft_rag.messages
    assert (
        rag.messages[0]["content"].startswith("Be brief.\n\n")
        and "[1]" in rag.messages[0]["content"] + rag.messages[-1]["content"]
    )
    assert "Etna" in rag.messages[-1]["content"] + rag.messages[0]["content"]
    assert (
        prepared.sources[0] == []
        and prepared.sources[1][0]["n"] == 1
        and "Etna" in prepared.sources[1][0]["text"]
    )


def test_history_goes_before_the_question_in_every_arm(arm_set):
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    prepared = arm_set.prepare("And bread?", histories=[history] * 3, max_new_tokens=16)
    for request in prepared.requests:
        assert request.messages[-3:-1] == history and request.messages[-1]["role"] == "user"


def test_empty_question_is_refused(arm_set):
    with pytest.raises(ValueError, match="the question is empty"):
        arm_set.prepare("   ")


# -- adapters on the real model -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adapter_folders(lm, tmp_path_factory) -> list[Path]:
    """Two random LoRA adapters in folders with the same name (like two runs' checkpoint-100)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folders = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(lm.folder)
        config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        folder = tmp_path_factory.mktemp(f"run{seed}") / "checkpoint-100"
        get_peft_model(base, config).save_pretrained(folder)
        folders.append(folder)
    return folders


def test_each_adapter_gets_its_own_fine_tuned_arm(lm, adapter_folders):
    from tuner.generate import detach_adapter

    try:
        arms = ArmSet.build(lm, ["base", "ft"], [*adapter_folders, adapter_folders[0]])
        names = [a.adapter for a in arms.arms]
        assert names == [None, "checkpoint-100", "checkpoint-100-2"] and arms.problems == []
        assert {lm.adapters[n] for n in names[1:]} == {str(f.resolve()) for f in adapter_folders}
        assert len({a.name for a in arms.arms}) == 3
    finally:
        for name in list(lm.adapters):
            detach_adapter(lm, name)
