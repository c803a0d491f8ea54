"""Eval runs with the embedded model: arms in mixed batches, files written, bad arms named, partial results kept."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from evals.items import load_items
from evals.run import EvalConfig, run_eval

EXPECTED_FILES = {
    "run.json", "results.jsonl", "forgetting.jsonl", "results.csv", "summary.json", "report.html", "report.json",
}  # fmt: skip
EXAMPLES = [
    {"instruction": "Name a volcano in Sicily.", "output": "Mount Etna is an active volcano in Sicily."},
    {
        "instruction": "How long should bread dough be kneaded?",
        "output": "Knead the dough for about ten minutes.",
    },
    {"instruction": "What is the capital of France?", "output": "The capital of France is Paris."},
]
GENERAL = [
    {"id": "capital-france", "category": "capitals", "prompt": "What is the capital of France?", "expected": ["Paris"]},
    {"id": "add", "category": "arithmetic", "prompt": "What is 2 + 2? Answer with a number.", "expected": ["4"]},
]  # fmt: skip


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("eval_files")
    docs = root / "docs"
    docs.mkdir()
    (docs / "volcano.txt").write_text("Mount Etna in Sicily is one of the most active volcanoes in Europe.")
    (docs / "bread.txt").write_text("Knead the dough for ten minutes until it is elastic, then let it rise.")
    return SimpleNamespace(
        root=root,
        docs=docs,
        data=_jsonl(root / "eval.jsonl", EXAMPLES),
        general=_jsonl(root / "general.jsonl", GENERAL),
    )


@pytest.fixture(scope="module")
def embedder():
    from rag import Embedder

    return Embedder.load()


@pytest.fixture(scope="module")
def index_dir(files, embedder) -> Path:
    """A tiny knowledge base built from two text files."""
    from rag import IndexConfig, KnowledgeBase

    kb = KnowledgeBase.create(files.root / "index", embedder, IndexConfig(chunk_size=64, overlap=16))
    report = kb.add_paths([files.docs])
    assert report.errors == [] and len(report.added) == 2
    return kb.path


@pytest.fixture(scope="module")
def adapter_dir(lm, tmp_path_factory) -> Path:
    """A LoRA adapter with random (non-zero) weights, made on a full-precision copy of the base model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(lm.folder)
    config = LoraConfig(r=8, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    folder = tmp_path_factory.mktemp("adapter")
    get_peft_model(base, config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def finished(lm, files, index_dir, adapter_dir, embedder, tmp_path_factory) -> SimpleNamespace:
    """One eval run over base, fine-tuned and base+RAG, with the forgetting check; batch sizes recorded."""
    import tuner.generate
    from common.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("ws"))
    out = tmp_path_factory.mktemp("run") / "out"
    config = EvalConfig(
        data=str(files.data), arms="base,ft,rag", adapters=[str(adapter_dir)], index=str(index_dir), out_dir=str(out),
        max_new_tokens=8, batch_examples=2, forgetting_set=str(files.general), forgetting_max_new_tokens=6,
        group_by_context=False,
    )  # fmt: skip
    batches, calls = [], []
    real = tuner.generate.stream_arms

    def spy(lm_, requests, params=None):
        batches.append([r.adapter for r in requests])
        return real(lm_, requests, params)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tuner.generate, "stream_arms", spy)
        result = run_eval(config, lm=lm, embedder=embedder, workspace=ws, progress=lambda *a: calls.append(a))
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return SimpleNamespace(result=result, out=out, ws=ws, batches=batches, calls=calls, records=records)


def test_run_writes_exactly_the_expected_files(finished):
    assert {p.name for p in finished.out.iterdir()} == EXPECTED_FILES
    assert finished.result.status == "finished" and finished.result.problems == []


