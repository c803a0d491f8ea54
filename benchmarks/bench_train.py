"""Training benchmarks: QLoRA throughput (ours vs TRL SFTTrainer defaults vs padding to max_seq_len), peak memory of
QLoRA vs LoRA on the unquantized model, and an MFU-style figure.

Throughput is real (non-padding) tokens per second through `training_step`, timed from the end of the first
(warm-up) optimizer step to the end of the last; the variants take turns round by round so the shared machine's
load falls on all of them alike. Memory is the peak resident set of a fresh process per variant while it trains
(the peak is reset after loading, through /proc/self/clear_refs).

    python -m benchmarks.run train          # (the memory subprocesses run `python -m benchmarks.bench_train`)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "llamafactory" / "alpaca_en_demo.json"
ROWS = 320  # examples given to every variant (tokenizing all 999 for TRL would dominate the bench)
BATCH = 8
MAX_SEQ_LEN = 256
STEPS = 2  # timed optimizer steps per variant, after one warm-up step; the variants take turns step by step
MEMORY_STEPS = 1
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": "all-linear"}


class Turns:
    """Makes trainers running in threads take optimizer steps in turn, and times each step's own work.

    Every trainer waits at `on_train_begin` until all are set up, then waits for its turn before each step and
    hands the turn on after it; so only one step runs at a time and the variants share the machine's load alike.
    Real tokens are counted as each batch enters `training_step`.
    """

    def __init__(self, names: list[str]) -> None:
        import threading

        self.names = names
        self.holder = names[0]
        self.done: set[str] = set()
        self.ready = threading.Barrier(len(names))
        self.cond = threading.Condition()
        self.steps: dict[str, list[tuple[float, int]]] = {name: [] for name in names}  # (seconds, tokens)

    def attach(self, name: str, trainer) -> None:
        from transformers import TrainerCallback

        turns, step, seen = self, trainer.training_step, [0, 0.0]

        def counted(model, inputs, num_items_in_batch=None):
            mask = inputs.get("attention_mask")
            seen[0] += int(mask.sum()) if mask is not None else int(inputs["input_ids"].numel())
            return step(model, inputs, num_items_in_batch)

        class Turn(TrainerCallback):
            def on_train_begin(self, args, state, control, **kw):
                turns.ready.wait()

            def on_step_begin(self, args, state, control, **kw):
                with turns.cond:
                    turns.cond.wait_for(lambda: turns.holder == name)
                seen[0], seen[1] = 0, time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                turns.steps[name].append((time.perf_counter() - seen[1], seen[0]))
                turns.pass_on(name)

            def on_train_end(self, args, state, control, **kw):
                turns.done.add(name)
                turns.pass_on(name)

        trainer.training_step = counted
        trainer.add_callback(Turn())

    def pass_on(self, name: str) -> None:
        """The next trainer still training after `name` gets the turn."""
        with self.cond:
            if self.holder != name:
                return
            i = self.names.index(name)
            after = self.names[i + 1 :] + self.names[: i + 1]
            self.holder = next((n for n in after if n not in self.done), "")
            self.cond.notify_all()

    def run(self, trainers: dict) -> dict[str, list[float]]:
        """Train them all (each in a thread); tokens/s of every step after the first (a warm-up) per trainer."""
        import threading

        errors = []

        def train(name, trainer):
            try:
                trainer.train()
            except BaseException as e:  # re-raised below, in the caller's thread
                errors.append(e)
                self.ready.abort()
                self.done.add(name)
                self.pass_on(name)

        threads = [threading.Thread(target=train, args=item) for item in trainers.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return {name: [n / s for s, n in steps[1:]] for name, steps in self.steps.items()}


# -- the variants ---------------------------------------------------------------------------------------------


def _examples():
    from tuner.data import load_dataset

    return load_dataset(str(DATA)).examples[:ROWS]


def _config(batching: str, four_bit: bool = True, steps: int | None = None, checkpointing: bool = False):
    from tuner.train import TrainConfig

    return TrainConfig(
        max_steps=steps or STEPS + 1,
        batch_size=BATCH,
        max_seq_len=MAX_SEQ_LEN,
        eval_fraction=0.0,
        batching=batching,
        four_bit=four_bit,
        gradient_checkpointing=checkpointing,
        save_every=100_000,
        lora_r=LORA["r"],
        lora_alpha=LORA["lora_alpha"],
        lora_dropout=LORA["lora_dropout"],
    )


def _ours(model, tokenizer, items, batching: str, out: Path):
    """Our trainer (tuner.sft) over pre-tokenized items in a batching mode: grouped, or max_length padding."""
    from transformers import TrainerCallback

    from tuner import sft
    from tuner.batching import TokenCounter

    config = _config(batching)
    args = sft.training_arguments(config, out / batching, config.max_steps, has_eval=False)
    return sft.build_trainer(model, tokenizer, config, args, items, [], TrainerCallback(), TokenCounter())


def _trl(models_dir: Path, examples, out: Path):
    """TRL's SFTTrainer with its defaults, given the same 4-bit base, LoRA config, examples, batch and length."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from tuner.models import load_model

    lm = load_model(models_dir=models_dir)
    args = SFTConfig(
        output_dir=str(out / "trl"),
        max_steps=STEPS + 1,
        per_device_train_batch_size=BATCH,
        max_length=MAX_SEQ_LEN,
        learning_rate=2e-4,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=42,
        use_cpu=not torch.cuda.is_available(),  # TRL's bf16 default refuses a CPU unless told
    )
    data = Dataset.from_list([{"messages": ex.messages} for ex in examples])
    return SFTTrainer(
        model=lm.model,
        args=args,
        train_dataset=data,
        processing_class=lm.tokenizer,
        peft_config=LoraConfig(task_type="CAUSAL_LM", **LORA),
    )


