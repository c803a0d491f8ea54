"""Eval run over 4 arms: every arm in one mixed-adapter batch vs the same run arm by arm.

    python -m benchmarks.run evals_run        (or `make bench` for every area)

Both runs go through `evals.run.run_eval` with the same examples (the first alpaca_en_demo.json rows), the same
examples per batch, the same checks, a random LoRA adapter for the fine-tuned arms and a small knowledge base
of wiki_demo.txt articles for the RAG arms. "Multi-arm" puts B examples x 4 arms in each generate call;
"arm by arm" runs the eval once per arm, B examples x 1 arm per call. Greedy decoding, no forgetting check, no
report (both would add the same time to each side).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "llamafactory"
N_EXAMPLES = 4
BATCH = 4
MAX_NEW_TOKENS = 24
ROUNDS = 2
ARTICLES, ARTICLE_CHARS = 4, 6000
KINDS = ("base", "ft", "rag", "ft+rag")


def _inputs(root: Path, lm) -> tuple[Path, Path, Path]:
    """(eval file, adapter folder, docs folder) in `root`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    rows = json.loads((DATA / "alpaca_en_demo.json").read_text(encoding="utf-8"))[:N_EXAMPLES]
    data = root / "eval.json"
    data.write_text(json.dumps(rows), encoding="utf-8")
    docs = root / "docs"
    docs.mkdir()
    lines = (DATA / "wiki_demo.txt").read_text(encoding="utf-8").splitlines()[:ARTICLES]
    for i, line in enumerate(lines):
        (docs / f"article{i}.txt").write_text(line[:ARTICLE_CHARS], encoding="utf-8")
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(lm.folder)
    config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    adapter = root / "adapter"
    get_peft_model(base, config).save_pretrained(adapter)
    return data, adapter, docs


