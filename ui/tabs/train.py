"""Train tab: pick a model and a dataset, set the knobs (generated from `tuner.train.TrainConfig`), and start,
cancel or resume a QLoRA run in the background, with a live progress bar, loss plot and the list of runs.

The handlers live in `ui.training`; this module lays out the page, wires the events and the API. A timer polls the
job while it runs, and a page load polls once, so a reload shows a running training again.

API (gradio_client): /train_start(model, dataset, settings) -> job, /train_status(job_id) -> progress,
/train_cancel() -> message, /train_resume(run_id) -> job, /train_runs() -> runs, /train_fit(model, settings) ->
memory estimate, /train_download(run_id) -> adapter zip, /train_merge(run_id) -> where the merged model is.
"""

from typing import Any

import gradio as gr

from tuner.train import TrainConfig
from ui.forms import config_widgets
from ui.helpers import NO_DATASET, on_load, user_errors
from ui.services import Job, Services
from ui.training import (
    ADVANCED_KNOBS,
    FIT_KNOBS,
    FROM_DATASET,
    MAIN_KNOBS,
    RUN_COLUMNS,
    adapter_zip,
    cancel_training,
    fit_estimate,
    fit_text,
    loss_frame,
    merge_run,
    model_choices,
    progress_html,
    resume_training,
    run_choices,
    run_events,
    runs,
    runs_frame,
    start_training,
    status,
    training_job,
    warning_text,
)

# -- the page -----------------------------------------------------------------------------------------------


def dataset_defaults(services: Services, dataset: str | None) -> list[Any]:
    """The max_seq_len, eval_fraction and seed chosen for `dataset` in the Data tab (for the knobs)."""
    options = services.dataset_options(dataset) if dataset else {}
    defaults = {f: TrainConfig.__dataclass_fields__[f].default for f in FROM_DATASET}
    return [gr.update(value=options.get(name) or defaults[name]) for name in FROM_DATASET]


def refresh(services: Services, job_id: str | None, run_id: str | None):
    """Everything the timer and a page load update: progress, plot, warnings, runs, pickers, timer."""
    job = training_job(services, job_id)
    live = job is not None and (job.running or not run_id)
    frame = loss_frame(job.events if live else run_events(services, run_id))
    choices = run_choices(services)
    return (
        progress_html(job),
        frame,
        warning_text(job),
        runs_frame(services),
        gr.Dropdown(choices=choices, value=run_id if run_id in choices else None),
        gr.Timer(active=bool(job and job.running)),
    )


