"""The app's responsiveness: `python -m benchmarks.run app` (part of `make bench`).

1. Time to first streamed token in Compare: the Compare handler (retrieval, arm set-up and the first decoding
   step of ONE batch) with 4 arms (base, fine-tuned, base+RAG, fine-tuned+RAG) against 1 arm (base) and against
   the slowest single arm (fine-tuned+RAG alone, the longest prompt). Alternating runs, median of each.
2. Cold start: `python app.py` in a fresh process until its first page is served over HTTP.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIKI = ROOT.parent / "shared" / "data" / "llamafactory" / "wiki_demo.txt"
QUESTION = "What is anarchism and where did the word come from?"
REPEATS = 5
COLD_STARTS = 2
GOAL_RATIO, GOAL_COLD_S = 1.3, 20.0


def _services(folder: Path):
    """Services on a temp workspace (sharing the repo's converted-model cache) with an adapter run and an index."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from common.workspace import Workspace
    from rag import IndexConfig
    from ui.services import Services

    ws = Workspace(folder / "ws")
    (ws.root / "models").rmdir()
    cache = ROOT / "workspace" / "models"
    cache.mkdir(parents=True, exist_ok=True)
    (ws.root / "models").symlink_to(cache, target_is_directory=True)
    services = Services(ws)
    lm = services.lm()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(lm.model.config)
    config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(ws.runs_dir / "bench")
    ws.record_run("bench", ws.runs_dir / "bench", "finished")
    doc = folder / "wiki.txt"
    doc.write_text(
        WIKI.read_text(encoding="utf-8")[:200_000] if WIKI.is_file() else QUESTION * 50, encoding="utf-8"
    )
    services.kb("wiki", IndexConfig(), create=True).add_paths([doc])
    return services


def _first_token_seconds(services, kinds: list[str]) -> float:
    from ui.helpers import bind
    from ui.tabs.compare import compare

    start = time.perf_counter()
    stream = bind(compare, services)(QUESTION, kinds, "bench", "wiki", "", 16, 0.0, 1.0, 1.0, "", None)
    next(stream)
    elapsed = time.perf_counter() - start
    for _ in stream:  # finish the batch so the next run starts on an idle model
        pass
    return elapsed


def time_to_first_token(services) -> dict[str, float]:
    setups = {
        "1 arm (base)": ["base"],
        "2 arms (base, fine-tuned)": ["base", "ft"],
        "1 arm (fine-tuned+RAG)": ["ft+rag"],
        "4 arms": ["base", "ft", "rag", "ft+rag"],
    }
    for kinds in setups.values():
        _first_token_seconds(services, kinds)  # warm-up: adapter attach, index load, kernels
    times: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(REPEATS):
        for name, kinds in setups.items():
            times[name].append(_first_token_seconds(services, kinds))
    return {name: statistics.median(t) for name, t in times.items()}


def cold_start_seconds(folder: Path) -> float:
    """Seconds from starting `python app.py` until GET / answers 200."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "app.py", "--port", str(port), "--workspace", str(folder / "cold")]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < 120:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("app.py served no page within 120 s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        colds = [cold_start_seconds(Path(tmp) / str(i)) for i in range(COLD_STARTS)]
        ttft = time_to_first_token(_services(Path(tmp)))
    base, two, slowest, four = (
        ttft[k] for k in ("1 arm (base)", "2 arms (base, fine-tuned)", "1 arm (fine-tuned+RAG)", "4 arms")
    )
    cold = statistics.median(colds)
    lines = [
        "## App: time to first token in Compare, cold start",
        "",
        "Time from asking in Compare (the handler: retrieval, arm set-up, first decoding step of one batch) to the "
        f"first streamed token, median of {REPEATS} alternating runs (16 new tokens, greedy, embedded "
        "SmolLM2-135M in 4-bit, a random LoRA adapter, a wiki index); and `python app.py` in a fresh process until "
        "its first page is served. Command: `make bench` or `python -m benchmarks.run app`.",
        "",
        "| measure | seconds | ratio | goal |",
        "|---|---|---|---|",
        f"| first token, 1 arm (base) | {base:.3f} | 1.00 | |",
        f"| first token, 2 arms (base, fine-tuned) in one batch | {two:.3f} | {two / base:.2f} | |",
        f"| first token, 1 arm (fine-tuned+RAG) | {slowest:.3f} | {slowest / base:.2f} | |",
        f"| first token, 4 arms in one batch | {four:.3f} | {four / base:.2f} | <= {GOAL_RATIO} x 1 arm |",
        f"| 4 arms vs slowest single arm | | {four / slowest:.2f} | |",
        f"| cold start to first page (runs: {', '.join(f'{c:.1f}' for c in colds)}) | {cold:.1f} | | "
        f"<= {GOAL_COLD_S:g} s |",
        "",
        "The RAG arms' prompts carry the retrieved sources (about a thousand tokens here), and a batch is padded "
        "to its longest prompt, so on a CPU, where prefill is compute-bound, a 4-arm batch costs about 4 long "
        "prefills: compare it with the slowest single arm. Arms with prompts of equal length (base and "
        "fine-tuned) show what batching itself costs.",
        "",
    ]
    return "\n".join(lines)
