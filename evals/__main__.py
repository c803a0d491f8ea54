"""Command line for eval runs, reports, check sets and the vote leaderboard.

    python -m evals run --data FILE|RUN_DIR --arms base,ft,rag,ft+rag [--adapter DIR]... [--index DIR]
                        [--checks FILE] --out DIR [--limit N] [--max-new-tokens N] [--no-forgetting]
    python -m evals report DIR [--workspace DIR]
    python -m evals checks infer DATA [--format auto] [--set name=Tuna] [--out checks.yaml]
    python -m evals checks validate checks.yaml
    python -m evals checks types
    python -m evals leaderboard [--json] [--workspace DIR] [--csv votes.csv]

`checks infer` reads DATA with the training loader (`tuner.data.load_dataset`: JSON, JSONL, CSV/TSV or
Parquet in Alpaca, ShareGPT, OpenAI messages, prompt/completion or two-column form) and proposes checks from
the final assistant answers; a file of answers only (rows with just an output/response/answer/completion
field) works too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from common.workspace import Workspace

ANSWER_FIELDS = ("output", "response", "answer", "completion")


def _reference_answers(path: str, fmt: str, values: dict[str, str]) -> list[str]:
    """Final assistant answers of a dataset, or, for a file of answers only, its output/response/answer/
    completion field."""
    from tuner.data import fill_placeholders, load_dataset

    try:
        dataset = load_dataset(path, fmt=fmt)
    except ValueError as error:
        answers = _answer_only_rows(path)
        if answers is None:
            raise error from None
        return [_fill(a, values) for a in answers]
    examples = fill_placeholders(dataset.examples, values) if values else dataset.examples
    answers = []
    for example in examples:
        said = [m["content"] for m in example.messages if m["role"] == "assistant"]
        if said and isinstance(said[-1], str):
            answers.append(said[-1])
    return answers


def _answer_only_rows(path: str) -> list[str] | None:
    """The answer field of every row when no row is a full example, or None when the rows have none."""
    from tuner.data_files import read_rows

    rows = [row for _, row in read_rows(Path(path)) if isinstance(row, dict)]
    for name in ANSWER_FIELDS:
        answers = [row[name] for row in rows if isinstance(row.get(name), str)]
        if answers:
            return answers
    return None


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def _key_values(pairs: Sequence[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        values[key] = value
    return values


def cmd_checks_infer(args: argparse.Namespace) -> int:
    from evals.checks import checks_to_yaml, save_checks
    from evals.profile import infer_checks

    answers = _reference_answers(args.data, args.format, _key_values(args.set))
    checks = infer_checks(answers)
    print(
        f"proposed {len(checks)} checks from {len(answers)} reference answers in {args.data}", file=sys.stderr
    )
    if args.out:
        save_checks(args.out, checks)
        print(f"wrote {args.out}: edit it, then pass it as --checks", file=sys.stderr)
    else:
        print(checks_to_yaml(checks), end="")
    return 0


def cmd_checks_validate(args: argparse.Namespace) -> int:
    from evals.checks import load_checks

    checks = load_checks(args.file)
    for c in checks:
        print(
            f"{c.name}: {c.type} weight {c.weight:g}"
            + (f" (needs {', '.join(sorted(c.needs))})" if c.needs else "")
        )
    print(f"{args.file}: {len(checks)} valid checks", file=sys.stderr)
    return 0


def cmd_checks_types(args: argparse.Namespace) -> int:
    from evals.registry import describe_types

    print(describe_types())
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from evals.votes import export_votes_csv, leaderboard, load_votes

    ws = Workspace(args.workspace) if args.workspace else Workspace()
    votes = load_votes(ws)
    rows = leaderboard(votes, rounds=args.rounds, seed=args.seed)
    if args.csv:
        export_votes_csv(ws, args.csv)
        print(f"wrote {len(votes)} votes to {args.csv}", file=sys.stderr)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    elif not rows:
        print(f"no votes yet in {ws.root}")
    else:
        print(_table(rows))
    return 0


def _table(rows) -> str:
    head = f"{'arm':<20} {'Bradley-Terry (95% CI)':>26} {'Elo (95% CI)':>26} {'votes':>6} {'W-L-T-bad':>14}"
    lines = [head, "-" * len(head)]
    for r in rows:
        bt = f"{r.bt:.0f} ({r.bt_low:.0f}-{r.bt_high:.0f})"
        elo = f"{r.elo:.0f} ({r.elo_low:.0f}-{r.elo_high:.0f})"
        record = f"{r.wins}-{r.losses}-{r.ties}-{r.both_bad}"
        lines.append(f"{r.arm:<20} {bt:>26} {elo:>26} {r.votes:>6} {record:>14}")
    return "\n".join(lines)


def _tqdm_progress():
    """A progress callback drawing a tqdm bar on stderr, and the bar (to close)."""
    from tqdm import tqdm

    bar = tqdm(total=0, unit="prompt", file=sys.stderr)

    def progress(done: int, total: int, message: str) -> None:
        bar.total = total
        bar.set_postfix_str(message, refresh=False)
        bar.update(done - bar.n)

    return progress, bar


def cmd_run(args: argparse.Namespace) -> int:
    from evals.run import EvalConfig, run_eval
    from tuner.models import load_model

    config = EvalConfig(
        data=args.data, arms=args.arms, adapters=args.adapter, index=args.index, checks=args.checks,
        out_dir=args.out, data_format=args.format, system=args.system, max_new_tokens=args.max_new_tokens,
        temperature=args.temperature, limit=args.limit, batch_examples=args.batch, k=args.k,
        group_by_context=not args.one_call,
        forgetting=not args.no_forgetting, embedder=args.embedder, overwrite=args.overwrite,
    )  # fmt: skip
    ws = Workspace(args.workspace) if args.workspace else Workspace()
    lm = load_model(args.model, four_bit=not args.no_4bit, models_dir=ws.models_dir)
    progress, bar = _tqdm_progress()
    try:
        result = run_eval(config, lm=lm, workspace=ws, progress=progress)
    finally:
        bar.close()
    for problem in result.problems:
        print(f"not run: {problem}", file=sys.stderr)
    rec = result.summary["recommendation"]
    print(f"{result.status}: {result.summary['examples_done']} examples -> {result.out_dir}", file=sys.stderr)
    print(f"recommendation: {rec['decision']}: {rec['headline']}")
    print(f"report: {result.out_dir / 'report.html'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from evals.run import finish_run

    ws = Workspace(args.workspace) if args.workspace else None
    summary = finish_run(args.dir, workspace=ws)
    print(
        f"{summary['status']} run, {summary['examples_done']} examples: "
        f"{summary['recommendation']['decision']}: {summary['recommendation']['headline']}"
    )
    print(f"report: {args.dir}/report.html")
    return 0


def _add_run_parser(sub) -> None:
    run = sub.add_parser("run", help="run a held-out set through every arm, score it, write the report")
    run.add_argument("--data", required=True, help="held-out dataset file, or a training run folder")
    run.add_argument("--arms", default="base,ft,rag,ft+rag", help="comma-separated: base, ft, rag, ft+rag")
    run.add_argument("--adapter", action="append", default=[], help="adapter or training run folder (repeat)")
    run.add_argument("--index", help="knowledge base folder for the RAG arms")
    run.add_argument("--checks", help="check set file (default: inferred from the reference answers)")
    run.add_argument("--out", help="output folder (default <workspace>/evals/<id>)")
    run.add_argument("--format", default="auto", help="row format of --data (default: auto-detect)")
    run.add_argument("--system", help="system prompt for examples that have none")
    run.add_argument("--limit", type=int, help="evaluate only the first N examples")
    run.add_argument("--max-new-tokens", type=int, default=128, help="most tokens per answer (default 128)")
    run.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    run.add_argument(
        "--batch", type=int, default=4, help="examples per batch, each with every arm (default 4)"
    )
    run.add_argument(
        "--one-call",
        action="store_true",
        help="all arms in one call per batch (default: RAG arms in a second call, less padding)",
    )
    run.add_argument("--k", type=int, default=4, help="retrieved chunks per question (default 4)")
    run.add_argument("--no-forgetting", action="store_true", help="skip the general-ability check")
    run.add_argument("--embedder", help="embedder id (default: the embedded all-MiniLM-L6-v2)")
    run.add_argument("--model", help="base model id or folder (default: the embedded SmolLM2-135M-Instruct)")
    run.add_argument("--no-4bit", action="store_true", help="load the base model without 4-bit quantization")
    run.add_argument("--workspace", help="workspace folder (default: $FTRAG_WORKSPACE or ./workspace)")
    run.add_argument("--overwrite", action="store_true", help="replace an earlier eval run in --out")
    run.set_defaults(func=cmd_run)
    report = sub.add_parser("report", help="rebuild summary, CSV and report of a finished or partial run")
    report.add_argument("dir", help="eval run folder")
    report.add_argument("--workspace", help="workspace whose blind votes to show (default: the run's own)")
    report.set_defaults(func=cmd_report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evals", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run_parser(sub)

    checks = sub.add_parser("checks", help="check sets: infer from data, validate, list types")
    checks_sub = checks.add_subparsers(dest="action", required=True)
    infer = checks_sub.add_parser("infer", help="propose checks from a dataset's reference answers")
    infer.add_argument("data", help="dataset file (JSON, JSONL, CSV/TSV, Parquet)")
    infer.add_argument("--format", default="auto", help="row format (default: auto-detect)")
    infer.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="fill {{KEY}} placeholders"
    )
    infer.add_argument("--out", help="write the proposal here (.yaml or .json) instead of printing it")
    infer.set_defaults(func=cmd_checks_infer)
    validate = checks_sub.add_parser("validate", help="load a check set file and list its checks")
    validate.add_argument("file")
    validate.set_defaults(func=cmd_checks_validate)
    types = checks_sub.add_parser("types", help="list every check type and its parameters")
    types.set_defaults(func=cmd_checks_types)

    board = sub.add_parser("leaderboard", help="Elo and Bradley-Terry ratings from the blind votes")
    board.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    board.add_argument("--workspace", help="workspace folder (default: $FTRAG_WORKSPACE or ./workspace)")
    board.add_argument("--csv", help="also export every vote to this CSV file")
    board.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds for the intervals")
    board.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    board.set_defaults(func=cmd_leaderboard)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
