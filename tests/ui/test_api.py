"""The app over real HTTP with gradio_client: compare, arena + vote, stakeholder mode, login, file access.

Each server is launched in-process on 127.0.0.1 at a free port and shares the session's model.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import replace

import pytest
from gradio_client import Client

from evals.arms import KIND_LABELS

CHECKS = "- type: word-count\n  max_words: 300\n"
CHANGING_PREFIXES = (
    "dataset_",
    "index_",
    "train",
    "eval_run",
    "merge",
)  # endpoints that change the workspace


@pytest.fixture(scope="session")
def stakeholder_server(services, serve):
    demo, url = serve(replace(services, stakeholder=True), "--stakeholder")
    yield url
    demo.close()


def endpoint_names(url: str) -> set[str]:
    """Every event's api name in the app's config, documented or not (what a browser could call)."""
    with urllib.request.urlopen(url + "config") as r:
        config = json.load(r)
    return {d.get("api_name") for d in config["dependencies"] if d.get("api_name")}


def text(message) -> str:
    content = message["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def test_compare_returns_one_answer_per_arm(server, adapter_run, kb_name):
    client = Client(server, verbose=False)
    kinds = ["base", "ft", "rag", "ft+rag"]
    result = client.predict(
        "Where is the Eiffel Tower?",
        kinds,
        adapter_run,
        kb_name,
        "",
        10,
        0,
        1,
        1,
        CHECKS,
        api_name="/compare",
    )
    chats, badges, answers = result[:4], result[4:8], result[8]
    assert [a["arm"] for a in answers] == [
        "base",
        f"fine-tuned ({adapter_run})",
        "base+RAG",
        f"fine-tuned+RAG ({adapter_run})",
    ]
    for chat, answer in zip(chats, answers, strict=True):
        assert answer["finished"] and answer["answer"].strip()
        assert text(chat["value"][-1]) == answer["answer"] and chat["label"] == answer["arm"]
    assert all("word-count" in b["value"] for b in badges)
    assert answers[0]["sources"] == [] and answers[2]["sources"][0]["source"] == "tower.txt"


def test_arena_reveals_nothing_before_the_vote_and_the_vote_updates_the_leaderboard(
    server, services, adapter_run, kb_name
):
    client = Client(server, verbose=False)
    job = client.submit("Name a river in Paris.", adapter_run, kb_name, 10, api_name="/arena_ask")
    final = job.result()
    payloads = json.dumps([*job.outputs(), final])
    with services.workspace.db() as con:
        row = dict(con.execute("SELECT * FROM comparisons ORDER BY created DESC LIMIT 1").fetchone())
    assert text(final[0][1]) == row["answer_a"] and text(final[1][1]) == row["answer_b"]
    for name in {*KIND_LABELS.values(), adapter_run, row["arm_a"], row["arm_b"]}:
        for part in [*job.outputs(), final]:
            answers = {text(part[0][-1]), text(part[1][-1])}
            assert name not in part[2] and all(name not in a or name == "base" for a in answers)
    assert "tower.txt" not in payloads and "river.md" not in payloads
    reveal, board = client.predict("b", api_name="/vote")
    assert f"A was **{row['arm_a']}**, B was **{row['arm_b']}**" in reveal
    arms = {r[0]: r for r in board["data"]}
    headers = board["headers"]
    assert arms[row["arm_b"]][headers.index("wins")] >= 1
    with pytest.raises(Exception, match="already has a vote"):
        client.predict("a", api_name="/vote")


def test_vote_without_a_comparison_in_the_session_is_an_error(server):
    with pytest.raises(Exception, match="reloaded or expired"):
        Client(server, verbose=False).predict("a", api_name="/vote")


def test_stakeholder_mode_exposes_no_upload_training_or_delete_endpoint(stakeholder_server):
    client = Client(stakeholder_server, verbose=False)
    documented = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/compare", "/arena_ask", "/vote"} <= documented
    every = endpoint_names(stakeholder_server)
    assert not [
        n
        for n in every
        if n.startswith(CHANGING_PREFIXES) or any(w in n for w in ("upload", "remove", "delete"))
    ]
    assert not [n for n in every if n.startswith(("train", "dataset", "index"))]


def test_auth_rejects_a_wrong_password(services, serve):
    demo, url = serve(services, "--auth", "alice:s3cret")
    try:
        with pytest.raises(Exception):  # noqa: B017 - gradio_client raises a plain exception on a failed login
            Client(url, auth=("alice", "wrong"), verbose=False)
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "config")
        client = Client(url, auth=("alice", "s3cret"), verbose=False)
        assert "/compare" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    finally:
        demo.close()


def test_workspace_files_are_not_served(server, services):
    for path in (services.workspace.db_path, services.workspace.runs_dir / adapter_file(services)):
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{server}gradio_api/file={path}")


def adapter_file(services) -> str:
    run = services.workspace.runs()[0]
    return f"{run['id']}/adapter_config.json"
