"""Evaluate tab handlers (ui.evaluation, ui.tabs.evaluate) without a browser: eval sets, checks YAML, the eval
config, a real eval run as a background job, results, charts and drill-down."""

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
import yaml

from ui import evaluation as ev
from ui.tabs import evaluate as tab

EVAL_SET = "evalset.json"
ARMS = ["base", "fine-tuned (run-random)", "base+RAG"]  # the fine-tuned arm is named after its adapter


@pytest.fixture
def fresh(workspace):
    """Services on an empty workspace, for the tests that need no model."""
    from ui.services import Services

    return Services(workspace)


@pytest.fixture
def saved(fresh, alpaca_file) -> str:
    shutil.copy(alpaca_file, fresh.workspace.datasets_dir / EVAL_SET)
    return f"dataset:{EVAL_SET}"


def wait_for(predicate, timeout: float = 600.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.2)


# -- the eval set ---------------------------------------------------------------------------------------------


def test_eval_sets_are_saved_datasets_and_training_runs_with_an_eval_split(fresh, saved):
    run = fresh.workspace.runs_dir / "r1"
    run.mkdir()
    (run / "data.jsonl").write_text("", encoding="utf-8")
    fresh.workspace.record_run("r1", run, "finished")
    fresh.workspace.record_run("r2", fresh.workspace.runs_dir / "r2", "failed")  # no saved split: not offered
    assert ev.eval_sets(fresh) == [(f"dataset {EVAL_SET}", saved), ("eval split of run r1", "run:r1")]
    assert ev.eval_data(fresh, "run:r1") == (str(run), "auto")


def test_a_dataset_with_a_column_mapping_is_converted_to_messages(fresh):
    rows = [{"q": f"question {i}?", "a": f"answer {i}."} for i in range(3)]
    (fresh.workspace.datasets_dir / "qa.json").write_text(json.dumps(rows), encoding="utf-8")
    fresh.save_dataset_options(
        "qa.json", {"fmt": "columns", "columns": {"prompt": "q", "response": "a", "system": None}}
    )
    path, fmt = ev.eval_data(fresh, "dataset:qa.json")
    assert fmt == "openai"
    first = json.loads(Path(path).read_text(encoding="utf-8").splitlines()[0])
    assert first["messages"][-2:] == [
        {"role": "user", "content": "question 0?"},
        {"role": "assistant", "content": "answer 0."},
    ]


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ("", "choose an eval set"),
        ("dataset:gone.json", "upload one in the Data tab"),
        ("run:gone", "training run 'gone' is gone"),
    ],
)
def test_a_missing_eval_set_says_what_to_do(fresh, choice, message):
    with pytest.raises(ValueError, match=message):
        ev.eval_data(fresh, choice)


# -- checks ---------------------------------------------------------------------------------------------------


def test_the_inferred_profile_is_editable_yaml_that_parses_back(fresh, saved):
    text = ev.infer_checks_yaml(fresh, saved)
    checks = ev.checks_from_yaml(text)
    types = [c.type for c in checks]
    assert "rouge-l" in types and "similarity" in types
    assert any("Answer:" in json.dumps(c.to_dict()) for c in checks)  # every reference opens with "Answer:"


def test_too_few_references_still_give_the_reference_checks(fresh, alpaca_file):
    rows = json.loads(alpaca_file.read_text())[:1]
    (fresh.workspace.datasets_dir / "one.json").write_text(json.dumps(rows), encoding="utf-8")
    text = ev.infer_checks_yaml(fresh, "dataset:one.json")
    assert text.startswith("# no style profile inferred")
    assert [c.type for c in ev.checks_from_yaml(text)] == ["rouge-l", "similarity"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- type: [unclosed", "not valid YAML at line 1"),
        ("- type: nope", r"checks\[0\] \(nope\)"),
        ("", "the checks editor is empty"),
        ("- type: starts-with", r"checks\[0\] \(starts-with\)"),
    ],
)
def test_bad_checks_yaml_names_the_line_or_entry(text, message):
    with pytest.raises(ValueError, match=message):
        ev.checks_from_yaml(text)


def test_a_checks_file_loads_into_the_editor(fresh, tmp_path):
    path = tmp_path / "checks.json"
    path.write_text(json.dumps([{"type": "word-count", "max_words": 40, "name": "short"}]), encoding="utf-8")
    loaded = yaml.safe_load(ev.load_checks_file(fresh, str(path)))
    assert loaded[0]["type"] == "word-count" and loaded[0]["name"] == "short"
    bad = tmp_path / "checks.txt"
    bad.write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match="not a supported checks file type"):
        ev.load_checks_file(fresh, str(bad))


