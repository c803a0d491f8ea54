"""Eval runs: a held-out set through every arm (base, fine-tuned, base+RAG, fine-tuned+RAG), scored per check.

Several examples x all arms go through ONE mixed-adapter batch (`tuner.generate.stream_arms`) at a time. Each
finished batch is scored and appended to `results.jsonl` at once, so a crash or a cancel loses nothing that was
done; the end writes results.csv, summary.json (with the recommendation) and the HTML report. An arm whose
adapter or index is missing is named in `problems` and the other arms still run. The forgetting check runs the
general-ability set (`evals.forgetting`) on the base and fine-tuned arms the same way.

    python -m evals run --data eval.jsonl --arms base,ft,rag,ft+rag --adapter RUN_DIR --index INDEX_DIR --out DIR

    result = run_eval(EvalConfig(data="eval.jsonl", arms="base,rag", index="idx", out_dir="out"), lm=lm)
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_json
from evals import results as res
from evals.batches import forgetting_arms, forgetting_batch, run_batch
from evals.items import EvalItem, load_items, run_dir_adapter

Progress = Callable[[int, int, str], None]
OUTPUT_FILES = (
    res.RESULTS_FILE,
    res.FORGETTING_FILE,
    res.CSV_FILE,
    res.SUMMARY_FILE,
    "report.html",
    "report.json",
)


def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class EvalConfig:
    """One eval run; the CLI (`python -m evals run`) and the app fill this same dataclass."""

    data: str = field(
        metadata=_help("held-out dataset file, or a training run folder (its eval split is used)")
    )
    arms: str = field(default="base,ft,rag,ft+rag", metadata=_help("comma-separated: base, ft, rag, ft+rag"))
    adapters: list[str] = field(
        default_factory=list, metadata=_help("adapter folders or training run folders")
    )
    index: str | None = field(default=None, metadata=_help("knowledge base folder for the RAG arms"))
    checks: str | None = field(
        default=None, metadata=_help("check set file; default: inferred from references")
    )
    out_dir: str | None = field(
        default=None, metadata=_help("output folder (default <workspace>/evals/<id>)")
    )
    data_format: str = field(default="auto", metadata=_help("row format of `data` (see tuner.data.FORMATS)"))
    system: str | None = field(default=None, metadata=_help("system prompt for examples that have none"))
    max_new_tokens: int = field(default=128, metadata=_help("most tokens generated per answer"))
    temperature: float = field(default=0.0, metadata=_help("0 = greedy (reproducible)"))
    seed: int = field(default=0, metadata=_help("sampling seed when temperature > 0"))
    limit: int | None = field(default=None, metadata=_help("evaluate only the first N examples"))
    batch_examples: int = field(default=4, metadata=_help("examples per batch (each with every arm)"))
    group_by_context: bool = field(
        default=True,
        metadata=_help(
            "two calls per batch, RAG arms apart, so short prompts are not padded to the length of prompts "
            "carrying sources (1.6-2x faster on CPU, where reading the prompt dominates); off = one call"
        ),
    )
    k: int = field(default=4, metadata=_help("retrieved chunks per question for the RAG arms"))
    forgetting: bool = field(
        default=True, metadata=_help("run the general-ability set on base and fine-tuned")
    )
    forgetting_set: str | None = field(
        default=None, metadata=_help("general-ability JSONL (default: built-in)")
    )
    forgetting_max_new_tokens: int = field(default=32, metadata=_help("answer length for the general set"))
    embedder: str | None = field(
        default=None, metadata=_help("embedder id (default: embedded all-MiniLM-L6-v2)")
    )
    report: bool = field(default=True, metadata=_help("write report.html and report.json at the end"))
    overwrite: bool = field(default=False, metadata=_help("replace an earlier eval run in out_dir"))

    def __post_init__(self) -> None:
        from evals.arms import parse_kinds

        if not isinstance(self.data, str) or not self.data.strip():
            raise ValueError(f"data must be a dataset file or a training run folder, got {self.data!r}")
        self.arms = ",".join(parse_kinds(self.arms))
        if isinstance(self.adapters, str) or not all(isinstance(a, str) and a for a in self.adapters):
            raise ValueError(f"adapters must be a list of folders, got {self.adapters!r}")
        for name in ("max_new_tokens", "batch_examples", "k", "forgetting_max_new_tokens"):
            _positive_int(name, getattr(self, name))
        if self.limit is not None:
            _positive_int("limit", self.limit)
        for name in ("group_by_context", "forgetting", "report", "overwrite"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        self.generation()  # GenerationParams names a bad temperature or token count

    def generation(self, max_new_tokens: int | None = None):
        from tuner.generate import GenerationParams

        return GenerationParams(
            max_new_tokens=max_new_tokens or self.max_new_tokens, temperature=self.temperature, seed=self.seed
        )


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass
class EvalResult:
    """What an eval run produced: its folder, status (finished / cancelled), summary and arms that did not run."""

    run_id: str
    out_dir: Path
    status: str
    summary: dict
    problems: list[str]


# -- setting up -----------------------------------------------------------------------------------------------


def _output_folder(config: EvalConfig, workspace, run_id: str) -> Path:
    if config.out_dir is None and workspace is None:
        raise ValueError("out_dir is not set and no workspace was given: set out_dir (--out DIR)")
    folder = Path(config.out_dir) if config.out_dir else Path(workspace.evals_dir) / run_id
    folder = folder.expanduser().resolve()
    if (folder / res.RUN_FILE).exists():
        if not config.overwrite:
            raise ValueError(f"{folder} already holds an eval run: choose another --out, or pass --overwrite")
        for name in (res.RUN_FILE, *OUTPUT_FILES):
            (folder / name).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _knowledge_base(config: EvalConfig, kb, embedder) -> tuple[Any, str | None]:
    """The knowledge base for the RAG arms, or None and why not."""
    if kb is not None or not any(k in ("rag", "ft+rag") for k in config.arms.split(",")):
        return kb, None
    if config.index is None:
        return None, "no knowledge base given: pass --index INDEX_DIR (build one with `python -m rag index`)"
    from rag import KnowledgeBase

    try:
        return KnowledgeBase.load(config.index, embedder), None
    except (ValueError, OSError) as e:
        return None, f"knowledge base {config.index} could not be loaded: {e}"


def _arm_set(config: EvalConfig, lm, kb, kb_problem: str | None, adapters: list[str]):
    from evals.arms import KIND_LABELS, ArmSet

    kinds = config.arms.split(",")
    unusable = [k for k in kinds if k in ("rag", "ft+rag")] if kb is None and kb_problem else []
    arms = ArmSet.build(lm, [k for k in kinds if k not in unusable], adapters, kb, k=config.k)
    arms.problems += [f"arm {KIND_LABELS[k]}: {kb_problem}" for k in unusable]
    if not arms.arms:
        raise ValueError("no arm can run: " + "; ".join(arms.problems))
    return arms


def _needs_embedder(config: EvalConfig, file_checks: list | None) -> bool:
    """RAG arms search with it; the default checks and any similarity check score with it."""
    rag = any(k in ("rag", "ft+rag") for k in config.arms.split(","))
    return rag or file_checks is None or any("embedder" in c.needs for c in file_checks)


def _checks(
    file_checks: list | None, source: str | None, items: list[EvalItem], embedder
) -> tuple[list, str]:
    """The check set file's checks, or the style profile inferred from the references plus reference checks."""
    from evals.checks import Check
    from evals.profile import infer_checks

    if file_checks is not None:
        return file_checks, f"check set {source}"
    references = [it.reference for it in items if it.reference]
    try:
        checks = infer_checks(references)
        note = f"inferred from {len(references)} reference answers"
    except ValueError as e:
        checks, note = [], f"no style profile ({e})"
    checks.append(Check("rouge-l", description="word overlap with the reference answer"))
    if embedder is not None:
        checks.append(Check("similarity", description="meaning close to the reference answer"))
    return checks, note + ", plus ROUGE-L and embedding similarity to the reference"


