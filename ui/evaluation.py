"""Evaluation from the app: the eval set (a saved dataset or a training run's eval split), the checks (the style
profile inferred from the references, as editable YAML, or a checks file), the `EvalConfig`, and the eval run as a
background job (`Services.jobs`, kind "eval") calling `evals.run.run_eval`. Plain functions of (services, values),
used by the Evaluate and Report tabs and their API.

The job holds the shared model's generation lock one batch at a time, so Compare and Arena answer in between.
"""

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_text
from evals.run import EvalConfig
from ui.arms import Choice, resolve_adapter
from ui.forms import coerce
from ui.helpers import NO_DATASET, check_upload
from ui.services import Job, Services

CHECK_SUFFIXES = (".yaml", ".yml", ".json")
REFERENCE_CHECKS = """- type: rouge-l
  description: word overlap with the reference answer
- type: similarity
  description: meaning close to the reference answer
"""
NO_EVAL = "No eval run yet: choose an eval set and arms, then press Run."


# -- the eval set -------------------------------------------------------------------------------------------


def eval_sets(services: Services) -> list[tuple[str, str]]:
    """(label, value) of the eval sets: saved datasets ("dataset:<name>") and training runs' eval splits
    ("run:<id>")."""
    sets = [(f"dataset {name}", f"dataset:{name}") for name in services.dataset_names()]
    for run in services.workspace.runs():
        if (Path(run["path"]) / "data.jsonl").is_file():
            sets.append((f"eval split of run {run['id']}", f"run:{run['id']}"))
    return sets


def eval_data(services: Services, choice: str) -> tuple[str, str]:
    """(data path, row format) for an eval set choice; a dataset read with a column mapping is converted to
    chat messages first (the eval loader takes no mapping).

    Raises:
        ValueError: nothing chosen, or the dataset or run is gone.
    """
    kind, _, name = (choice or "").partition(":")
    if kind == "run":
        run = services.workspace.run(name)
        if run is None or not Path(run["path"]).is_dir():
            raise ValueError(f"training run {name!r} is gone: pick another eval set")
        return run["path"], "auto"
    if kind != "dataset":
        raise ValueError(f"choose an eval set: a dataset or a training run's eval split. {NO_DATASET}")
    options = services.dataset_options(name)
    if not options.get("columns"):
        return str(services.dataset_path(name)), options["fmt"]
    rows = [json.dumps({"messages": e.messages}) for e in services.load_dataset(name).examples]
    path = services.workspace.evals_dir / "inputs" / f"{Path(name).stem}.jsonl"
    atomic_write_text(path, "\n".join(rows) + "\n")
    return str(path), "openai"


def references(services: Services, choice: str) -> list[str]:
    """The reference answers of an eval set."""
    from evals.items import load_items

    items, _ = load_items(*eval_data(services, choice))
    return [it.reference for it in items if it.reference]


# -- checks -------------------------------------------------------------------------------------------------


def infer_checks_yaml(services: Services, choice: str) -> str:
    """The style profile inferred from the eval set's references, plus the reference checks, as YAML."""
    from evals.checks import checks_to_yaml
    from evals.profile import infer_checks

    refs = references(services, choice)
    try:
        profile = checks_to_yaml(infer_checks(refs))
    except ValueError as e:
        profile = f"# no style profile inferred: {e}\n"
    return profile + REFERENCE_CHECKS


def checks_from_yaml(text: str) -> list:
    """Parse the check editor's YAML. Raises ValueError naming the line or the entry that is wrong."""
    import yaml

    from evals.checks import parse_checks

    try:
        entries = yaml.safe_load(text or "")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ValueError(f"the checks are not valid YAML{where}: fix the editor text") from None
    if not entries:
        raise ValueError("the checks editor is empty: infer the style profile or load a checks file")
    return parse_checks(entries, where="checks")


def load_checks_file(services: Services, file) -> str:
    """A checks file (YAML or JSON) as YAML for the editor."""
    from evals.checks import checks_to_yaml, load_checks

    path, _ = check_upload(file, CHECK_SUFFIXES, services.max_upload_mb, "checks file")
    return checks_to_yaml(load_checks(path))


def _checks_file(services: Services, text: str) -> str:
    """The editor's checks saved in the workspace (named by content, so the same checks are one file)."""
    from evals.checks import save_checks

    checks = checks_from_yaml(text)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return str(save_checks(services.workspace.evals_dir / "checks" / f"{digest}.yaml", checks))


# -- running ------------------------------------------------------------------------------------------------


