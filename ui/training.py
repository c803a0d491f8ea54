"""Training from the app: knob values -> `TrainConfig`, start / cancel / resume as the one background training job
(`Services.jobs`, kind "train"), its progress (bar, losses, warnings), the runs of the workspace registry, and the
"fits your GPU?" estimate (`tuner.fit`). Plain functions of (services, values), used by the Train tab and its API.

A run marked running in the registry that no job of this process owns was interrupted (the app stopped): the runs
list says so, and it can be resumed from its last checkpoint.
"""

import html
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from tuner.models import PRESETS
from tuner.train import RUN_FILE, TrainConfig, last_checkpoint
from ui.forms import coerce
from ui.helpers import NO_DATASET
from ui.services import Job, JobConflict, Services

MAIN_KNOBS = ("max_steps", "epochs", "learning_rate", "batch_size", "max_seq_len", "lora_r", "four_bit")
HIDDEN = ("data", "output_dir", "model", "data_format", "columns", "overwrite", "trust_remote_code")
ADVANCED_KNOBS = tuple(
    name for name in TrainConfig.__dataclass_fields__ if name not in (*MAIN_KNOBS, *HIDDEN)
)
FROM_DATASET = ("max_seq_len", "eval_fraction", "seed")  # chosen when the dataset was uploaded (Data tab)
RUN_COLUMNS = ["run", "status", "model", "dataset", "steps", "train loss", "eval loss", "started"]
NO_RUNS = "No training run yet: pick a dataset and press Start."


# -- starting, resuming, cancelling -------------------------------------------------------------------------


def build_config(services: Services, model: str, dataset: str, settings: dict | None) -> TrainConfig:
    """The `TrainConfig` for `model` on the saved `dataset` with the knob `settings` (field name -> value).

    Raises:
        ValueError: no dataset chosen or it is gone, an unknown setting, or a bad value (naming the field).
    """
    if not dataset:
        raise ValueError(f"choose a dataset to train on. {NO_DATASET}")
    path = services.dataset_path(dataset)
    options = services.dataset_options(dataset)
    knobs = coerce(TrainConfig, settings or {})
    for name in HIDDEN:
        if name in knobs:
            raise ValueError(f"setting {name!r} is chosen by the app: leave it out")
    defaults = {"four_bit": services.four_bit, **{k: options[k] for k in FROM_DATASET if options.get(k)}}
    return TrainConfig(
        data=str(path),
        model=(model or services.model_id).strip(),
        data_format=options["fmt"],
        columns=options["columns"],
        **{**defaults, **knobs},
    )


def _busy_message(services: Services) -> str:
    job = next(iter(services.jobs.running("train")), None)
    where = f", step {job.done}/{job.total}" if job and job.total else ""
    name = job.name if job else "another run"
    return f"{name} is training{where}: wait for it to finish or cancel it before starting another"


def _start(services: Services, name: str, fn, *args) -> Job:
    """Start `fn(*args, workspace=, progress=, cancel=)` (train or resume) as the one training job; its progress
    events feed the progress bar and the plot."""

    def work(job: Job):
        def report(event) -> None:
            job.event(event)
            job.progress(event.step, event.total_steps, event.summary())

        job.message = "loading the model"
        return fn(*args, workspace=services.workspace, progress=report, cancel=job.cancel_event)

    try:
        return services.jobs.start("train", name, work)
    except JobConflict:
        raise ValueError(_busy_message(services)) from None


def start_training(services: Services, model: str, dataset: str, settings: dict | None = None) -> Job:
    """Start a training run in the background. Raises ValueError (shown to the user) for bad input or when a
    run is already training (the message names it)."""
    from tuner.models import resolve
    from tuner.train import train

    if services.jobs.running("train"):
        raise ValueError(_busy_message(services))
    config = build_config(services, model, dataset, settings)
    resolve(config.model)  # an unknown or offline model fails here, not minutes later in the job
    name = f"{Path(config.model).name} on {dataset}"
    return _start(services, name, train, config)


def resume_training(services: Services, run_id: str) -> Job:
    """Continue a cancelled, failed or interrupted run from its last checkpoint, in the background."""
    from tuner.train import resume

    if not run_id:
        raise ValueError("choose the run to resume in the runs list")
    run = services.workspace.run(run_id)
    if run is None:
        raise ValueError(f"no training run {run_id!r} in this workspace: pick one from the runs list")
    if run["status"] == "finished":
        raise ValueError(f"run {run_id} already finished: start a new run to train more")
    if run["status"] == "running" and _owned_by_job(services, run):
        raise ValueError(f"run {run_id} is training right now")
    if last_checkpoint(Path(run["path"])) is None:
        raise ValueError(
            f"run {run_id} has no checkpoint to resume from (it stopped too early): start it again"
        )
    name = f"{run_id} (resumed)"
    return _start(services, name, resume, run["path"])


