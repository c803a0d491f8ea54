"""Compare tab: one prompt, 2 to 4 arms (base, fine-tuned, base+RAG, fine-tuned+RAG) answering side by side,
streamed from ONE multi-arm batch, each answer scored by the active checks, RAG arms with their sources.

The conversation (history per arm, last sources and scores) lives in `gr.State`, per browser session. The
active checks are the YAML in the checks box: inferred from a saved dataset's answers, or edited by hand.
"""

from __future__ import annotations

import html
import json
import tempfile
import time
from pathlib import Path

import gradio as gr
import yaml

from evals.checks import CheckResult, checks_to_yaml, parse_checks, run_checks, weighted_score
from evals.profile import infer_checks
from tuner.generate import GenerationParams
from ui.arms import KIND_CHOICES, Choice, adapter_choices, stream_choice
from ui.helpers import NO_ADAPTER, NO_DATASET, NO_INDEX, bind, on_load, refresh_on_focus, user_errors
from ui.services import Services

MAX_ARMS = 4
SCORE_EVERY = 8  # re-score the partial answers every this many decoding steps


def new_conversation(choice: Choice | None = None) -> dict:
    return {
        "key": _key(choice) if choice else None,
        "names": [],
        "histories": [],
        "sources": [],
        "scores": [],
    }


def _key(choice: Choice) -> list:
    return [list(choice.kinds), choice.adapter or "", choice.index or ""]


def active_checks(text: str | None) -> list:
    """The checks in the YAML box (a list of promptfoo-style entries); empty text means no checks."""
    if not text or not text.strip():
        return []
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"the checks are not valid YAML: {e}") from None
    return parse_checks(data or [], where="checks")


def infer_from_dataset(services: Services, dataset: str) -> str:
    """YAML of the style checks inferred from a saved dataset's reference answers (first answer per example)."""
    if not dataset:
        raise ValueError(NO_DATASET)
    examples = services.load_dataset(dataset).examples
    answers = [next((m["content"] for m in ex.messages if m["role"] == "assistant"), "") for ex in examples]
    return checks_to_yaml(infer_checks(answers))


def infer_quietly(services: Services, dataset: str):
    """On a dataset change: its inferred checks, or the current ones kept when nothing can be inferred."""
    try:
        return infer_from_dataset(services, dataset) if dataset else gr.skip()
    except ValueError:
        return gr.skip()


def badges_html(results: list[CheckResult], sources: list[dict] | None) -> str:
    """Score badges (one per check, pass/fail/skipped with its reason on hover) and the numbered sources."""
    parts = []
    if results:
        total = weighted_score(results)
        spans = [
            f'<span class="badge {"skip" if r.skipped else "pass" if r.passed else "fail"}" '
            f'title="{html.escape(r.reason)}">{html.escape(r.name)} {"-" if r.skipped else f"{r.score:.2f}"}</span>'
            for r in results
        ]
        head = f"<b>score {total:.2f}</b> " if total is not None else ""
        parts.append(f'<div class="badge-row">{head}{"".join(spans)}</div>')
    if sources:
        items = "".join(
            f"<li><b>[{s['n']}]</b> {html.escape(s['label'])}{_score_note(s)}</li>" for s in sources
        )
        parts.append(
            f"<details><summary>Sources ({len(sources)})</summary><ol style='list-style:none'>{items}</ol></details>"
        )
    return "".join(parts)


def _score_note(source: dict) -> str:
    return "" if source.get("score") is None else f" (score {source['score']:.2f})"


def _slots(conv: dict, prompt: str, outputs, checks, score: bool):
    """The 4 chat columns and 4 badge boxes for the current step (unused columns hidden)."""
    chats, boxes = [], []
    for i in range(MAX_ARMS):
        if i >= len(conv["names"]):
            chats.append(gr.Chatbot(value=[], visible=False))
            boxes.append(gr.HTML("", visible=False))
            continue
        answer = outputs[i].text if outputs else ""
        turn = (
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}] if prompt else []
        )
        chats.append(gr.Chatbot(value=conv["histories"][i] + turn, label=conv["names"][i], visible=True))
        if score and outputs:
            conv["scores"][i] = run_checks(answer, checks, sources=conv["sources"][i] or None)
        boxes.append(gr.HTML(badges_html(conv["scores"][i], conv["sources"][i]), visible=True))
    return chats, boxes


