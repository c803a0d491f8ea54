"""Eval run results on disk and what they add up to: per-arm aggregates, pairwise win rates, CSV.

An eval run folder holds::

    run.json          the run's settings, arms, problems and checks (written first)
    results.jsonl     one line per example and arm, appended as each batch finishes (a crash loses nothing done)
    forgetting.jsonl  one line per general-ability question and arm (when the forgetting check ran)
    results.csv       the same rows as results.jsonl, one column per check score
    summary.json      `summarize(...)` of the above: aggregates per arm, win rates, forgetting

`summarize` is a pure function of those files, so `python -m evals report DIR` rebuilds the summary and the
report of a finished or an interrupted run alike.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_text

RUN_FILE = "run.json"
RESULTS_FILE = "results.jsonl"
FORGETTING_FILE = "forgetting.jsonl"
CSV_FILE = "results.csv"
SUMMARY_FILE = "summary.json"
# A score counts as a win only when it beats the other arm's by more than this (float noise is a tie).
TIE_MARGIN = 1e-6
# Checks that compare the answer with the reference answer or the retrieved sources measure content
# (facts); every other check measures style and format. length-ratio compares only lengths: style.
CONTENT_TYPES = ("similarity", "rouge-l", "exact-match", "cites-sources", "support-proxy")


def check_category(check_type: str, needs: Sequence[str] = ()) -> str:
    """ "content" for checks against the reference or the sources, else "style" (format and style checks)."""
    if check_type in CONTENT_TYPES and (check_type != "exact-match" or "reference" in needs):
        return "content"
    return "style"


# -- files ----------------------------------------------------------------------------------------------------


def append_jsonl(path: Path, records: Sequence[dict]) -> None:
    """Append whole records in one write, then fsync: a crash leaves at most one torn last line."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    with open(path, "a", encoding="utf-8") as f:  # append-only log; read_jsonl skips a torn last line
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSONL log (missing file: none; a half-written line from a crash is skipped)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def read_run(folder: str | Path) -> tuple[dict, list[dict], list[dict]]:
    """(run.json, result records, forgetting records) of an eval run folder.

    Raises ValueError when the folder holds no eval run.
    """
    folder = Path(folder)
    path = folder / RUN_FILE
    if not path.is_file():
        raise ValueError(
            f"{folder} is not an eval run folder (no {RUN_FILE}): run `python -m evals run` first"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); the run folder is damaged") from None
    return meta, read_jsonl(folder / RESULTS_FILE), read_jsonl(folder / FORGETTING_FILE)


def write_csv(path: Path, records: Sequence[dict], check_names: Sequence[str]) -> Path:
    """results.csv: one row per example and arm, one `score:<check>` column per check (empty if skipped)."""
    out = io.StringIO()
    head = [
        "example",
        "row",
        "arm",
        "kind",
        "question",
        "reference",
        "answer",
        "weighted",
        "style",
        "content",
    ]
    tail = ["latency_s", "prompt_tokens", "completion_tokens", "truncated"]
    writer = csv.writer(out)
    writer.writerow(head + [f"score:{n}" for n in check_names] + tail)
    for r in records:
        scores = [
            "" if r["scores"].get(n, {}).get("skipped", True) else r["scores"][n]["score"]
            for n in check_names
        ]
        writer.writerow([_cell(r.get(k)) for k in head] + scores + [_cell(r.get(k)) for k in tail])
    return atomic_write_text(path, out.getvalue())


def _cell(value: Any) -> Any:
    return "" if value is None else value


# -- aggregates -----------------------------------------------------------------------------------------------


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(sum(kept) / len(kept), 4) if kept else None


