"""Arena tab: blind A vs B. Two arms, drawn at random from those available, answer the user's prompt (or one
drawn from a dataset's eval split); the voter picks A, B, tie or both bad; only then are the arms revealed.

Nothing sent to the browser before the vote names an arm: the arms are stored with the answers in the
workspace's `comparisons` table (`evals.votes`), and the session's `gr.State` holds only the comparison id.
"""

from __future__ import annotations

import functools
import random

import gradio as gr
import pandas as pd

from evals.votes import WINNERS, create_comparison, leaderboard, record_vote
from tuner.generate import GenerationParams
from ui.arms import Choice, adapter_choices, stream_choice
from ui.helpers import NO_DATASET, SESSION_EXPIRED, bind, on_load, refresh_on_focus
from ui.services import Services

BOARD_COLUMNS = ["arm", "elo", "elo_low", "elo_high", "votes", "wins", "losses", "ties", "both_bad"]
BOARD_ROUNDS = 200  # bootstrap rounds for the live leaderboard (the report uses more)
WINNER_LABELS = {"a": "A is better", "b": "B is better", "tie": "Tie", "both_bad": "Both are bad"}
HIDDEN = "Vote to reveal which arm wrote each answer."


def available_kinds(adapter: str | None, index: str | None) -> list[str]:
    """The arm kinds the chosen adapter and knowledge base make possible (base always)."""
    kinds = ["base"]
    if adapter:
        kinds.append("ft")
    if index:
        kinds.append("rag")
    if adapter and index:
        kinds.append("ft+rag")
    return kinds


def draw_pair(adapter: str | None, index: str | None, rng: random.Random | None = None) -> list[str]:
    """Two different arm kinds in random order (A first).

    Raises:
        ValueError: fewer than two arms are possible (no adapter and no knowledge base).
    """
    kinds = available_kinds(adapter, index)
    if len(kinds) < 2:
        raise ValueError(
            "the Arena needs two arms: pick an adapter (train one in the Train tab) or a knowledge base "
            "(create one in the Knowledge tab)"
        )
    return (rng or random.SystemRandom()).sample(kinds, 2)


def draw_prompt(services: Services, dataset: str) -> str:
    """A random question from the eval split of a saved dataset."""
    if not dataset:
        raise ValueError(NO_DATASET)
    held_out = services.eval_examples(dataset)
    if not held_out:
        raise ValueError(
            f"{dataset} has no eval split (eval fraction 0): validate it again with an eval fraction"
        )
    example = random.SystemRandom().choice(held_out)
    return next(m["content"] for m in example.messages if m["role"] == "user")


def ask(services: Services, prompt: str, adapter: str | None, index: str | None, max_new_tokens: float):
    """Stream two randomly drawn arms' answers as A and B; the last yield stores the comparison.

    Yields (answer A chat, answer B chat, status, comparison id or None); nothing names an arm.
    """
    if not prompt or not prompt.strip():
        raise ValueError("type a question, or draw one from the eval set")
    kinds = draw_pair(adapter or None, index or None)
    choice = Choice(kinds, adapter or None, index or None)
    params = GenerationParams(max_new_tokens=int(max_new_tokens))
    step = None
    for step in stream_choice(services, choice, prompt, params=params):
        yield _chat(prompt, step.outputs[0].text), _chat(prompt, step.outputs[1].text), "Answering...", None
    answer_a, answer_b = (o.text for o in step.outputs)
    comparison = create_comparison(
        services.workspace,
        prompt,
        step.names[0],
        answer_a or "(empty answer)",
        step.names[1],
        answer_b or "(empty answer)",
        shuffle=False,
    )
    yield _chat(prompt, answer_a), _chat(prompt, answer_b), HIDDEN, comparison


