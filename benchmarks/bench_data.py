"""Dataset loading and validation speed: `python -m benchmarks.run data` (part of `make bench`).

Loads `alpaca_en_demo.json` (999 rows) from JSON, JSONL, CSV and Parquet copies of the same rows, and times the
validation report (chat template + token counts with the embedded model's tokenizer) against the naive way of
measuring the same lengths: one `apply_chat_template(tokenize=True)` call per example.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALPACA = ROOT.parent / "shared" / "data" / "llamafactory" / "alpaca_en_demo.json"
REPEATS = 3


def _best(fn) -> tuple[float, object]:
    """Best wall time of REPEATS calls (shared machines are noisy) and the last result."""
    best, result = float("inf"), None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _copies(folder: Path) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = json.loads(ALPACA.read_text(encoding="utf-8"))
    paths = {
        "JSON": ALPACA,
        "JSONL": folder / "a.jsonl",
        "CSV": folder / "a.csv",
        "Parquet": folder / "a.parquet",
    }
    paths["JSONL"].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with paths["CSV"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["instruction", "input", "output"])
        writer.writeheader()
        writer.writerows(rows)
    pq.write_table(pa.Table.from_pylist(rows), paths["Parquet"])
    return paths


def _naive_lengths(examples, tokenizer) -> list[int]:
    return [
        len(tokenizer.apply_chat_template(ex.messages, tokenize=True, return_dict=True)["input_ids"])
        for ex in examples
    ]


def run() -> str:
    from tuner.data import load_dataset
    from tuner.models import load_tokenizer
    from tuner.validate import validate

    tokenizer = load_tokenizer()
    with tempfile.TemporaryDirectory() as tmp:
        paths = _copies(Path(tmp))
        loads = {name: _best(lambda p=path: load_dataset(p, "alpaca")) for name, path in paths.items()}
    dataset = loads["JSON"][1]
    n = len(dataset.examples)
    report_s, report = _best(lambda: validate(dataset, tokenizer, 1024, 0.1, 42))
    naive_s, naive = _best(lambda: _naive_lengths(dataset.examples, tokenizer))
    if (min(naive), max(naive), sum(naive)) != (report.tokens.min, report.tokens.max, report.tokens.total):
        raise RuntimeError("validate and the naive loop measured different token lengths")

    rows = [f"| load {name} | {s * 1000:.0f} ms | {n / s:,.0f} rows/s | |" for name, (s, _) in loads.items()]
    json_s = loads["JSON"][0]
    rows += [
        f"| validation report (whole + first-answer lengths, histogram, duplicates) | {report_s * 1000:.0f} ms "
        f"| {n / report_s:,.0f} rows/s | |",
        f"| naive lengths only: `apply_chat_template(tokenize=True)` per example | {naive_s * 1000:.0f} ms "
        f"| {n / naive_s:,.0f} rows/s | report is {naive_s / report_s:.2f}x the speed while measuring twice as much |",
        f"| load JSON + report, end to end | {(json_s + report_s) * 1000:.0f} ms | "
        f"{n / (json_s + report_s):,.0f} rows/s | |",
    ]
    return "\n".join(
        [
            "## Dataset loading and validation",
            "",
            f"`alpaca_en_demo.json` ({n} rows, {report.tokens.total:,} tokens with the SmolLM2 chat template), "
            f"best of {REPEATS} runs. The report renders every example twice (whole, and up to its first answer) "
            "and tokenizes each set in one batched call of the fast tokenizer; the naive loop tokenizes one "
            "example per call. Command: `make bench` or `python -m benchmarks.run data`.",
            "",
            "| step | time | throughput | ratio |",
            "|---|---|---|---|",
            *rows,
        ]
    )
