"""The same training entry point under `torchrun --nproc_per_node 2` (DDP over gloo on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_two_processes_train_one_adapter(tmp_path, workspace):
    data = tmp_path / "chats.jsonl"
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Say {i}"},
                {"role": "assistant", "content": f"{i} it is."},
            ]
        }
        for i in range(12)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "0"),
        *("-m", "tuner.train", str(data), "--output", str(out), "--workspace", str(workspace.root)),
        *("--max-steps", "2", "--batch-size", "2", "--max-seq-len", "64", "--eval-fraction", "0"),
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished"
    ranks = run["result"]["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["steps"] == 2 and r["tokens"] > 0 for r in ranks)
    assert sorted(p.name for p in out.glob("adapter_*")) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert not list(out.glob(".adapter.*"))
    (row,) = workspace.runs()
    assert row["status"] == "finished"
