"""Compare tab handlers: arms streamed from one batch, multi-turn histories, badges, sources, export, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gradio as gr
import pytest

from ui.helpers import bind
from ui.tabs import compare

ADAPTER_RUN, KB_NAME = "run-random", "facts"  # see conftest.py
CHECKS = "- type: word-count\n  max_words: 200\n- type: regex\n  value: '[A-Z]'\n"


def text(message: dict) -> str:
    """A chatbot message's text (Gradio stores content as a list of parts)."""
    content = message["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def run(services, prompt, kinds, conv=None, adapter=ADAPTER_RUN, index=KB_NAME, checks=CHECKS, tokens=12):
    handler = bind(compare.compare, services)
    steps = list(handler(prompt, kinds, adapter, index, "", tokens, 0.0, 1.0, 1.0, checks, conv))
    return steps


def test_every_arm_answers_in_its_own_column(services):
    steps = run(services, "Where is the Eiffel Tower?", ["base", "ft", "rag", "ft+rag"])
    conv = steps[-1][-1]
    labels = [c.label for c in steps[-1][:4]]
    assert labels == ["base", f"fine-tuned ({ADAPTER_RUN})", "base+RAG", f"fine-tuned+RAG ({ADAPTER_RUN})"]
    for chat in steps[-1][:4]:
        assert chat.visible is True
        user, answer = chat.value[-2:]
        assert text(user) == "Where is the Eiffel Tower?" and text(answer).strip()
    result = steps[-1][8]
    assert [r["arm"] for r in result] == labels and all(r["finished"] and r["answer"] for r in result)
    assert len(steps) > 2  # streamed: partial answers came before the final one
    assert conv["names"] == labels and all(len(h) == 2 for h in conv["histories"])


def test_rag_arms_show_sources_and_badges(services):
    steps = run(services, "How tall is the Eiffel Tower?", ["base", "rag"])
    final = steps[-1]
    base_box, rag_box = final[4].value, final[5].value
    assert "tower.txt" in rag_box and "Sources" in rag_box
    assert "Sources" not in base_box
    for box in (base_box, rag_box):
        assert "word-count" in box and "regex" in box and "score" in box
    assert final[6].visible is False and final[7].visible is False  # unused columns hidden


def test_second_turn_keeps_each_arms_history(services):
    conv = run(services, "Name a river in Paris.", ["base", "ft"])[-1][-1]
    first_answers = [h[1]["content"] for h in conv["histories"]]
    final = run(services, "And how long is it?", ["base", "ft"], conv=conv)[-1]
    conv2 = final[-1]
    for history, first in zip(conv2["histories"], first_answers, strict=True):
        assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
        assert history[1]["content"] == first
    assert len(final[0].value) == 4


def test_changing_the_arms_starts_a_new_conversation(services):
    conv = run(services, "Hello?", ["base", "ft"])[-1][-1]
    conv2 = run(services, "Hi again?", ["base", "rag"], conv=conv)[-1][-1]
    assert all(len(h) == 2 for h in conv2["histories"])


@pytest.mark.parametrize(
    ("kinds", "adapter", "index", "prompt", "message"),
    [
        (["base"], ADAPTER_RUN, KB_NAME, "  ", "type a question"),
        ([], ADAPTER_RUN, KB_NAME, "Hi", "choose at least one arm"),
        (["base", "ft"], None, KB_NAME, "Hi", "train one in the Train tab"),
        (["base", "rag"], ADAPTER_RUN, None, "Hi", "create one in the Knowledge tab"),
        (["base", "ft"], "no-such-run", KB_NAME, "Hi", "was deleted or is not an adapter folder"),
    ],
)
def test_bad_choices_are_user_errors(services, kinds, adapter, index, prompt, message):
    with pytest.raises(gr.Error, match=message):
        run(services, prompt, kinds, adapter=adapter, index=index)


def test_bad_checks_yaml_is_a_user_error(services):
    with pytest.raises(gr.Error, match="unknown check type"):
        run(services, "Hi", ["base"], checks="- type: nope\n")


def test_deleted_adapter_is_refused_and_detached(services, random_adapter_dir, tmp_path):
    lm = services.lm()
    run(services, "Hi", ["base", "ft"])
    assert ADAPTER_RUN in lm.adapters
    backup = tmp_path / "backup"
    shutil.move(random_adapter_dir, backup)
    try:
        with pytest.raises(gr.Error, match="was deleted"):
            run(services, "Hi", ["base", "ft"])
        assert ADAPTER_RUN not in lm.adapters
        assert compare.refresh_choices(services)[0].choices == []
    finally:
        shutil.move(backup, random_adapter_dir)
    assert text(run(services, "Hi", ["base", "ft"])[-1][1].value[-1])


def test_export_writes_json_and_markdown(services):
    conv = run(services, "Where is the Seine?", ["base", "rag"])[-1][-1]
    json_path, md_path = compare.export(conv, "Be brief.")
    data = json.loads(Path(json_path).read_text(encoding="utf-8"))
    assert [a["arm"] for a in data["arms"]] == ["base", "base+RAG"]
    assert data["system"] == "Be brief." and data["arms"][1]["last_sources"]
    markdown = Path(md_path).read_text(encoding="utf-8")
    assert "## base+RAG" in markdown and "Where is the Seine?" in markdown


def test_export_without_a_conversation_is_refused():
    with pytest.raises(ValueError, match="nothing to export"):
        compare.export(compare.new_conversation(), "")


def test_checks_are_inferred_from_a_saved_dataset(services, alpaca_file):
    shutil.copy(alpaca_file, services.workspace.datasets_dir / "infer.json")
    text = compare.infer_from_dataset(services, "infer.json")
    checks = compare.active_checks(text)
    assert checks and any(c.type in ("regex", "starts-with", "ends-with", "word-count") for c in checks)
    with pytest.raises(ValueError, match="upload one in the Data tab"):
        compare.infer_from_dataset(services, "")
