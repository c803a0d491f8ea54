"""The same `python -m tuner.train` entry point under `torchrun` and `accelerate launch`: 2 CPU processes, gloo.

Each run trains 2 steps on a few persona rows of identity.json and must leave one run directory with one adapter,
written by rank 0, while run.json shows that both ranks trained on their own share of the batches.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tuner.train import ADAPTER_FILES

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 240
TRAIN_ARGS = ("--max-steps", "2", "--batch-size", "2", "--max-seq-len", "64", "--eval-fraction", "0.2")

# Rank 1 sleeps before training, so rank 0 has long finished loading and validating the data: the folder check
# of a late rank must not mistake rank 0's fresh files for another run.
LATE_RANK_1 = (
    "import os, sys, time; time.sleep(8 * int(os.environ['RANK'])); "
    "from tuner.train import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.fixture
def persona_rows(tmp_path, shared_data) -> Path:
    rows = json.loads((shared_data / "llamafactory" / "identity.json").read_text(encoding="utf-8"))[:10]
    text = json.dumps(rows).replace("{{name}}", "Orbit").replace("{{author}}", "Acme Labs")
    path = tmp_path / "identity10.json"
    path.write_text(text, encoding="utf-8")
    return path


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _launch(launcher: list[str], program: list[str], data: Path, workspace, out: Path | None):
    args = [str(data), "--workspace", str(workspace.root), *TRAIN_ARGS]
    if out is not None:
        args += ["--output", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [*launcher, *program, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def _check_one_run_by_two_ranks(workspace, run_dir: Path) -> None:
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "finished"
    ranks = run["result"]["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["steps"] == 2 and r["tokens"] > 0 for r in ranks)
    assert sorted(p.name for p in run_dir.glob("adapter_*")) == sorted(ADAPTER_FILES)
    assert not list(run_dir.glob(".adapter.*"))
    assert [
        e["step"] for e in map(json.loads, (run_dir / "metrics.jsonl").open()) if e["kind"] == "step"
    ] == [
        1,
        2,
    ]  # one line per step: only rank 0 logs
    (row,) = workspace.runs()
    assert row["status"] == "finished"
    assert row["id"] == run["run_id"]


def test_torchrun_two_processes_train_one_adapter(tokenizer, workspace, persona_rows):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    done = _launch(torchrun, ["-m", "tuner.train"], persona_rows, workspace, out=None)
    (run_dir,) = Path(workspace.runs_dir).iterdir()  # both ranks agreed on the run id, so on the folder
    _check_one_run_by_two_ranks(workspace, run_dir)
    assert done.stdout.count("finished: step 2/2") == 1  # rank 0 alone reports


@pytest.mark.slow
def test_a_late_rank_does_not_take_rank_0s_files_for_another_run(
    tokenizer, workspace, persona_rows, tmp_path
):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    program = ["--no-python", sys.executable, "-c", LATE_RANK_1]
    _launch(torchrun, program, persona_rows, workspace, out=tmp_path / "run")
    _check_one_run_by_two_ranks(workspace, tmp_path / "run")


@pytest.mark.slow
def test_accelerate_launch_two_processes_train_one_adapter(tokenizer, workspace, persona_rows, tmp_path):
    # --multi_gpu asks for the torchrun launcher; without CUDA the processes meet over gloo ("--cpu" runs one)
    accelerate = [
        *(sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"),
        *("--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"),
        *("--main_process_port", _free_port()),
    ]
    _launch(accelerate, ["-m", "tuner.train"], persona_rows, workspace, out=tmp_path / "run")
    _check_one_run_by_two_ranks(workspace, tmp_path / "run")


def test_master_port_0_is_refused_instead_of_hanging(monkeypatch):
    from tuner import sft

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("MASTER_PORT", "0")
    with pytest.raises(ValueError, match="MASTER_PORT is 0.*--standalone"):
        sft.init_distributed()