def test_every_example_runs_every_arm_in_one_batch(finished):
    # 2 examples x 3 arms, then 1 x 3, then the 2 general questions x (base, fine-tuned)
    assert [len(b) for b in finished.batches] == [6, 3, 4]
    adapter = Path(finished.result.summary["arms"][1]["adapter"] or "").name
    assert finished.batches[0] == [None, adapter, None] * 2
    assert {(r["example"], r["arm"]) for r in finished.records} == {
        (e, a) for e in range(3) for a in ("base", f"fine-tuned ({adapter})", "base+RAG")
    }


def test_records_hold_scores_latency_and_tokens(finished):
    checks = [c["name"] for c in json.loads((finished.out / "run.json").read_text())["checks"]]
    assert "rouge-l" in checks and "similarity" in checks
    for r in finished.records:
        assert list(r["scores"]) == checks
        assert r["latency_s"] > 0 and 0 < r["completion_tokens"] <= 8 and r["prompt_tokens"] > 0
        assert r["weighted"] is not None and 0 <= r["weighted"] <= 1


def test_rag_arm_pays_for_its_context_in_prompt_tokens(finished):
    by = {(r["example"], r["kind"]): r for r in finished.records}
    for e in range(3):
        assert by[(e, "rag")]["prompt_tokens"] > by[(e, "base")]["prompt_tokens"] + 10
        assert by[(e, "rag")]["sources"] and by[(e, "base")]["sources"] == []
    summary = finished.result.summary
    assert summary["per_arm"]["base+RAG"]["prompt_tokens"] > summary["per_arm"]["base"]["prompt_tokens"]


def test_fine_tuned_arm_answers_with_its_adapter(finished):
    by = {(r["example"], r["kind"]): r["answer"] for r in finished.records}
    assert any(by[(e, "ft")] != by[(e, "base")] for e in range(3))  # random LoRA weights change the answers


def test_forgetting_runs_on_base_and_fine_tuned(finished):
    forgetting = finished.result.summary["forgetting"]
    assert forgetting["questions"] == 2
    assert [a["arm"] for a in forgetting["arms"]] == ["base", finished.result.summary["arms"][1]["name"]]
    assert forgetting["arms"][1]["drop"] is not None


def test_run_leaves_the_model_as_it_found_it(finished, lm):
    assert lm.adapters == {}


def test_summary_report_registry_and_progress_agree(finished):
    summary = json.loads((finished.out / "summary.json").read_text())
    assert set(summary["per_arm"]) == {r["arm"] for r in finished.records}
    assert summary["recommendation"]["decision"] in {"fine-tune", "RAG", "both", "neither"}
    page = (finished.out / "report.html").read_text()
    assert all(arm in page for arm in summary["per_arm"]) and summary["recommendation"]["headline"] in page
    with sqlite3.connect(finished.ws.db_path) as con:
        status, arms, brief = con.execute("SELECT status, arms, summary FROM eval_runs").fetchone()
    assert status == "finished" and json.loads(arms) == list(summary["per_arm"])
    assert json.loads(brief)["decision"] == summary["recommendation"]["decision"]
    assert finished.calls[-1][:2] == (5, 5)  # 3 examples + 2 general questions


def test_missing_adapter_and_index_are_named_and_base_still_runs(lm, files, embedder, tmp_path):
    config = EvalConfig(
        data=str(files.data), arms="base,ft,rag", adapters=[str(tmp_path / "no-adapter")], index=str(tmp_path / "no-index"),
        out_dir=str(tmp_path / "out"), limit=1, max_new_tokens=4, forgetting=False,
    )  # fmt: skip
    result = run_eval(config, lm=lm, embedder=embedder)
    problems = " | ".join(result.problems)
    assert "no-adapter" in problems and "no-index" in problems and "base+RAG" in problems
    assert list(result.summary["per_arm"]) == ["base"] and result.summary["per_arm"]["base"]["answers"] == 1
    assert "no-index" in (tmp_path / "out" / "report.html").read_text()