def arm_aggregates(records: Sequence[dict], check_names: Sequence[str]) -> dict[str, Any]:
    """One arm's aggregates: mean weighted/style/content score, per-check pass rate and mean, latency, tokens."""
    pass_rate, mean_score = {}, {}
    for name in check_names:
        ran = [r["scores"][name] for r in records if not r["scores"].get(name, {}).get("skipped", True)]
        pass_rate[name] = round(sum(s["passed"] for s in ran) / len(ran), 4) if ran else None
        mean_score[name] = _mean([s["score"] for s in ran])
    seconds = sum(r["latency_s"] for r in records)
    completion = sum(r["completion_tokens"] for r in records)
    return {
        "answers": len(records),
        "score": _mean([r["weighted"] for r in records]),
        "style_score": _mean([r["style"] for r in records]),
        "content_score": _mean([r["content"] for r in records]),
        "pass_rate": pass_rate,
        "check_score": mean_score,
        "latency_s": _mean([r["latency_s"] for r in records]),
        "prompt_tokens": _mean([r["prompt_tokens"] for r in records]),
        "completion_tokens": _mean([r["completion_tokens"] for r in records]),
        "tokens_per_s": round(completion / seconds, 2) if seconds > 0 else None,
        "empty_answers": sum(not r["answer"].strip() for r in records),
        "truncated": sum(bool(r.get("truncated")) for r in records),
    }


def win_rates(records: Sequence[dict], arms: Sequence[str]) -> dict[str, dict[str, dict]]:
    """Pairwise on the weighted score, example by example: {a: {b: {wins, losses, ties, n, rate}}}.

    `rate` = (wins + ties / 2) / n over the examples both arms scored; None when they share none.
    """
    by_example: dict[int, dict[str, float]] = {}
    for r in records:
        if r["weighted"] is not None:
            by_example.setdefault(r["example"], {})[r["arm"]] = r["weighted"]
    table: dict[str, dict[str, dict]] = {a: {} for a in arms}
    for a, b in itertools.permutations(arms, 2):
        pairs = [(s[a], s[b]) for s in by_example.values() if a in s and b in s]
        wins = sum(x > y + TIE_MARGIN for x, y in pairs)
        losses = sum(y > x + TIE_MARGIN for x, y in pairs)
        ties = len(pairs) - wins - losses
        rate = round((wins + ties / 2) / len(pairs), 4) if pairs else None
        table[a][b] = {"wins": wins, "losses": losses, "ties": ties, "n": len(pairs), "rate": rate}
    return table


def forgetting_summary(records: Sequence[dict], question_file: str | None = None) -> dict | None:
    """The forgetting report (evals.forgetting) of the answers in forgetting.jsonl, or None without any."""
    from evals.forgetting import GENERAL_SET, general_questions, score_forgetting

    if not records:
        return None
    questions = general_questions(question_file or GENERAL_SET)
    by_id = {q.id: i for i, q in enumerate(questions)}
    answers: dict[str, list[str]] = {}
    for r in records:
        answers.setdefault(r["arm"], [""] * len(questions))[by_id[r["question_id"]]] = r["answer"]
    done = {r["question_id"] for r in records}
    kept = [q for q in questions if q.id in done]
    trimmed = {arm: [a[by_id[q.id]] for q in kept] for arm, a in answers.items()}
    base = next((r["arm"] for r in records if r["kind"] == "base"), "base")
    report = score_forgetting(trimmed, kept, base_arm=base).to_dict()
    report["questions"] = len(kept)
    return report


def summarize(meta: dict, records: Sequence[dict], forgetting: Sequence[dict] = ()) -> dict[str, Any]:
    """The summary of an eval run (what summary.json holds) from its run.json and records."""
    arms = [a["name"] for a in meta["arms"]]
    check_names = [c["name"] for c in meta["checks"]]
    by_arm = {a: [r for r in records if r["arm"] == a] for a in arms}
    examples = sorted({r["example"] for r in records})
    return {
        "id": meta["id"],
        "status": meta.get("status", "partial"),
        "data": meta.get("data"),
        "data_note": meta.get("data_note", ""),
        "checks_note": meta.get("checks_note", ""),
        "examples_done": len(examples),
        "examples_total": meta.get("examples_total"),
        "arms": meta["arms"],
        "problems": meta.get("problems", []),
        "checks": meta["checks"],
        "generation": meta.get("generation", {}),
        "per_arm": {a: arm_aggregates(rs, check_names) for a, rs in by_arm.items()},
        "win_rates": win_rates(records, arms),
        "forgetting": forgetting_summary(forgetting, meta.get("forgetting_set")),
        "error": meta.get("error"),
        "seconds": meta.get("seconds"),
    }