def compare(
    services: Services,
    prompt: str,
    kinds: list[str],
    adapter: str | None,
    index: str | None,
    system: str,
    max_new_tokens: float,
    temperature: float,
    top_p: float,
    repetition_penalty: float,
    checks_yaml: str,
    conv: dict | None,
):
    """Stream every chosen arm's answer to `prompt`; yields the columns, badges and the updated conversation."""
    if not prompt or not prompt.strip():
        raise ValueError("type a question first")
    if len(kinds or []) > MAX_ARMS:
        raise ValueError(f"choose at most {MAX_ARMS} arms")
    choice = Choice(kinds or [], adapter or None, index or None)
    choice.check()
    checks = active_checks(checks_yaml)
    params = GenerationParams(
        int(max_new_tokens), float(temperature), float(top_p), float(repetition_penalty)
    )
    if not conv or conv.get("key") != _key(choice):
        conv = new_conversation(choice)  # other arms: a new conversation
    histories = conv["histories"] or [[] for _ in choice.kinds]
    step = None
    for n, step in enumerate(stream_choice(services, choice, prompt, system, histories, params)):
        if n == 0:
            conv.update(
                names=step.names, histories=histories, sources=step.sources, scores=[[] for _ in step.names]
            )
        chats, boxes = _slots(conv, prompt, step.outputs, checks, score=n % SCORE_EVERY == 0)
        yield *chats, *boxes, answers(conv, step.outputs), conv
    chats, boxes = _slots(conv, prompt, step.outputs, checks, score=True)
    for history, out in zip(conv["histories"], step.outputs, strict=True):
        history += [{"role": "user", "content": prompt}, {"role": "assistant", "content": out.text}]
    yield *chats, *boxes, answers(conv, step.outputs), conv


def answers(conv: dict, outputs) -> list[dict]:
    """Plain data per arm for API clients: its name, answer so far, weighted score, check results and sources."""
    return [
        {
            "arm": name,
            "answer": out.text,
            "finished": out.finished,
            "score": weighted_score(scores),
            "checks": [r.to_dict() for r in scores],
            "sources": sources,
        }
        for name, out, scores, sources in zip(
            conv["names"], outputs, conv["scores"], conv["sources"], strict=True
        )
    ]


def clear(conv: dict | None):
    """Start a new conversation (the arms stay chosen)."""
    conv = new_conversation()
    chats, boxes = _slots(conv, "", None, [], score=False)
    return *chats, *boxes, [], conv