def _check_rows(checks) -> list[dict]:
    return [
        {"name": c.name, "type": c.type, "weight": c.weight, "description": c.description,
         "category": res.check_category(c.type, sorted(c.needs))}
        for c in checks
    ]  # fmt: skip


# -- the run --------------------------------------------------------------------------------------------------


class _Stepper:
    """Counts finished prompts for the progress callback and says whether to go on (not cancelled)."""

    def __init__(self, total: int, rows: int, progress: Progress | None, cancel: Any) -> None:
        self.done, self.total, self.rows = 0, total, rows
        self.progress, self.cancel = progress, cancel

    def __call__(self, n: int, message: str = "") -> bool:
        self.done += n
        if self.progress:
            self.progress(self.done, self.total, message or f"{self.done}/{self.total} prompts")
        return not (self.cancel is not None and self.cancel.is_set())


def _run_forgetting(arms, questions, params, out_dir: Path, step: _Stepper) -> None:
    """The general-ability questions through the base and fine-tuned arms, appended to forgetting.jsonl."""
    per_batch = max(1, step.rows // len(forgetting_arms(arms)))  # as many rows per batch as the main loop
    for start in range(0, len(questions), per_batch):
        batch = questions[start : start + per_batch]
        res.append_jsonl(out_dir / res.FORGETTING_FILE, forgetting_batch(arms, batch, params))
        if not step(len(batch), f"general question {start + len(batch)}/{len(questions)}"):
            return


def _record(workspace, run_id: str, folder: Path, arms: list[str], status: str, summary: dict | None) -> None:
    if workspace is None:
        return
    now = time.time()
    brief = None
    if summary is not None:
        brief = json.dumps({
            "decision": summary.get("recommendation", {}).get("decision"),
            "examples": summary["examples_done"],
            "scores": {a: s["score"] for a, s in summary["per_arm"].items()},
        })  # fmt: skip
    with workspace.db() as con:
        con.execute(
            """INSERT INTO eval_runs (id, path, arms, status, summary, created, updated)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET status=excluded.status, updated=excluded.updated,
                 summary=COALESCE(excluded.summary, eval_runs.summary)""",
            (run_id, str(folder), json.dumps(arms), status, brief, now, now),
        )


def finish_run(
    folder: str | Path, meta: dict | None = None, write_report: bool = True, workspace=None
) -> dict:
    """Write results.csv, summary.json (with the recommendation) and the report from the run folder's files.

    The report's vote leaderboard comes from `workspace`, else from the workspace the run was recorded in.
    """
    from common.workspace import Workspace
    from evals.decision import recommend

    folder = Path(folder)
    stored, records, forgetting = res.read_run(folder)
    meta = meta or stored
    if workspace is None and meta.get("workspace") and Path(meta["workspace"]).is_dir():
        workspace = Workspace(meta["workspace"])
    summary = res.summarize(meta, records, forgetting)
    summary["recommendation"] = recommend(summary)
    res.write_csv(folder / res.CSV_FILE, records, [c["name"] for c in meta["checks"]])
    atomic_write_json(folder / res.SUMMARY_FILE, summary)
    if write_report:
        from evals.report import write_report

        write_report(folder, summary, records, workspace=workspace)
    return summary


def run_eval(
    config: EvalConfig,
    *,
    lm,
    kb=None,
    embedder=None,
    workspace=None,
    progress: Progress | None = None,
    cancel: Any = None,
) -> EvalResult:
    """Run the held-out set through every arm, score it, and write results, summary and report.

    Args:
        lm: the loaded base model (`tuner.models.load_model`); adapters this run attaches are detached again.
        kb: a loaded `rag.KnowledgeBase` (else `config.index` is loaded); embedder: `rag.Embedder` for the index
            and the similarity checks (else the embedded one is loaded); workspace: records the run in its
            `eval_runs` table and holds `evals/<id>/` when `out_dir` is unset.
        progress: called with (prompts done, prompts total, message) after every batch.
        cancel: anything with `is_set()`; the run stops after the batch in flight (status "cancelled").

    Raises:
        ValueError: unreadable or empty eval set, bad check set, no arm that can run, out_dir already used.
    """
    from evals.checks import load_checks

    items, data_note = load_items(config.data, config.data_format, config.limit, config.system)
    file_checks = load_checks(config.checks) if config.checks else None
    if embedder is None and _needs_embedder(config, file_checks):
        from rag import Embedder

        embedder = Embedder.load(config.embedder)
    checks, checks_note = _checks(file_checks, config.checks, items, embedder)
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    folder = _output_folder(config, workspace, run_id)
    kb, kb_problem = _knowledge_base(config, kb, embedder)
    adapters = list(config.adapters) or run_dir_adapter(config.data, config.arms)
    before = set(lm.adapters)
    try:
        arms = _arm_set(config, lm, kb, kb_problem, adapters)
        notes = {"data_note": data_note, "checks_note": checks_note}
        return _execute(
            config, arms, items, checks, folder, run_id, workspace, progress, cancel, notes, embedder
        )
    finally:
        from tuner.generate import detach_adapter

        for name in [n for n in lm.adapters if n not in before]:
            detach_adapter(lm, name)


def _execute(config, arms, items, checks, folder, run_id, workspace, progress, cancel, notes, embedder):
    from evals.forgetting import GENERAL_SET, general_questions

    check_rows = _check_rows(checks)
    questions = (
        general_questions(config.forgetting_set or GENERAL_SET)
        if config.forgetting and forgetting_arms(arms)
        else []
    )
    meta = {
        "id": run_id, "status": "running", "data": config.data, **notes, "examples_total": len(items),
        "arms": [asdict(a) for a in arms.arms], "problems": arms.problems, "checks": check_rows,
        "generation": asdict(config.generation()),
        "forgetting_set": str(config.forgetting_set or GENERAL_SET), "config": asdict(config), "started": time.time(),
        "workspace": str(workspace.root) if workspace is not None else None,
    }  # fmt: skip
    atomic_write_json(folder / res.RUN_FILE, meta)
    _record(workspace, run_id, folder, [a.name for a in arms.arms], "running", None)
    step = _Stepper(len(items) + len(questions), config.batch_examples * len(arms.arms), progress, cancel)
    start = time.perf_counter()
    try:
        go_on = _generate_all(arms, items, checks, check_rows, config, folder, embedder, step)
        if go_on and questions:
            _run_forgetting(
                arms, questions, config.generation(config.forgetting_max_new_tokens), folder, step
            )
        status = "cancelled" if cancel is not None and cancel.is_set() else "finished"
    except BaseException as e:  # Ctrl-C too: mark the run failed, keep what finished, then re-raise
        meta.update(
            status="failed", error=f"{type(e).__name__}: {e}", seconds=round(time.perf_counter() - start, 2)
        )
        _save_failure(folder, meta, workspace, [a.name for a in arms.arms])
        raise
    meta.update(status=status, seconds=round(time.perf_counter() - start, 2))
    atomic_write_json(folder / res.RUN_FILE, meta)
    summary = finish_run(folder, meta, write_report=config.report, workspace=workspace)
    _record(workspace, run_id, folder, [a.name for a in arms.arms], status, summary)
    return EvalResult(run_id, folder, status, summary, list(arms.problems))


def _save_failure(folder: Path, meta: dict, workspace, arm_names: list[str]) -> None:
    """run.json, summary.json and the registry row of a failed run; a failure here must not hide the first."""
    atomic_write_json(folder / res.RUN_FILE, meta)
    try:
        summary = finish_run(folder, meta, write_report=False)
    except Exception:  # the run's own error is re-raised by the caller; `python -m evals report` can retry
        summary = None
    _record(workspace, meta["id"], folder, arm_names, "failed", summary)


def _generate_all(arms, items, checks, check_rows, config, folder, embedder, step) -> bool:
    params = config.generation()
    for start in range(0, len(items), config.batch_examples):
        batch = items[start : start + config.batch_examples]
        records = run_batch(arms, batch, params, checks, check_rows, embedder, config.group_by_context)
        res.append_jsonl(folder / res.RESULTS_FILE, records)
        if not step(len(batch), f"example {start + len(batch)}/{len(items)}"):
            return False
    return True