def _timed_runs(
    lm, kb, embedder, data: Path, adapter: Path, out: Path, arm_groups: list[str], by_context=False
):
    """Wall seconds and result records of one eval run per arm group."""
    from evals.run import EvalConfig, run_eval

    records, start = [], time.perf_counter()
    for arms in arm_groups:
        config = EvalConfig(
            data=str(data), arms=arms, adapters=[str(adapter)], out_dir=str(out / arms.replace(",", "_")),
            max_new_tokens=MAX_NEW_TOKENS, batch_examples=BATCH, forgetting=False, report=False,
            group_by_context=by_context,
        )  # fmt: skip
        result = run_eval(config, lm=lm, kb=kb, embedder=embedder)
        lines = (result.out_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()
        records += [json.loads(line) for line in lines]
    return time.perf_counter() - start, records


def _prefill_tokens(records, groups: list[tuple[str, ...]]) -> int:
    """Prompt tokens the model computes, padding included: per generate call, rows x its longest prompt."""
    total = 0
    for kinds in groups:
        calls: dict[int, list[int]] = {}
        for r in records:
            if r["kind"] in kinds:
                calls.setdefault(r["example"] // BATCH, []).append(r["prompt_tokens"])
        total += sum(len(lengths) * max(lengths) for lengths in calls.values())
    return total


def _compare(lm, kb, embedder, data, adapter, root: Path, kinds: tuple[str, ...]) -> dict:
    """Per mode: the fastest of ROUNDS wall times (modes alternate order each round: the machine is shared and
    its load drifts), records and prefill tokens; and how many multi-arm answers match arm by arm's."""
    rag = tuple(k for k in kinds if "rag" in k)
    modes = {"multi-arm batch": ([",".join(kinds)], False, [kinds])}
    if rag:
        plain = tuple(k for k in kinds if k not in rag)
        modes["multi-arm, RAG arms in a 2nd call"] = ([",".join(kinds)], True, [plain, rag])
    modes["arm by arm"] = (list(kinds), False, [(k,) for k in kinds])
    timed: dict[str, list] = {m: [] for m in modes}
    for round_ in range(ROUNDS):
        for m in list(modes)[:: 1 if round_ % 2 == 0 else -1]:
            groups, by_context, _ = modes[m]
            out = root / f"{m.replace(' ', '_').replace(',', '')}-{round_}"
            timed[m].append(_timed_runs(lm, kb, embedder, data, adapter, out, groups, by_context))
    results = {
        m: (min(t for t, _ in runs), runs[0][1], _prefill_tokens(runs[0][1], modes[m][2]))
        for m, runs in timed.items()
    }
    reference = {(r["example"], r["kind"]): r["answer"] for r in results["arm by arm"][1]}
    same = sum(reference.get((r["example"], r["kind"])) == r["answer"] for r in results["multi-arm batch"][1])
    return {"kinds": kinds, "modes": results, "same": same}


def run() -> str:
    from rag import Embedder, IndexConfig, KnowledgeBase, ReadOptions
    from tuner.generate import GenerationParams, generate
    from tuner.models import bitsandbytes_problem, load_model

    four_bit = bitsandbytes_problem() is None
    lm = load_model(four_bit=four_bit)
    embedder = Embedder.load()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data, adapter, docs = _inputs(root, lm)
        kb = KnowledgeBase.create(root / "index", embedder, IndexConfig())
        kb.add_paths([docs], ReadOptions())
        generate(lm, "Warm up.", params=GenerationParams(max_new_tokens=4))
        results = [_compare(lm, kb, embedder, data, adapter, root / "all", KINDS),
                   _compare(lm, kb, embedder, data, adapter, root / "plain", ("base", "ft"))]  # fmt: skip
        chunks = kb.stats()["chunks"]
    return _section(results, chunks, four_bit, str(next(lm.model.parameters()).device))


def _section(results: list[dict], chunks: int, four_bit: bool, device: str) -> str:
    lines = [
        "## Evals: eval run over 4 arms, multi-arm batch vs arm by arm",
        "",
        f"{N_EXAMPLES} alpaca_en_demo examples through `evals.run.run_eval`: base, fine-tuned (a random LoRA "
        f"adapter), base+RAG and fine-tuned+RAG (k=4 over a {chunks}-chunk index of {ARTICLES} wiki_demo.txt "
        f"articles); {BATCH} examples per batch, greedy, at most {MAX_NEW_TOKENS} new tokens, SmolLM2-135M-Instruct "
        f"{'4-bit NF4' if four_bit else 'full precision'} on {device}, scoring included. Multi-arm: {BATCH} "
        f"examples x all arms per generate call; arm by arm: one run per arm, {BATCH} examples x 1 arm per call. "
        "The middle row splits each batch in two calls (arms without retrieval, RAG arms: `--group-by-context`); the "
        f"last pair repeats the run without the RAG arms. Each time is the fastest of {ROUNDS} rounds (modes alternate "
        "order per round). Prefill tokens count what the model computes, "
        "padding included (rows x longest prompt, per call). Command: `python -m benchmarks.run evals_run`.",
        "",
        "| arms | mode | wall s | answer tokens | answer tokens/s | prefill tokens (with padding) | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        single_s = r["modes"]["arm by arm"][0]
        for label, (secs, recs, pre) in r["modes"].items():
            tokens = sum(x["completion_tokens"] for x in recs)
            ratio = f"**{single_s / secs:.2f}x**" if label != "arm by arm" else "1.00x"
            lines.append(
                f"| {', '.join(r['kinds'])} | {label} | {secs:.1f} | {tokens} | {tokens / secs:.1f} | {pre} | {ratio} |"
            )
    lines += ["", "Goal: >= 2x for the 4-arm run. " + "; ".join(
        f"{r['same']} of {len(r['modes']['arm by arm'][1])} multi-arm answers identical to arm by arm's ({', '.join(r['kinds'])})" for r in results
    ) + " (greedy; the others differ by batch-shape numerics in 4-bit matmuls)."]  # fmt: skip
    return "\n".join(lines) + "\n"