def export(conv: dict | None, system: str) -> list[str]:
    """The conversation as a JSON file and a Markdown file (paths in a temp folder) for download."""
    if not conv or not conv.get("names") or not any(conv["histories"]):
        raise ValueError("nothing to export yet: ask a question first")
    arms = [
        {
            "arm": name,
            "messages": history,
            "last_sources": sources,
            "last_scores": [r.to_dict() for r in scores],
        }
        for name, history, sources, scores in zip(
            conv["names"], conv["histories"], conv["sources"], conv["scores"], strict=True
        )
    ]
    data = {"exported": time.strftime("%Y-%m-%d %H:%M:%S"), "system": system or None, "arms": arms}
    folder = Path(tempfile.mkdtemp(prefix="ftrag-export-"))
    (folder / "conversation.json").write_text(
        json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    (folder / "conversation.md").write_text(conversation_markdown(data), encoding="utf-8")
    return [str(folder / "conversation.json"), str(folder / "conversation.md")]


def conversation_markdown(data: dict) -> str:
    lines = [f"# Conversation ({data['exported']})", ""]
    if data["system"]:
        lines += [f"System prompt: {data['system']}", ""]
    for arm in data["arms"]:
        lines += [f"## {arm['arm']}", ""]
        for m in arm["messages"]:
            lines += [f"**{m['role']}:** {m['content']}", ""]
        if arm["last_sources"]:
            lines += [
                "Sources of the last answer: "
                + "; ".join(f"[{s['n']}] {s['label']}" for s in arm["last_sources"]),
                "",
            ]
        if arm["last_scores"]:
            lines += [
                "Scores of the last answer: "
                + ", ".join(f"{s['name']} {s['score']:.2f}" for s in arm["last_scores"] if not s["skipped"]),
                "",
            ]
    return "\n".join(lines)


def refresh_choices(services: Services):
    """Fresh adapter, knowledge base and dataset lists (after training, indexing or an upload), with empty states."""
    runs, indexes, datasets = adapter_choices(services), services.index_names(), services.dataset_names()
    notes = [text for text, empty in ((NO_ADAPTER, not runs), (NO_INDEX, not indexes)) if empty]
    return (
        gr.Dropdown(choices=runs, value=runs[0][1] if runs else None),
        gr.Dropdown(choices=indexes, value=indexes[0] if indexes else None),
        gr.Dropdown(choices=datasets, value=datasets[0] if datasets else None),
        " ".join(notes),
    )


def build(services: Services) -> None:
    conv = gr.State(new_conversation())
    with gr.Row():
        with gr.Column(scale=3):
            kinds = gr.CheckboxGroup(
                KIND_CHOICES, value=["base", "ft"], label="Arms", info="2 to 4 arms answer in one batch"
            )
            with gr.Row():
                adapter = gr.Dropdown(
                    [],
                    label="Adapter",
                    info="a finished training run"
                    if services.stakeholder
                    else "a finished run, or type an adapter folder",
                    allow_custom_value=True,  # checked by the handler (registry runs only in stakeholder mode)
                )
                index = gr.Dropdown(
                    [], label="Knowledge base", info="for the RAG arms", allow_custom_value=True
                )
                refresh = gr.Button("Refresh lists", size="sm", scale=0)
            notes = gr.Markdown(elem_classes="help")
        with gr.Column(scale=2):
            system = gr.Textbox(
                label="System prompt", lines=2, placeholder="Optional: the same for every arm"
            )
            with gr.Accordion("Generation settings", open=False):
                max_new = gr.Slider(8, 1024, 256, step=8, label="Max new tokens")
                temperature = gr.Slider(0, 2, 0, step=0.05, label="Temperature", info="0 = greedy")
                top_p = gr.Slider(0.05, 1, 1, step=0.05, label="Top-p")
                rep = gr.Slider(1, 2, 1.1, step=0.05, label="Repetition penalty")
    with gr.Accordion("Checks (score badges)", open=False):
        with gr.Row():
            dataset = gr.Dropdown(
                [],
                label="Dataset",
                info="infer the style profile from its answers",
                scale=2,
                allow_custom_value=True,
            )
            infer = gr.Button("Infer checks", scale=1)
        checks = gr.Code(language="yaml", label="Active checks (YAML, editable)", lines=6)
    with gr.Row(equal_height=True):
        chats, boxes = [], []
        for i in range(MAX_ARMS):
            with gr.Column(min_width=220):
                chats.append(gr.Chatbot(label=f"Arm {i + 1}", height=380, visible=i < 2, buttons=["copy"]))
                boxes.append(gr.HTML(visible=i < 2))
    with gr.Row():
        prompt = gr.Textbox(label="Question", placeholder="Ask every arm at once", scale=5, lines=2)
        with gr.Column(scale=1, min_width=140):
            ask = gr.Button("Ask", variant="primary")
            new = gr.Button("New conversation")
    with gr.Accordion("Export", open=False):
        export_btn = gr.Button("Export conversation (JSON + Markdown)")
        files = gr.File(label="Downloads", file_count="multiple", interactive=False)

    inputs = [prompt, kinds, adapter, index, system, max_new, temperature, top_p, rep, checks, conv]
    result = gr.JSON(visible=False)  # the same answers as plain data, for API clients
    outputs = [*chats, *boxes, result, conv]
    generate = services.on_gpu(bind(compare, services))
    ask.click(generate, inputs, outputs, api_name="compare", concurrency_id="generate", concurrency_limit=1)
    prompt.submit(
        generate, inputs, outputs, api_visibility="private", concurrency_id="generate", concurrency_limit=1
    )
    new.click(clear, conv, outputs, api_name="compare_clear")
    export_btn.click(user_errors(export), [conv, system], files, api_name="compare_export")
    infer.click(bind(infer_from_dataset, services), dataset, checks, api_name="checks_infer")
    dataset.change(bind(infer_quietly, services), dataset, checks, api_visibility="private")
    lists = [adapter, index, dataset, notes]
    refresh.click(bind(refresh_choices, services), None, lists, api_visibility="private")
    refresh_on_focus(adapter, lambda: adapter_choices(services))
    refresh_on_focus(index, services.index_names)
    refresh_on_focus(dataset, services.dataset_names)
    on_load(bind(refresh_choices, services), None, lists)