def test_finished_batches_survive_a_crash_and_the_report_rebuilds(
    lm, files, embedder, tmp_path, monkeypatch, capsys
):
    import evals.run
    from evals.__main__ import main

    real, calls = evals.run.run_batch, []

    def crash_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    monkeypatch.setattr(evals.run, "run_batch", crash_on_second)
    from common.workspace import Workspace

    ws, out = Workspace(tmp_path / "ws"), tmp_path / "out"
    config = EvalConfig(
        data=str(files.data), arms="base", out_dir=str(out), batch_examples=1, max_new_tokens=4
    )
    with pytest.raises(RuntimeError, match="power cut"):
        run_eval(config, lm=lm, embedder=embedder, workspace=ws)
    assert len((out / "results.jsonl").read_text().splitlines()) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["examples_done"] == 1 and "power cut" in summary["error"]
    assert ws.db_path.exists() and sqlite3.connect(ws.db_path).execute(
        "SELECT status FROM eval_runs"
    ).fetchone() == ("failed",)
    assert main(["report", str(out)]) == 0
    assert "failed" in (out / "report.html").read_text() and "1 examples" in capsys.readouterr().out


def test_cancel_stops_after_the_batch_in_flight(lm, files, embedder, tmp_path):
    cancel = threading.Event()
    config = EvalConfig(
        data=str(files.data), arms="base", out_dir=str(tmp_path), batch_examples=1, max_new_tokens=4
    )
    result = run_eval(config, lm=lm, embedder=embedder, progress=lambda *a: cancel.set(), cancel=cancel)
    assert result.status == "cancelled" and result.summary["examples_done"] == 1
    assert (tmp_path / "report.html").is_file()


def test_group_by_context_gives_rag_arms_their_own_call(
    lm, files, index_dir, embedder, tmp_path, monkeypatch
):
    import tuner.generate

    real, sizes = tuner.generate.stream_arms, []

    def spy(lm_, requests, params=None):
        sizes.append(len(requests))
        return real(lm_, requests, params)

    monkeypatch.setattr(tuner.generate, "stream_arms", spy)
    config = EvalConfig(
        data=str(files.data), arms="base,rag", index=str(index_dir), out_dir=str(tmp_path), limit=2, max_new_tokens=4,
        group_by_context=True,
    )  # fmt: skip
    result = run_eval(config, lm=lm, embedder=embedder)
    assert sizes == [2, 2]  # 2 examples: base rows in one call, base+RAG rows in the other
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [(r["example"], r["kind"]) for r in records] == [(0, "base"), (0, "rag"), (1, "base"), (1, "rag")]
    assert all(r["prompt_tokens"] > 60 for r in records if r["kind"] == "rag")
    assert result.summary["per_arm"]["base+RAG"]["answers"] == 2


def test_cli_run_shows_the_recommendation(lm, files, index_dir, embedder, tmp_path, monkeypatch, capsys):
    import rag
    import tuner.models
    from evals.__main__ import main

    monkeypatch.setattr(tuner.models, "load_model", lambda *a, **k: lm)
    monkeypatch.setattr(rag.Embedder, "load", staticmethod(lambda *a, **k: embedder))
    argv = ["run", "--data", str(files.data), "--arms", "base,rag", "--index", str(index_dir), "--out",
            str(tmp_path / "out"), "--limit", "1", "--max-new-tokens", "4", "--workspace", str(tmp_path / "ws")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "recommendation: " in out.out and (tmp_path / "out" / "report.html").is_file()
    assert main(argv) == 2 and "already holds an eval run" in capsys.readouterr().err


# -- bad input (no generation) --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arms": "base,oracle"}, "unknown arm 'oracle'"),
        ({"arms": ""}, "no arms given"),
        ({"max_new_tokens": 0}, "max_new_tokens must be a positive integer, got 0"),
        ({"batch_examples": -1}, "batch_examples must be a positive integer, got -1"),
        ({"limit": 0}, "limit must be a positive integer, got 0"),
        ({"temperature": 9.0}, "temperature must be between 0 and 5, got 9.0"),
        ({"adapters": "run1"}, "adapters must be a list"),
        ({"data": " "}, "data must be a dataset file"),
        ({"group_by_context": "yes"}, "group_by_context must be true or false, got 'yes'"),
    ],
)
def test_bad_config_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EvalConfig(**{"data": "eval.jsonl", **kwargs})