# -- the config -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arms", "adapter", "index", "message"),
    [
        ([], None, None, "choose at least one arm"),
        (["ft"], None, None, "the fine-tuned arms need an adapter"),
        (["rag"], None, None, "the RAG arms need a knowledge base"),
        (["ft"], "deleted-run", None, "the adapter 'deleted-run' was deleted"),
    ],
)
def test_arms_without_what_they_need_say_what_to_do(fresh, saved, arms, adapter, index, message):
    with pytest.raises(ValueError, match=message):
        ev.build_eval_config(fresh, saved, arms, adapter, index, "", {})


def test_the_config_gets_the_settings_and_the_edited_checks(fresh, saved):
    checks = "- type: word-count\n  max_words: 40\n"
    config = ev.build_eval_config(
        fresh, saved, ["base"], None, None, checks, {"limit": 2.0, "forgetting": False}
    )
    assert (config.limit, config.forgetting, config.arms) == (2, False, "base")
    assert config.checks.startswith(str(fresh.workspace.evals_dir / "checks"))
    assert "word-count" in Path(config.checks).read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="max_new_tokens must be a positive integer"):
        ev.build_eval_config(fresh, saved, ["base"], None, None, "", {"max_new_tokens": 0})


def test_a_second_eval_waits_for_the_first(fresh, saved):
    release = threading.Event()
    fresh.jobs.start("eval", "eval of base on x", lambda job: release.wait(30))
    try:
        with pytest.raises(ValueError, match="eval of base on x is running: wait for it or cancel it"):
            ev.start_eval(fresh, saved, ["base"])
    finally:
        release.set()


def test_the_eval_lets_waiting_chats_use_the_model_between_batches():
    lock = threading.Lock()
    got = []
    lock.acquire()
    chat = threading.Thread(target=lambda: (lock.acquire(), got.append("chat"), lock.release()))
    chat.start()
    hook = ev._yield_between_batches(lock)
    for _ in range(40):  # one batch after another, as long as the chat still waits
        hook()
        if got:
            break
    assert got == ["chat"] and lock.locked()  # the chat answered in between, and the eval has the lock back
    lock.release()
    chat.join(5)


# -- a real run -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(services, alpaca_file, adapter_run, kb_name):
    """An eval run of base, fine-tuned and base+RAG on 2 examples, through the handler, finished."""
    shutil.copy(alpaca_file, services.workspace.datasets_dir / EVAL_SET)
    settings = {"limit": 2, "max_new_tokens": 8, "forgetting": False, "batch_examples": 2}
    attached_before = dict(services.lm().adapters)  # Compare keeps its adapters attached between questions
    job = ev.start_eval(
        services, f"dataset:{EVAL_SET}", ["base", "ft", "rag"], adapter_run, kb_name, "", settings
    )
    wait_for(lambda: not job.running)
    job.attached_before = attached_before
    return job


def test_an_eval_run_finishes_in_the_background_and_is_registered(services, finished):
    state = ev.eval_status(finished)
    assert state["status"] == "finished", finished.error
    assert (state["done"], state["total"]) == (2, 2) and state["decision"]
    assert "recommendation" in ev.status_text(finished)
    listed = {r["id"]: r for r in ev.eval_runs(services)}
    assert listed[state["eval_id"]]["arms"] == ARMS
    assert services.lm().adapters == finished.attached_before  # what the run attached is detached again


def test_results_table_charts_and_drilldown_of_a_run(services, finished):
    eval_id = ev.eval_status(finished)["eval_id"]
    frame, figure, picker, question, answers = tab.show_run(services, eval_id)
    assert frame["arm"].tolist() == ARMS
    assert {"score", "style", "content", "pass: rouge-l", "latency s"} <= set(frame.columns)
    assert figure is not None and len(figure.axes) == 2
    assert [value for _, value in picker.constructor_args["choices"]] == [0, 1]
    assert "Question number 0?" in question and "Answer: item 0 is fine" in question
    assert answers["arm"].tolist() == ARMS
    assert (
        answers["sources"].iloc[2] != "" and answers["sources"].iloc[0] == ""
    )  # only the RAG arm has sources
    assert tab.show_example(services, eval_id, 1)[0].startswith("**Question** (row 2)")


def test_a_page_reload_shows_the_finished_job(services, finished):
    text, timer, picker = tab.poll(services, None, None)  # a reloaded page has no job id in its state
    assert "finished" in text and timer.constructor_args["active"] is False
    assert picker.constructor_args["value"] is None  # the reloaded page keeps its own (empty) selection


def test_an_unknown_eval_run_says_so(services):
    with pytest.raises(ValueError, match="eval run 'nope' is gone"):
        tab.show_run(services, "nope")
