"""Run every benchmark and write BENCHMARKS.md: `make bench` (or `python -m benchmarks.run [AREA ...]`).

Each `benchmarks/bench_<area>.py` exposes `run() -> str`, a Markdown section whose ratios were measured side by
side in one run (the machines are shared and noisy; absolute times drift, ratios much less).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

import benchmarks

ROOT = Path(__file__).resolve().parent.parent


def machine_summary() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return (
        f"- Machine: {cpu}, {os.cpu_count()} cores, {mem_gb:.0f} GiB RAM, GPU: {gpu}\n"
        f"- Python {platform.python_version()}, torch {torch.__version__}, commit {commit.stdout.strip() or '?'}\n"
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("areas", nargs="*", help="bench modules to run (default: all), e.g. rag evals")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    if args.areas:
        names = [n for n in names if n.removeprefix("bench_") in args.areas]
    sections, failed = [], 0
    for name in names:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            sections.append(importlib.import_module(f"benchmarks.{name}").run().strip())
        except Exception:
            failed += 1
            sections.append(f"## {name}\n\nFAILED:\n\n```\n{traceback.format_exc()}```")
        print(f"   {time.perf_counter() - t0:.0f} s", flush=True)
    text = (
        "# Benchmarks\n\nWritten by `make bench` (`python -m benchmarks.run`); every ratio below compares runs "
        "measured side by side in the same invocation.\n\n"
        + machine_summary()
        + "\n"
        + "\n\n".join(sections)
        + "\n"
    )
    from common.atomic import atomic_write_text

    atomic_write_text(args.out, text)
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
