"""Benchmark: how long a Compare request waits for the shared model while an eval run works in the background.

The Evaluate tab's job (`ui.evaluation.start_eval`) holds the generation lock one batch at a time and lets a
waiting chat in between batches. Measured side by side in one run, with the embedded model: a one-token chat
request when the model is idle, while such an eval runs, and while an eval holds the lock for its whole run (what
the job would do without the hand-over), plus the eval's own duration both ways (the cost of handing over).

    make bench        # or: python -m benchmarks.run ui_jobs
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = 8
SETTINGS = {"limit": EXAMPLES, "max_new_tokens": 24, "batch_examples": 2, "forgetting": False}
PROBES = 3


def _services(tmp: Path):
    from common.workspace import Workspace
    from tuner.models import load_model
    from ui.services import Services

    ws = Workspace(tmp / "ws")
    (ws.root / "models").rmdir()
    (ws.root / "models").symlink_to((ROOT / "workspace" / "models").resolve(), target_is_directory=True)
    rows = [
        {"instruction": f"Name one use of item {i}.", "input": "", "output": f"Item {i} is used for testing."}
        for i in range(EXAMPLES)
    ]
    (ws.datasets_dir / "bench.json").write_text(json.dumps(rows), encoding="utf-8")
    services = Services(ws)
    services.set_lm(load_model(models_dir=ws.models_dir))
    return services


def _chat_latency(services) -> float:
    """Seconds from asking for the model to a one-token answer (what a Compare click waits before streaming)."""
    from tuner.generate import GenerationParams, generate

    start = time.perf_counter()
    with services.generating() as lm:
        generate(lm, "Say hi.", params=GenerationParams(max_new_tokens=1))
    return time.perf_counter() - start


def _probe_during(services, job) -> list[float]:
    """Chat latencies measured while `job` runs (one probe per batch or so)."""
    while job.running and job.done == 0:
        time.sleep(0.1)
    waits = []
    while job.running and len(waits) < PROBES:
        waits.append(_chat_latency(services))
        time.sleep(0.5)
    return waits


def _whole_run_lock(services):
    """The same eval, holding the generation lock from start to end (no hand-over between batches)."""
    from evals.run import run_eval
    from ui.evaluation import build_eval_config

    config = build_eval_config(services, "dataset:bench.json", ["base"], None, None, "", SETTINGS)

    def work(job):
        with services.generation_lock:
            return run_eval(config, lm=services.lm(), embedder=services.embedder(), workspace=services.workspace,
                            progress=job.progress)  # fmt: skip

    return services.jobs.start("eval", "eval holding the lock", work)


def _timed(services, start_job) -> tuple[list[float], float]:
    began = time.perf_counter()
    job = start_job()
    waits = _probe_during(services, job)
    while job.running:
        time.sleep(0.1)
    if job.status != "finished":
        raise RuntimeError(f"eval failed: {job.error}")
    return waits, time.perf_counter() - began


def run() -> str:
    from ui.evaluation import start_eval

    with tempfile.TemporaryDirectory() as tmp:
        services = _services(Path(tmp))
        services.embedder()
        _chat_latency(services)  # warm-up
        idle = statistics.median(_chat_latency(services) for _ in range(PROBES))
        yielding, eval_yield = _timed(
            services, lambda: start_eval(services, "dataset:bench.json", ["base"], settings=SETTINGS)
        )
        holding, eval_hold = _timed(services, lambda: _whole_run_lock(services))
    med_yield = statistics.median(yielding)
    held = holding[0] if holding else float("nan")
    return f"""## UI jobs: Compare while an eval runs

A one-token chat request through the shared model's lock (what a Compare click waits before its first token),
with the model idle, during an eval run that hands the lock over between batches (the Evaluate tab), and during
the same eval holding the lock for its whole run. Eval: {EXAMPLES} examples, base arm, {SETTINGS["batch_examples"]}
examples per batch, {SETTINGS["max_new_tokens"]} new tokens, embedded SmolLM2-135M in 4-bit on CPU. Medians of
{PROBES} probes; the probe during the whole-run lock waits for the eval's end, so only its first probe counts.

Command: `make bench` or `python -m benchmarks.run ui_jobs`

| | chat latency (s) | vs idle | eval duration (s) |
|---|---:|---:|---:|
| model idle | {idle:.2f} | 1.0x | - |
| eval hands the lock over per batch | {med_yield:.2f} | {med_yield / idle:.1f}x | {eval_yield:.1f} |
| eval holds the lock for the whole run | {held:.2f} | {held / idle:.1f}x | {eval_hold:.1f} |

Handing over makes the eval take {eval_yield / eval_hold:.2f}x as long as with the lock held throughout (the
chats' own generation is in it); a chat waits about one batch instead of the rest of the run.
"""
