"""Arena tab handlers: random blind pairs, nothing naming an arm before the vote, one vote per pair, leaderboard."""

from __future__ import annotations

import json
import random
import shutil

import gradio as gr
import pytest

from evals.arms import KIND_LABELS
from ui.helpers import bind
from ui.tabs import arena


def ask(services, adapter_run, kb_name, prompt="Where is the Eiffel Tower?"):
    return list(bind(arena.ask, services)(prompt, adapter_run, kb_name, 12))


@pytest.mark.parametrize(
    ("adapter", "index", "kinds"),
    [
        ("run", None, {"base", "ft"}),
        (None, "kb", {"base", "rag"}),
        ("run", "kb", {"base", "ft", "rag", "ft+rag"}),
    ],
)
def test_pairs_are_two_different_available_arms(adapter, index, kinds):
    rng = random.Random(1)
    seen = set()
    for _ in range(60):
        pair = arena.draw_pair(adapter, index, rng)
        assert len(set(pair)) == 2 and set(pair) <= kinds
        seen.add(tuple(pair))
    assert {k for pair in seen for k in pair} == kinds
    assert len({p[0] for p in seen}) > 1  # either arm can be A


def test_a_pair_needs_an_adapter_or_a_knowledge_base():
    with pytest.raises(ValueError, match="the Arena needs two arms"):
        arena.draw_pair(None, None)


def test_nothing_names_an_arm_before_the_vote(services, adapter_run, kb_name):
    steps = ask(services, adapter_run, kb_name)
    comparison = steps[-1][3]
    assert all(step[3] is None for step in steps[:-1]) and comparison
    with services.workspace.db() as con:
        row = dict(con.execute("SELECT * FROM comparisons WHERE id = ?", (comparison,)).fetchone())
    shown = json.dumps([step[:3] for step in steps])
    names = [*KIND_LABELS.values(), adapter_run, row["arm_a"], row["arm_b"]]
    for step in steps:
        chat_a, chat_b, status, _ = step
        assert not any(name in status for name in names)
        assert chat_a[0]["content"] == chat_b[0]["content"] == "Where is the Eiffel Tower?"
    assert steps[-1][0][1]["content"] == row["answer_a"] and steps[-1][1][1]["content"] == row["answer_b"]
    assert "tower.txt" not in shown  # no sources either: they would give the RAG arm away


def test_vote_reveals_the_arms_and_updates_the_leaderboard(services, adapter_run, kb_name):
    comparison = ask(services, adapter_run, kb_name)[-1][3]
    before = arena.board(services)
    reveal, board = bind(arena.vote, services)("a", comparison)
    with services.workspace.db() as con:
        row = con.execute("SELECT arm_a, arm_b FROM comparisons WHERE id = ?", (comparison,)).fetchone()
    assert f"A was **{row['arm_a']}**, B was **{row['arm_b']}**" in reveal
    assert board["votes"].sum() == before["votes"].sum() + 2
    winner = board.set_index("arm").loc[row["arm_a"]]
    assert winner["wins"] >= 1


def test_voting_twice_is_refused(services, adapter_run, kb_name):
    comparison = ask(services, adapter_run, kb_name)[-1][3]
    vote = bind(arena.vote, services)
    vote("tie", comparison)
    with pytest.raises(gr.Error, match="already has a vote"):
        vote("b", comparison)


@pytest.mark.parametrize(
    ("winner", "comparison", "message"),
    [
        ("a", None, "reloaded or expired"),
        ("a", "not-a-comparison", "no comparison with id"),
        ("maybe", "x", "winner must be one of"),
    ],
)
def test_bad_votes_are_user_errors(services, winner, comparison, message):
    with pytest.raises(gr.Error, match=message):
        bind(arena.vote, services)(winner, comparison)


def test_prompt_is_drawn_from_the_eval_split(services, alpaca_file):
    shutil.copy(alpaca_file, services.workspace.datasets_dir / "arena.json")
    services.save_dataset_options("arena.json", {"fmt": "auto", "eval_fraction": 0.25, "seed": 3})
    held_out = {ex.messages[-2]["content"] for ex in services.eval_examples("arena.json")}
    assert len(held_out) == 3
    drawn = {arena.draw_prompt(services, "arena.json") for _ in range(20)}
    assert drawn <= held_out
    with pytest.raises(ValueError, match="upload one in the Data tab"):
        arena.draw_prompt(services, "")