def build(services: Services) -> None:
    gr.Markdown(
        "Train a LoRA adapter (QLoRA: the base in 4-bit) on a dataset from the Data tab. Training runs in the "
        "background: you can use the other tabs, and a reload shows the progress again.",
        elem_classes="help",
    )
    datasets = services.dataset_names()
    job_id = gr.State(None)
    timer = gr.Timer(1.0, active=False)
    with gr.Row():
        with gr.Column(scale=2):
            model = gr.Dropdown(
                model_choices(services),
                value=services.model_id,
                allow_custom_value=True,
                label="Base model",
                info="a preset (with its training memory at the default knobs), any hub id, or a local folder",
            )
            fit = gr.Markdown(fit_text(services, services.model_id))
            dataset = gr.Dropdown(
                datasets,
                value=datasets[0] if datasets else None,
                label="Dataset",
                info="uploaded in the Data tab" if datasets else NO_DATASET,
            )
        with gr.Column(scale=3), gr.Row():
            knobs = config_widgets(TrainConfig, MAIN_KNOBS, {"four_bit": services.four_bit})
    with gr.Accordion("Advanced settings", open=False), gr.Row():
        knobs |= config_widgets(TrainConfig, ADVANCED_KNOBS)
    with gr.Row():
        start = gr.Button("Start training", variant="primary")
        cancel = gr.Button("Cancel", variant="stop")
    progress = gr.HTML(progress_html(None))
    warning = gr.Markdown()
    plot = gr.LinePlot(
        loss_frame([]), x="step", y="loss", color="series", title="Loss", height=280, label="Loss curve"
    )
    with gr.Row():
        runs_table = gr.Dataframe(
            runs_frame(services),
            headers=RUN_COLUMNS,
            label="Runs",
            interactive=False,
            max_height=300,
            scale=3,
        )
        with gr.Column(scale=1):
            run = gr.Dropdown(
                run_choices(services),
                value=None,
                label="Run",
                info="shows its loss curve; resume, download or merge it below",
                allow_custom_value=True,
            )
            resume = gr.Button("Resume run")
            download = gr.Button("Download adapter (.zip)")
            merge = gr.Button("Merge into a full model")
    adapter_file = gr.File(label="Adapter", interactive=False)
    merged = gr.Markdown()

    _wire_start(services, start, model, dataset, knobs, job_id, timer, progress)
    _wire_fit(services, model, knobs, fit)
    outputs = [progress, plot, warning, runs_table, run, timer]
    poll = user_errors(lambda job, run_id: refresh(services, job, run_id))
    timer.tick(poll, [job_id, run], outputs, api_visibility="private")
    run.select(poll, [job_id, run], outputs, api_visibility="private")
    on_load(poll, [job_id, run], outputs)
    dataset.focus(
        lambda: gr.Dropdown(choices=services.dataset_names()), None, dataset, api_visibility="private"
    )
    dataset.change(
        user_errors(lambda name: dataset_defaults(services, name)),
        dataset,
        [knobs[name] for name in FROM_DATASET],
        api_visibility="private",
    )
    cancel.click(user_errors(lambda: cancel_training(services)), None, warning, api_visibility="private")
    resume.click(
        user_errors(lambda run_id: _started(resume_training(services, run_id))),
        run,
        [job_id, timer, progress],
        api_visibility="private",
    )
    download.click(user_errors(lambda run_id: adapter_zip(services, run_id)), run, adapter_file,
                   api_name="train_download")  # fmt: skip
    merge.click(user_errors(lambda run_id: merge_run(services, run_id)), run, merged, api_name="train_merge")
    _api(services)


def _started(job: Job):
    return job.id, gr.Timer(active=True), progress_html(job)


def _wire_start(services: Services, start, model, dataset, knobs: dict, job_id, timer, progress) -> None:
    """The Start button: every knob goes in as one {component: value} dict, so the handler names each field."""

    def on_start(values: dict):
        settings = {name: values[widget] for name, widget in knobs.items()}
        return _started(start_training(services, values[model], values[dataset], settings))

    start.click(
        user_errors(on_start),
        {model, dataset, *knobs.values()},
        [job_id, timer, progress],
        api_visibility="private",
    )


def _wire_fit(services: Services, model, knobs: dict, fit) -> None:
    """Re-estimate the memory whenever the model or a knob it depends on changes."""
    inputs = {model, *(knobs[name] for name in FIT_KNOBS)}

    def on_change(values: dict) -> str:
        try:
            return fit_text(services, values[model], {n: values[knobs[n]] for n in FIT_KNOBS})
        except ValueError as e:  # a knob being typed (empty, not a number): say so, no error popup
            return f"**Fits your GPU?** {e}"

    for widget in (model, *(knobs[name] for name in FIT_KNOBS)):
        widget.change(on_change, inputs, fit, api_visibility="private")


def _api(services: Services) -> None:
    """The training endpoints for gradio_client (typed; each returns plain JSON)."""

    def train_start(model: str, dataset: str, settings: dict | None = None) -> dict:
        """Start training `model` on a dataset saved in the Data tab; settings: TrainConfig fields."""
        return status(start_training(services, model, dataset, settings))

    def train_status(job_id: str = "") -> dict:
        """The training job's progress (the running or latest one when job_id is empty)."""
        return status(training_job(services, job_id or None))

    def train_cancel() -> str:
        """Stop the running training after its current step."""
        return cancel_training(services)

    def train_resume(run_id: str) -> dict:
        """Resume a cancelled or interrupted run from its last checkpoint."""
        return status(resume_training(services, run_id))

    def train_runs() -> list:
        """Every training run of the workspace with its status."""
        return runs(services)

    def train_fit(model: str, settings: dict | None = None) -> dict:
        """Estimated training memory for `model` with these TrainConfig settings, and whether it fits the GPU."""
        return fit_estimate(services, model, settings).to_dict()

    for fn in (train_start, train_status, train_cancel, train_resume, train_runs, train_fit):
        gr.api(user_errors(fn), api_name=fn.__name__)