def _chat(prompt: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def vote(services: Services, winner: str, comparison: str | None):
    """Record the vote on this session's comparison; returns the reveal and the updated leaderboard.

    Raises:
        ValueError: no comparison in this session (reloaded or expired), an unknown winner, or a second vote.
    """
    if not comparison:
        raise ValueError(SESSION_EXPIRED + " Ask a new question to get a new pair.")
    cast = record_vote(services.workspace, comparison, winner)
    reveal = (
        f"You voted **{WINNER_LABELS[cast.winner]}**. A was **{cast.arm_a}**, B was **{cast.arm_b}**. "
        "Ask another question for a new pair."
    )
    return reveal, board(services)


def board(services: Services) -> pd.DataFrame:
    """The leaderboard over every vote so far (Elo with 95% intervals and the win/loss record)."""
    rows = [r.to_dict() for r in leaderboard(services.workspace, rounds=BOARD_ROUNDS)]
    return pd.DataFrame(rows, columns=BOARD_COLUMNS) if rows else pd.DataFrame(columns=BOARD_COLUMNS)


def refresh_choices(services: Services):
    runs, indexes, datasets = adapter_choices(services), services.index_names(), services.dataset_names()
    return (
        gr.Dropdown(choices=runs, value=runs[0][1] if runs else None),
        gr.Dropdown(choices=indexes, value=indexes[0] if indexes else None),
        gr.Dropdown(choices=datasets, value=datasets[0] if datasets else None),
        board(services),
    )


def build(services: Services) -> None:
    gr.Markdown(
        "Two arms, picked at random, answer as **A** and **B**. Vote for the better answer; the arms are "
        "revealed after your vote.",
        elem_classes="help",
    )
    comparison = gr.State(None)
    with gr.Row():
        adapter = gr.Dropdown([], label="Adapter", info="for the fine-tuned arms", allow_custom_value=True)
        index = gr.Dropdown([], label="Knowledge base", info="for the RAG arms", allow_custom_value=True)
        dataset = gr.Dropdown(
            [], label="Eval set", info="draw questions from its held-out split", allow_custom_value=True
        )
        max_new = gr.Slider(8, 1024, 256, step=8, label="Max new tokens")
    with gr.Row():
        prompt = gr.Textbox(label="Question", scale=5, lines=2, placeholder="Ask a question, or draw one")
        with gr.Column(scale=1, min_width=140):
            go = gr.Button("Ask A and B", variant="primary")
            draw = gr.Button("Draw from eval set")
    with gr.Row(equal_height=True):
        chat_a = gr.Chatbot(label="Answer A", height=340)
        chat_b = gr.Chatbot(label="Answer B", height=340)
    with gr.Row():
        buttons = {w: gr.Button(WINNER_LABELS[w], variant="secondary") for w in WINNERS}
    status = gr.Markdown()
    table = gr.Dataframe(headers=BOARD_COLUMNS, label="Leaderboard (Elo, 95% interval)", interactive=False)
    winner = gr.Radio(list(WINNERS), value="a", visible=False)
    api_vote = gr.Button(visible=False)
    timer = gr.Timer(10.0)

    go.click(
        services.on_gpu(bind(ask, services)),
        [prompt, adapter, index, max_new],
        [chat_a, chat_b, status, comparison],
        api_name="arena_ask",
        concurrency_id="generate",
        concurrency_limit=1,
    )
    draw.click(bind(draw_prompt, services), dataset, prompt, api_name="arena_draw")
    vote_fn = bind(vote, services)
    api_vote.click(vote_fn, [winner, comparison], [status, table], api_name="vote")
    for w, button in buttons.items():
        button.click(
            functools.partial(vote_fn, w),
            comparison,
            [status, table],
            api_name=f"vote_{w}",
            api_visibility="private",
        )
    timer.tick(bind(board, services), None, table, api_visibility="private")
    refresh_on_focus(adapter, lambda: adapter_choices(services))
    refresh_on_focus(index, services.index_names)
    refresh_on_focus(dataset, services.dataset_names)
    on_load(bind(refresh_choices, services), None, [adapter, index, dataset, table])
