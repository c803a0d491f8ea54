"""Several gradio_client sessions chatting at once each get their own answers and histories (no cross-talk)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from gradio_client import Client

PROMPTS = ["Name a fruit.", "What colour is the sky?", "Count to three."]


def ask(url: str, prompt: str, client: Client | None = None):
    client = client or Client(url, verbose=False)
    result = client.predict(
        prompt, ["base", "ft"], "run-random", None, "", 8, 0, 1, 1, "", api_name="/compare"
    )
    return client, result


def test_concurrent_sessions_get_their_own_answers(server, adapter_run):
    alone = {p: ask(server, p)[1][8] for p in PROMPTS}  # greedy: the same prompt gives the same answers
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        first = dict(zip(PROMPTS, pool.map(lambda p: ask(server, p), PROMPTS), strict=True))
    for prompt, (_, result) in first.items():
        assert [a["answer"] for a in result[8]] == [a["answer"] for a in alone[prompt]]
        assert all(chat["value"][0]["content"][0]["text"] == prompt for chat in result[:2])
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        second = dict(
            zip(PROMPTS, pool.map(lambda p: ask(server, "Say it again.", first[p][0]), PROMPTS), strict=True)
        )
    for prompt, (_, result) in second.items():
        for chat, arm in zip(result[:2], first[prompt][1][8], strict=True):
            turns = chat["value"]
            assert len(turns) == 4, "each session keeps its own history"
            assert turns[0]["content"][0]["text"] == prompt
            assert turns[1]["content"][0]["text"] == arm["answer"]
