"""Command line for check sets and the vote leaderboard.

    python -m evals checks infer DATA [--format auto] [--set name=Tuna] [--out checks.yaml]
    python -m evals checks validate checks.yaml
    python -m evals checks types
    python -m evals leaderboard [--json] [--workspace DIR] [--csv votes.csv]

`checks infer` reads DATA with the training loader (`tuner.data.load_dataset`: JSON, JSONL, CSV/TSV or
Parquet in Alpaca, ShareGPT, OpenAI messages, prompt/completion or two-column form) and proposes checks from
the final assistant answers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from common.workspace import Workspace


def _reference_answers(path: str, fmt: str, values: dict[str, str]) -> list[str]:
    from tuner.data import fill_placeholders, load_dataset

    dataset = load_dataset(path, fmt=fmt)
    examples = fill_placeholders(dataset.examples, values) if values else dataset.examples
    answers = []
    for example in examples:
        said = [m["content"] for m in example.messages if m["role"] == "assistant"]
        if said and isinstance(said[-1], str):
            answers.append(said[-1])
    return answers


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evals", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

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