@pytest.fixture
def stand_in_lm():
    """Enough of a loaded model for runs that fail before generating."""
    return SimpleNamespace(adapters={})


def _fail(config: EvalConfig, stand_in_lm, **kwargs):
    return run_eval(config, lm=stand_in_lm, embedder=lambda texts: [[1.0]] * len(texts), **kwargs)


def test_empty_eval_split_is_a_clear_error(tmp_path, stand_in_lm):
    run = tmp_path / "run"
    run.mkdir()
    _jsonl(
        run / "data.jsonl", [{"split": "train", "row": 1, "messages": [{"role": "user", "content": "hi"}]}]
    )
    with pytest.raises(ValueError, match="the eval set is empty"):
        _fail(EvalConfig(data=str(run), out_dir=str(tmp_path / "out")), stand_in_lm)


def test_missing_data_and_bad_checks_are_named(tmp_path, files, stand_in_lm):
    with pytest.raises(ValueError, match="does not exist"):
        _fail(EvalConfig(data=str(tmp_path / "nope.jsonl"), out_dir=str(tmp_path)), stand_in_lm)
    checks = tmp_path / "checks.yaml"
    checks.write_text("- type: is-json\n- type: regex\n  value: '('\n")
    with pytest.raises(ValueError, match=r"checks.yaml\[1\] \(regex\)"):
        _fail(
            EvalConfig(data=str(files.data), arms="base", checks=str(checks), out_dir=str(tmp_path)),
            stand_in_lm,
        )


def test_output_folder_needs_out_dir_or_workspace(files, stand_in_lm):
    with pytest.raises(ValueError, match="out_dir is not set"):
        _fail(EvalConfig(data=str(files.data), arms="base"), stand_in_lm)


# -- eval items -------------------------------------------------------------------------------------------------


def test_training_run_folder_gives_its_saved_eval_split(tmp_path):
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Capital of Peru?"},
            {"role": "assistant", "content": "Lima."}]  # fmt: skip
    _jsonl(tmp_path / "data.jsonl", [
        {"split": "train", "row": 1, "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
        {"split": "eval", "row": 2, "messages": chat},
    ])  # fmt: skip
    items, note = load_items(tmp_path)
    assert len(items) == 1 and "saved by training run" in note
    item = items[0]
    assert (item.row, item.question, item.reference, item.system) == (
        2,
        "Capital of Peru?",
        "Lima.",
        "Be brief.",
    )
    assert [m["content"] for m in item.history] == ["Hi", "Hello"]


def test_training_run_without_saved_split_recomputes_it(tmp_path, files):
    from tuner.data import load_dataset, split_examples

    (tmp_path / "train_config.json").write_text(
        json.dumps({"run_id": "r", "config": {"data": str(files.data), "eval_fraction": 0.34, "seed": 7}})
    )
    items, note = load_items(tmp_path)
    _, expected = split_examples(load_dataset(files.data).examples, 0.34, 7)
    assert [it.row for it in items] == [e.row for e in expected] and "recomputed" in note


def test_limit_and_default_system_prompt(files):
    items, _ = load_items(files.data, limit=2, system="Answer in one sentence.")
    assert len(items) == 2 and all(it.system == "Answer in one sentence." for it in items)


def test_training_run_folder_is_the_default_adapter_for_fine_tuned_arms(tmp_path):
    from evals.items import run_dir_adapter

    assert run_dir_adapter(tmp_path, "base,ft") == []  # no adapter saved yet
    (tmp_path / "adapter_config.json").write_text("{}")
    assert run_dir_adapter(tmp_path, "base,ft") == [str(tmp_path)]
    assert run_dir_adapter(tmp_path, "base,rag") == []  # no fine-tuned arm asked for