def cancel_training(services: Services) -> str:
    """Ask the running training to stop after its current step (the adapter of that step is saved)."""
    running = services.jobs.running("train")
    if not running:
        raise ValueError("no training is running")
    running[0].cancel_event.set()
    return f"Cancelling {running[0].name} after the current step; its adapter is saved and the run can be resumed."


# -- will it fit? --------------------------------------------------------------------------------------------

FIT_KNOBS = ("batch_size", "max_seq_len", "lora_r", "gradient_checkpointing", "four_bit")


def fit_estimate(services: Services, model: str, settings: dict | None = None):
    """The memory estimate (`tuner.fit.estimate_memory`) for training `model` with these knob values."""
    from tuner.fit import estimate_memory

    defaults = {"four_bit": services.four_bit}
    knobs = {name: getattr(TrainConfig, name, None) for name in FIT_KNOBS} | defaults
    knobs |= {
        k: v for k, v in coerce(TrainConfig, settings or {}).items() if k in FIT_KNOBS and v is not None
    }
    return estimate_memory(
        (model or services.model_id).strip(), models_dir=services.workspace.models_dir, **knobs
    )


def fit_text(services: Services, model: str, settings: dict | None = None) -> str:
    """ "Fits your GPU?" as one Markdown line: memory needed, the GPU found and the verdict."""
    try:
        est = fit_estimate(services, model, settings)
    except ValueError as e:
        return f"**Fits your GPU?** Cannot estimate for {model!r}: {e}"
    gpu = f"{est.gpu} ({est.gpu_bytes / 2**30:.0f} GiB)" if est.gpu else "no GPU found"
    mark = {True: "✅", False: "❌", None: "ℹ️"}[est.fits]
    return f"**Fits your GPU?** {mark} about {est.total / 2**30:.1f} GiB needed; {gpu}. {est.advice}"


def model_choices(services: Services) -> list[tuple[str, str]]:
    """(label, id) of the app's model and the presets, each label with its estimate at the default knobs."""
    choices = []
    for model in dict.fromkeys([services.model_id, *PRESETS]):
        try:
            est = fit_estimate(services, model)
            verdict = {True: "fits", False: "too big", None: "CPU"}[est.fits]
            choices.append((f"{model} (~{est.total / 2**30:.1f} GiB, {verdict})", model))
        except ValueError:
            choices.append((model, model))
    return choices


# -- progress -----------------------------------------------------------------------------------------------


def training_job(services: Services, job_id: str | None = None) -> Job | None:
    """The training job `job_id`, else the running one, else the latest one of this process."""
    return services.jobs.get(job_id) or next(iter(services.jobs.list("train")), None)


def _events(job: Job | None, kind: str) -> list:
    return [e for e in (job.events if job else []) if e.kind == kind]


def duration(seconds: float | None) -> str:
    """`75` -> `"1m 15s"`; None -> `"?"`."""
    if seconds is None:
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else (f"{minutes}m {secs:02d}s" if minutes else f"{secs}s")


def status(job: Job | None) -> dict[str, Any]:
    """The job's state as plain data (what /train_status returns)."""
    if job is None:
        return {"status": "idle", "message": NO_RUNS}
    steps, evals = _events(job, "step"), _events(job, "eval")
    last = (steps or evals or [None])[-1]
    result = job.result
    return {
        "job_id": job.id,
        "name": job.name,
        "status": job.status,
        "step": job.done,
        "total_steps": job.total,
        "fraction": round(job.fraction(), 4),
        "eta_s": last.eta_s if last and job.running else None,
        "tokens_per_s": last.tokens_per_s if last else None,
        "train_loss": steps[-1].train_loss if steps else None,
        "eval_loss": evals[-1].eval_loss if evals else None,
        "message": job.message,
        "error": job.error,
        "warnings": [e.message for e in _events(job, "warning")],
        "run_id": getattr(result, "run_id", None),
        "run_dir": str(result.run_dir) if hasattr(result, "run_dir") else None,
    }


def progress_html(job: Job | None) -> str:
    """A progress bar with step, percent, ETA, tokens/s and the latest losses (or the job's outcome)."""
    s = status(job)
    if job is None:
        return f"<p class='help'>{NO_RUNS}</p>"
    name = html.escape(job.name)
    if job.status == "failed":
        return f"<p><b>{name}</b> failed: {html.escape(job.error or '')}</p>"
    parts = [
        f"step {s['step']}/{s['total_steps'] or '?'}"
        + (f" ({100 * s['fraction']:.0f}%)" if job.total else "")
    ]
    if job.running and s["eta_s"] is not None:
        parts.append(f"ETA {duration(s['eta_s'])}")
    if s["tokens_per_s"]:
        parts.append(f"{s['tokens_per_s']:.0f} tokens/s")
    parts += [
        f"{label} {s[key]:.3f}" for label, key in (("loss", "train_loss"), ("eval", "eval_loss")) if s[key]
    ]
    state = "training" if job.running else job.status
    if job.running and not job.total:
        state = html.escape(job.message)
    done = f"; run <code>{html.escape(s['run_id'])}</code>" if s["run_id"] else ""
    return (
        f"<div><b>{name}</b>: {state}{done}<br><progress value='{job.done}' max='{max(job.total, 1)}' "
        f"style='width:100%'></progress><br>{' · '.join(parts)}</div>"
    )