def _peak_matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    """The best fp32 FLOP/s of a big square matmul on this machine (what 100% utilisation would mean)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def _throughput(models_dir: Path, out: Path) -> dict:
    from tuner import sft
    from tuner.batching import padding_fraction, tokenize_examples

    examples = _examples()
    model, lm = sft.load_lora_model(_config("grouped"), models_dir)
    items, _ = tokenize_examples(lm.tokenizer, examples, MAX_SEQ_LEN)
    trainers = {
        "ours": _ours(model, lm.tokenizer, items, "grouped", out),
        "trl": _trl(models_dir, examples, out),
        "max_length": _ours(model, lm.tokenizer, items, "max_length", out),
    }
    turns = Turns(list(trainers))
    for name, trainer in trainers.items():
        turns.attach(name, trainer)
    rates = turns.run(trainers)
    lengths = [len(x.input_ids) for x in items]
    _, params = model.get_nb_trainable_parameters()
    return {
        "rates": rates,
        "params": params,
        "mean_length": statistics.mean(lengths),
        "padding": {m: padding_fraction(lengths, BATCH, m, MAX_SEQ_LEN) for m in ("grouped", "max_length")},
    }


# -- memory: one fresh process per variant ----------------------------------------------------------------------


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_memory(four_bit: bool, checkpointing: bool) -> dict:
    """In this process: load the model, reset the peak RSS, train MEMORY_STEPS max_length batches; peaks in MiB."""
    import torch
    from transformers import TrainerCallback

    from common.workspace import Workspace
    from tuner import sft
    from tuner.batching import TokenCounter, tokenize_examples

    torch.manual_seed(0)
    baseline = _rss_kib("VmRSS")
    config = _config("max_length", four_bit, MEMORY_STEPS, checkpointing)
    model, lm = sft.load_lora_model(config, Workspace().models_dir)
    items, _ = tokenize_examples(lm.tokenizer, _examples(), MAX_SEQ_LEN)
    loaded = _rss_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) restarts from the current RSS
    with tempfile.TemporaryDirectory() as tmp:
        args = sft.training_arguments(config, Path(tmp), MEMORY_STEPS, has_eval=False)
        trainer = sft.build_trainer(
            model, lm.tokenizer, config, args, items, [], TrainerCallback(), TokenCounter()
        )
        trainer.train()
    peak = _rss_kib("VmHWM")
    return {"baseline": baseline / 1024, "loaded": loaded / 1024, "peak": peak / 1024}


def _child(*args: str) -> dict:
    """Run `python -m benchmarks.bench_train ARGS` in a fresh process and return the JSON line it prints.

    MALLOC_ARENA_MAX keeps glibc from giving every trainer thread its own arena that never shrinks (RSS would grow
    by several GiB per variant on the shared machine).
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "MALLOC_ARENA_MAX": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_train", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench_train {' '.join(args)} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the report ---------------------------------------------------------------------------------------------------


def run() -> str:
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    tp = _child("throughput")
    flops = _peak_matmul_flops()
    # gradient checkpointing in both: without it the activations of a 8 x 256 batch dwarf either base's weights
    qlora = _child("memory", "--four-bit", "--gradient-checkpointing")
    lora = _child("memory", "--full", "--gradient-checkpointing")
    load_after = os.getloadavg()[0]
    return _report(tp, flops, qlora, lora, (load_before, load_after), time.perf_counter() - start)


