"""The workspace registry and atomic writes."""

from __future__ import annotations

import json
import os

import pytest

from common.atomic import atomic_dir, atomic_write_json, atomic_write_text, recover_dir
from common.workspace import ENV_VAR, Workspace, default_root


def test_workspace_creates_layout_and_registry(tmp_path):
    ws = Workspace(tmp_path / "w")
    for sub in ("models", "datasets", "runs", "indexes", "evals"):
        assert (ws.root / sub).is_dir()
    with ws.db() as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "indexes", "eval_runs", "comparisons", "votes"} <= tables


def test_run_rows_update_status_and_keep_config(tmp_path):
    ws = Workspace(tmp_path)
    ws.record_run("r1", tmp_path / "runs/r1", "running", model="m", config={"lr": 1e-4})
    ws.record_run("r1", tmp_path / "runs/r1", "failed", error="boom")
    row = ws.run("r1")
    assert row["status"] == "failed" and row["error"] == "boom"
    assert json.loads(row["config"]) == {"lr": 1e-4} and row["model"] == "m"
    with pytest.raises(Exception, match="CHECK constraint"):
        ws.record_run("r2", tmp_path, "exploded")


def test_index_rows_round_trip(tmp_path):
    ws = Workspace(tmp_path)
    ws.record_index("kb", tmp_path / "indexes/kb", "mini", 3, 10)
    ws.record_index("kb", tmp_path / "indexes/kb", "mini", 4, 12)
    assert [(r["name"], r["documents"], r["chunks"]) for r in ws.indexes()] == [("kb", 4, 12)]
    ws.remove_index("kb")
    assert ws.indexes() == []


@pytest.mark.parametrize(
    "env, space, expected",
    [({ENV_VAR: "/tmp/x"}, False, "/tmp/x"), ({}, False, "workspace")],
)
def test_default_root(monkeypatch, env, space, expected):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert str(default_root()) == expected


def test_atomic_write_replaces_whole_file(tmp_path):
    path = atomic_write_text(tmp_path / "a" / "f.txt", "one")
    atomic_write_json(path, {"two": 2})
    assert json.loads(path.read_text()) == {"two": 2}
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]  # no temp files left


def test_atomic_dir_keeps_old_folder_when_the_build_fails(tmp_path):
    target = tmp_path / "index"
    with atomic_dir(target) as tmp:
        (tmp / "v").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "v").write_text("2")
        raise RuntimeError("crash mid-build")
    assert (target / "v").read_text() == "1"
    assert sorted(os.listdir(tmp_path)) == ["index"]
    with atomic_dir(target) as tmp:
        (tmp / "v").write_text("3")
    assert (target / "v").read_text() == "3" and sorted(os.listdir(tmp_path)) == ["index"]


def test_a_swap_that_died_between_renames_is_recovered(tmp_path):
    target = tmp_path / "index"
    with atomic_dir(target) as tmp:
        (tmp / "v").write_text("1")
    os.replace(target, tmp_path / ".index.old")  # the crash: old moved aside, new not yet in place
    recover_dir(target)
    assert (target / "v").read_text() == "1"
    os.replace(target, tmp_path / ".index.old")
    with atomic_dir(target) as tmp:
        (tmp / "v").write_text("2")
    assert (target / "v").read_text() == "2" and sorted(os.listdir(tmp_path)) == ["index"]