def warning_text(job: Job | None) -> str:
    """The overfitting (or other) warnings the run raised, as Markdown; empty when none."""
    return "\n".join(f"⚠️ **Warning:** {m}" for m in status(job).get("warnings", []))


def loss_frame(events: list) -> pd.DataFrame:
    """Long-form train and eval loss per step for the line plot (events: ProgressEvents or their dicts)."""
    rows = []
    for e in events:
        e = e if isinstance(e, dict) else e.to_dict()
        if e["kind"] == "step" and e.get("train_loss") is not None:
            rows.append({"step": e["step"], "loss": e["train_loss"], "series": "train"})
        elif e["kind"] == "eval" and e.get("eval_loss") is not None:
            rows.append({"step": e["step"], "loss": e["eval_loss"], "series": "eval"})
    return pd.DataFrame(rows, columns=["step", "loss", "series"])


def run_events(services: Services, run_id: str | None) -> list[dict]:
    """The metrics logged by a run of the registry (its loss curve), or none."""
    from tuner.callbacks import read_metrics
    from tuner.train import METRICS_FILE

    run = services.workspace.run(run_id) if run_id else None
    return read_metrics(Path(run["path"]) / METRICS_FILE) if run else []


# -- the runs list ------------------------------------------------------------------------------------------


def _owned_by_job(services: Services, run: dict) -> bool:
    """Whether a registry run marked running belongs to a job of this process (else it was interrupted).

    A run's row is set to running after its job started (a resumed run's too), so an older row is not ours.
    """
    return any(job.started <= run["updated"] + 1 for job in services.jobs.running("train"))


def _run_file(path: str) -> dict:
    try:
        return json.loads((Path(path) / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def runs(services: Services) -> list[dict[str, Any]]:
    """Every run of the workspace, newest first, with status (running / finished / cancelled / failed /
    interrupted), steps and final losses (what /train_runs returns)."""
    out = []
    for run in services.workspace.runs():
        state = run["status"]
        if state == "running" and not _owned_by_job(services, run):
            state = "interrupted"
        result = _run_file(run["path"]).get("result") or {}
        steps = f"{result['global_step']}/{result['total_steps']}" if result.get("total_steps") else ""
        out.append({
            "run": run["id"], "status": state, "model": run["model"] or "",
            "dataset": Path(run["dataset"]).name if run["dataset"] else "", "steps": steps,
            "train loss": result.get("train_loss"), "eval loss": result.get("eval_loss"),
            "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(run["created"])), "error": run["error"],
        })  # fmt: skip
    return out


def runs_frame(services: Services) -> pd.DataFrame:
    return pd.DataFrame(runs(services), columns=RUN_COLUMNS)


def run_choices(services: Services) -> list[str]:
    return [r["run"] for r in runs(services)]


# -- export ---------------------------------------------------------------------------------------------------


def _adapter_run(services: Services, run_id: str) -> dict:
    """The registry row of a run that holds a trained adapter (finished, or cancelled with its last step)."""
    if not run_id:
        raise ValueError("choose a run in the runs list")
    run = services.workspace.run(run_id)
    if run is None:
        raise ValueError(f"no training run {run_id!r} in this workspace: pick one from the runs list")
    if not (Path(run["path"]) / "adapter_model.safetensors").is_file():
        raise ValueError(f"run {run_id} has no adapter yet ({run['status']}): let it finish, or resume it")
    return run


def adapter_zip(services: Services, run_id: str) -> str:
    """The run's adapter, tokenizer and run files as a zip to download (`tuner.export.zip_adapter`)."""
    run = _adapter_run(services, run_id)
    from tuner.export import zip_adapter
    from ui.downloads import downloadable

    return downloadable(zip_adapter(Path(run["path"])), f"adapter-{run_id}.zip")


def merge_run(services: Services, run_id: str) -> str:
    """Merge the run's adapter into its (dequantized) base and save a plain model folder; says where."""
    run = _adapter_run(services, run_id)
    from tuner.export import merge_adapter

    folder = merge_adapter(Path(run["path"]), models_dir=services.workspace.models_dir)
    return (
        f"Merged model of run {run_id} saved to `{folder}`: it loads with "
        "`AutoModelForCausalLM.from_pretrained(folder)`, without PEFT or bitsandbytes."
    )