def _report(tp: dict, flops: float, qlora: dict, lora: dict, load: tuple, seconds: float) -> str:
    rates = tp["rates"]
    med = {name: statistics.median(v) for name, v in rates.items()}
    # ratios per round (step i of every variant ran back to back), then their median
    vs_trl = statistics.median(o / t for o, t in zip(rates["ours"], rates["trl"], strict=True))
    vs_pad = statistics.median(o / p for o, p in zip(rates["ours"], rates["max_length"], strict=True))
    mfu = {name: 6 * tp["params"] * r / flops for name, r in med.items()}
    peak_ratio = qlora["peak"] / lora["peak"]
    above = (qlora["peak"] - qlora["baseline"]) / (lora["peak"] - lora["baseline"])
    rows = [
        ("ours (length-grouped batches)", "ours"),
        ("TRL SFTTrainer, default settings", "trl"),
        ("ours, every batch padded to max_seq_len", "max_length"),
    ]
    table = "\n".join(
        f"| {label} | {med[key]:.0f} | {' / '.join(f'{r:.0f}' for r in rates[key])} | {100 * mfu[key]:.2f}% |"
        for label, key in rows
    )
    return f"""## Training: QLoRA throughput, memory and MFU

Embedded SmolLM2-135M-Instruct in 4-bit NF4 + LoRA r={LORA["r"]} (alpha {LORA["lora_alpha"]}, all linear layers),
CPU, {ROWS} rows of `alpaca_en_demo.json`, batch {BATCH}, max_seq_len {MAX_SEQ_LEN}; {STEPS} timed optimizer
steps per variant after one warm-up step, the variants taking turns step by step (a round = one step of each).
Tokens/s counts real (non-padding) tokens entering `training_step`. TRL `SFTTrainer` keeps its defaults
(gradient checkpointing on, bf16 autocast, random batches padded to the longest, logits at every position,
entropy and token-accuracy metrics); only batch, max_length, learning rate, steps and LoRA config are set to ours.
Padding per epoch: {100 * tp["padding"]["grouped"]:.0f}% with length-grouped batches,
{100 * tp["padding"]["max_length"]:.0f}% padded to max_seq_len (mean example {tp["mean_length"]:.0f} tokens).
Load average {load[0]:.1f} at the start, {load[1]:.1f} at the end (2 shared cores); {seconds:.0f} s in all.
Command: `python -m benchmarks.run train`.

| variant | tokens/s (median) | per round | MFU-style |
|---|---|---|---|
{table}

| figure | value | goal |
|---|---|---|
| ours / TRL SFTTrainer defaults (median of per-round ratios) | **{vs_trl:.2f}x** | >= 1.5x |
| ours / padding every batch to max_seq_len | **{vs_pad:.2f}x** | >= 2x |
| peak RSS while training, QLoRA / LoRA on fp32 base | **{peak_ratio:.2f}x** ({qlora["peak"]:.0f} vs {lora["peak"]:.0f} MiB) | <= 0.6x |
| same, above the process's RSS before loading the model | {above:.2f}x ({qlora["peak"] - qlora["baseline"]:.0f} vs {lora["peak"] - lora["baseline"]:.0f} MiB) | |
| peak fp32 matmul (2048^3, best of 5) | {flops / 1e9:.0f} GFLOP/s | |

MFU-style = 6 x {tp["params"] / 1e6:.0f}M parameters (trainable + frozen) x tokens/s / peak matmul FLOP/s. Memory:
one fresh process per variant, {MEMORY_STEPS} step of a {BATCH} x {MAX_SEQ_LEN}-token batch with gradient
checkpointing, peak resident set
after loading (VmHWM reset through /proc/self/clear_refs); RSS before loading the model was
{qlora["baseline"]:.0f} MiB (QLoRA) and {lora["baseline"]:.0f} MiB (LoRA).
"""


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.bench_train throughput | memory --four-bit|--full`: one measurement as a JSON line."""
    import argparse

    from common.workspace import Workspace

    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("throughput", help="the three variants taking turns step by step")
    memory = sub.add_parser("memory", help=measure_memory.__doc__)
    group = memory.add_mutually_exclusive_group(required=True)
    group.add_argument("--four-bit", dest="four_bit", action="store_true")
    group.add_argument("--full", dest="four_bit", action="store_false")
    memory.add_argument("--gradient-checkpointing", action="store_true")
    args = parser.parse_args(argv)
    if args.what == "throughput":
        with tempfile.TemporaryDirectory() as tmp:
            result = _throughput(Workspace().models_dir, Path(tmp))
    else:
        result = measure_memory(args.four_bit, args.gradient_checkpointing)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