def build_eval_config(
    services: Services,
    data: str,
    arms: list[str],
    adapter: str | None,
    index: str | None,
    checks: str,
    settings: dict | None,
) -> EvalConfig:
    """The `EvalConfig` for the tab's choices. Raises ValueError (with what to do) for any bad choice."""
    Choice(list(arms or []), adapter or None, index or None).check()
    path, fmt = eval_data(services, data)
    folder = resolve_adapter(services, adapter) if adapter and any(k.startswith("ft") for k in arms) else None
    rag = any(k in ("rag", "ft+rag") for k in arms)
    return EvalConfig(
        data=path,
        data_format=fmt,
        arms=",".join(arms),
        adapters=[str(folder)] if folder else [],
        index=str(services.workspace.indexes_dir / index) if rag else None,
        checks=_checks_file(services, checks) if (checks or "").strip() else None,
        **coerce(EvalConfig, settings or {}),
    )


def _yield_between_batches(lock: threading.Lock):
    """A progress hook for a job holding `lock`: after each batch, let a waiting chat take the model."""

    def hook() -> None:
        lock.release()
        time.sleep(0.05)
        lock.acquire()

    return hook


def start_eval(
    services: Services,
    data: str,
    arms: list[str],
    adapter: str | None = None,
    index: str | None = None,
    checks: str = "",
    settings: dict | None = None,
) -> Job:
    """Start an eval run in the background. Raises ValueError for bad choices or when one is running."""
    from evals.run import run_eval

    if services.jobs.running("eval"):
        raise ValueError(f"{services.jobs.running('eval')[0].name} is running: wait for it or cancel it")
    config = build_eval_config(services, data, arms, adapter, index, checks, settings)
    kb = services.kb(index) if config.index else None

    def work(job: Job):
        job.message = "loading the model"
        lm, embedder = services.lm(), services.embedder()
        with services.generation_lock:
            hook = _yield_between_batches(services.generation_lock)

            def progress(done: int, total: int, message: str) -> None:
                job.progress(done, total, message)
                hook()

            return run_eval(config, lm=lm, kb=kb, embedder=embedder, workspace=services.workspace,
                            progress=progress, cancel=job.cancel_event)  # fmt: skip

    label = dict((v, k) for k, v in eval_sets(services)).get(data, data)
    # "eval" is an exclusive job kind: a second start racing past the check above gets a JobConflict (ValueError)
    return services.jobs.start("eval", f"eval of {', '.join(arms)} on {label}", work)


def cancel_eval(services: Services) -> str:
    running = services.jobs.running("eval")
    if not running:
        raise ValueError("no eval run is in progress")
    running[0].cancel_event.set()
    return f"Cancelling {running[0].name} after the batch in flight; what is done is kept."


def eval_status(job: Job | None) -> dict[str, Any]:
    """The eval job's state as plain data (what /eval_status returns)."""
    if job is None:
        return {"status": "idle", "message": NO_EVAL}
    result = job.result
    return {
        "job_id": job.id, "name": job.name, "status": job.status, "done": job.done, "total": job.total,
        "fraction": round(job.fraction(), 4), "message": job.message, "error": job.error,
        "eval_id": getattr(result, "run_id", None), "problems": getattr(result, "problems", []),
        "decision": (getattr(result, "summary", None) or {}).get("recommendation", {}).get("decision"),
    }  # fmt: skip


def status_text(job: Job | None) -> str:
    s = eval_status(job)
    if job is None:
        return NO_EVAL
    if job.status == "failed":
        return f"**{job.name}** failed: {job.error}"
    if job.running:
        pct = f" {100 * job.fraction():.0f}%" if job.total else ""
        return f"**{job.name}**:{pct} {job.message} ({job.done}/{job.total or '?'} prompts)"
    problems = "".join(f"\n- {p}" for p in s["problems"])
    return f"**{job.name}**: {job.status}; eval run `{s['eval_id']}`, recommendation **{s['decision']}**{problems}"


# -- results ------------------------------------------------------------------------------------------------


def eval_runs(services: Services) -> list[dict[str, Any]]:
    """Eval runs of the workspace registry, newest first: id, status, arms, decision, path."""
    with services.workspace.db() as con:
        rows = [dict(r) for r in con.execute("SELECT * FROM eval_runs ORDER BY created DESC").fetchall()]
    for row in rows:
        brief = json.loads(row["summary"] or "{}")
        row.update(
            arms=json.loads(row["arms"] or "[]"),
            decision=brief.get("decision"),
            examples=brief.get("examples"),
        )
    return rows


def eval_folder(services: Services, eval_id: str) -> Path:
    if not eval_id:
        raise ValueError("choose an eval run")
    with services.workspace.db() as con:
        row = con.execute("SELECT path FROM eval_runs WHERE id = ?", (eval_id,)).fetchone()
    if row is None or not Path(row["path"]).is_dir():
        raise ValueError(f"eval run {eval_id!r} is gone: pick another from the list")
    return Path(row["path"])


def eval_summary(services: Services, eval_id: str) -> tuple[dict, list[dict]]:
    """(summary, result records) of an eval run, recomputed from its folder (a partial run works too)."""
    from evals import results as res

    meta, records, forgetting = res.read_run(eval_folder(services, eval_id))
    return res.summarize(meta, records, forgetting), records
