"""Train tab handlers (ui.training) without a browser: knobs -> TrainConfig, start/cancel/resume as jobs, progress, runs list."""

import json
import threading
import time
from pathlib import Path

import pytest

from tuner.callbacks import ProgressEvent
from tuner.train import TrainConfig
from ui import training as tab

IDENTITY_ROWS = 12


@pytest.fixture
def services(workspace):
    """Services on a fresh workspace (training runs must not leak into the other UI tests' registry)."""
    from ui.services import Services

    return Services(workspace, four_bit=False)


@pytest.fixture
def identity(services, shared_data) -> str:
    """A slice of identity.json saved as a dataset of the workspace (as the Data tab saves it)."""
    rows = json.loads((shared_data / "llamafactory" / "identity.json").read_text(encoding="utf-8"))
    path = services.workspace.datasets_dir / "identity.json"
    path.write_text(json.dumps(rows[:IDENTITY_ROWS]), encoding="utf-8")
    return path.name


def wait_for(predicate, timeout: float = 600.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.2)


def blocking_job(services):
    """A running job of kind "train" that ends when the returned event is set."""
    release = threading.Event()
    job = services.jobs.start("train", "fake-model on other.json", lambda job: release.wait(30))
    return job, release


# -- knobs -> config ------------------------------------------------------------------------------------------


def test_settings_become_a_train_config_with_the_dataset_options(services, identity):
    services.save_dataset_options(identity, {"fmt": "alpaca", "columns": None, "max_seq_len": 256, "seed": 7})
    settings = {
        "max_steps": 3.0,
        "learning_rate": 1e-4,
        "target_modules": "q_proj, v_proj",
        "eval_every": None,
    }
    config = tab.build_config(services, "", identity, settings)
    assert isinstance(config, TrainConfig)
    assert config.data == str(services.workspace.datasets_dir / identity)
    assert (config.max_steps, config.learning_rate, config.eval_every) == (3, 1e-4, None)
    assert config.target_modules == ["q_proj", "v_proj"]
    assert (config.data_format, config.max_seq_len, config.seed) == ("alpaca", 256, 7)
    assert config.model == services.model_id and config.four_bit is False  # the app's --no-4bit


def test_a_knob_overrides_the_dataset_option(services, identity):
    services.save_dataset_options(identity, {"fmt": "auto", "columns": None, "max_seq_len": 256})
    assert tab.build_config(services, "", identity, {"max_seq_len": 128}).max_seq_len == 128


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"lora_r": 0}, "lora_r must be a positive integer, got 0"),
        ({"max_steps": 2.5}, "max_steps must be a whole number"),
        ({"learning_rate": None}, "learning_rate is empty"),
        ({"learning_rate": "fast"}, "learning_rate must be a number"),
        ({"lr_scheduler": "weird"}, "lr_scheduler must be one of"),
        ({"warmup_ratio": 0.9}, "warmup_ratio must be between"),
        ({"bogus": 1}, "unknown setting 'bogus'"),
        ({"data": "/etc/passwd"}, "setting 'data' is chosen by the app"),
    ],
)
def test_bad_settings_name_the_field(services, identity, settings, message):
    with pytest.raises(ValueError, match=message):
        tab.build_config(services, "", identity, settings)


@pytest.mark.parametrize(
    ("dataset", "message"),
    [("", "choose a dataset to train on. No dataset yet"), ("gone.json", "upload one in the Data tab")],
)
def test_starting_without_a_dataset_says_what_to_do(services, dataset, message):
    with pytest.raises(ValueError, match=message):
        tab.start_training(services, "", dataset, {})
    assert services.jobs.list("train") == []


def test_an_unreachable_model_fails_before_a_job_starts(services, identity):
    with pytest.raises(ValueError, match="cannot be loaded"):
        tab.start_training(services, "nobody/no-such-model", identity, {"max_steps": 1})
    assert services.jobs.list("train") == []


def test_the_ui_shows_a_user_error_as_a_gradio_error(services):
    import gradio as gr

    from ui.helpers import user_errors

    with pytest.raises(gr.Error, match="choose a dataset"):
        user_errors(tab.start_training)(services, "", "", {})


def test_a_second_start_names_the_run_that_is_training(services, identity):
    job, release = blocking_job(services)
    job.progress(3, 10, "")
    try:
        with pytest.raises(
            ValueError, match=r"fake-model on other.json is training, step 3/10: wait .* cancel"
        ):
            tab.start_training(services, "", identity, {"max_steps": 1})
        assert services.jobs.list("train") == [job]
    finally:
        release.set()


def test_cancel_without_a_training_says_so(services):
    with pytest.raises(ValueError, match="no training is running"):
        tab.cancel_training(services)


# -- progress -------------------------------------------------------------------------------------------------


def event(kind, step, **fields):
    return ProgressEvent(kind=kind, step=step, total_steps=10, epoch=0.1 * step, **fields)


def test_progress_shows_step_eta_throughput_losses_and_the_overfitting_warning(services):
    job, release = blocking_job(services)
    try:
        for e in [
            event("step", 1, train_loss=2.5, tokens_per_s=812.0, eta_s=95.0),
            event("eval", 1, eval_loss=2.7),
            event("step", 2, train_loss=2.1, tokens_per_s=820.0, eta_s=80.0),
            event("warning", 2, eval_loss=2.9, message="overfitting: eval loss rose"),
        ]:
            job.event(e)
        job.progress(2, 10, "")
        text = tab.progress_html(job)
        assert "step 2/10 (20%)" in text and "ETA 1m 20s" in text and "820 tokens/s" in text
        assert "loss 2.100" in text and "eval 2.700" in text and "<progress value='2' max='10'" in text
        assert "overfitting: eval loss rose" in tab.warning_text(job)
        frame = tab.loss_frame(job.events)
        assert frame.to_dict("records") == [
            {"step": 1, "loss": 2.5, "series": "train"},
            {"step": 1, "loss": 2.7, "series": "eval"},
            {"step": 2, "loss": 2.1, "series": "train"},
        ]
        assert tab.status(tab.training_job(services))["job_id"] == job.id  # no id (a reloaded page): latest
    finally:
        release.set()


def test_no_training_yet_has_an_empty_state(services):
    assert tab.status(tab.training_job(services))["status"] == "idle"
    assert "No training run yet" in tab.progress_html(None)
    assert tab.warning_text(None) == ""
    assert tab.loss_frame([]).empty


def test_a_failed_job_shows_its_error(services):
    job = services.jobs.start(
        "train", "m on d", lambda job: (_ for _ in ()).throw(ValueError("no answer fits"))
    )
    wait_for(lambda: not job.running, 10)
    assert "failed: no answer fits" in tab.progress_html(job)


@pytest.mark.parametrize(("seconds", "text"), [(None, "?"), (5, "5s"), (75, "1m 15s"), (3725, "1h 02m")])
def test_duration(seconds, text):
    assert tab.duration(seconds) == text


# -- runs -----------------------------------------------------------------------------------------------------


def test_runs_list_reads_the_registry_and_marks_orphaned_running_runs_interrupted(services):
    ws = services.workspace
    done = ws.runs_dir / "done"
    done.mkdir()
    (done / "run.json").write_text(
        json.dumps({"result": {"global_step": 5, "total_steps": 5, "train_loss": 1.5, "eval_loss": 1.7}})
    )
    ws.record_run("done", done, "finished", model="m", dataset="/x/data.json")
    ws.record_run("lost", ws.runs_dir / "lost", "running", model="m")
    rows = {r["run"]: r for r in tab.runs(services)}
    assert rows["done"]["status"] == "finished" and rows["done"]["steps"] == "5/5"
    assert (rows["done"]["train loss"], rows["done"]["dataset"]) == (1.5, "data.json")
    assert rows["lost"]["status"] == "interrupted"
    assert set(tab.run_choices(services)) == {"done", "lost"}


@pytest.mark.parametrize(
    ("status", "message"),
    [("finished", "already finished"), ("cancelled", "no checkpoint to resume from")],
)
def test_resume_refuses_runs_it_cannot_continue(services, status, message):
    services.workspace.record_run("r1", services.workspace.runs_dir / "r1", status)
    with pytest.raises(ValueError, match=message):
        tab.resume_training(services, "r1")
    with pytest.raises(ValueError, match="no training run 'nope'"):
        tab.resume_training(services, "nope")


# -- a real run: start, cancel after a step, resume to the end --------------------------------------------------


def test_start_cancel_and_resume_a_real_run(services, identity):
    settings = {"max_steps": 3, "save_every": 1, "batch_size": 1, "max_seq_len": 128, "eval_every": 3}
    job = tab.start_training(services, "", identity, settings)
    wait_for(lambda: job.done >= 1 or not job.running)
    assert job.running, job.error
    assert "Cancelling" in tab.cancel_training(services)
    wait_for(lambda: not job.running)
    state = tab.status(job)
    assert state["status"] == "cancelled" and 1 <= state["step"] < 3, state
    run_id = state["run_id"]
    assert services.workspace.run(run_id)["status"] == "cancelled"
    assert [r["status"] for r in tab.runs(services)] == ["cancelled"]

    resumed = tab.resume_training(services, run_id)
    wait_for(lambda: not resumed.running)
    assert tab.status(resumed)["status"] == "finished", resumed.error
    assert resumed.result.global_step == 3 and resumed.result.run_id == run_id
    run = services.workspace.run(run_id)
    assert run["status"] == "finished"
    assert (Path(run["path"]) / "adapter_model.safetensors").is_file()
    curve = tab.loss_frame(tab.run_events(services, run_id))
    assert curve[curve.series == "train"].step.tolist() == [1, 2, 3]  # one value per step across the resume
    assert tab.runs(services)[0]["steps"] == "3/3"


# -- will it fit? ---------------------------------------------------------------------------------------------


@pytest.fixture
def gpu_8gb(monkeypatch):
    monkeypatch.setattr("tuner.fit.detect_gpu", lambda: ("Fake GPU", 8 * 2**30))


def test_presets_are_labelled_with_their_memory_and_verdict(services, gpu_8gb):
    labels = dict((value, label) for label, value in tab.model_choices(services))
    assert labels[services.model_id].endswith("GiB, fits)")
    assert labels["mistralai/Mistral-7B-Instruct-v0.3"].endswith("GiB, too big)")


def test_fit_follows_the_knobs(services, gpu_8gb):
    model = "Qwen/Qwen2.5-1.5B-Instruct"
    small = tab.fit_estimate(services, model, {"batch_size": 1, "max_seq_len": 256})
    large = tab.fit_estimate(services, model, {"batch_size": 16, "max_seq_len": 4096})
    assert small.total < large.total and small.fits and not large.fits
    assert "❌" in tab.fit_text(services, model, {"batch_size": 16, "max_seq_len": 4096})
    assert "gradient checkpointing" in tab.fit_text(services, model, {"batch_size": 16, "max_seq_len": 4096})


def test_fit_of_an_unknown_offline_model_says_why(services):
    assert "Cannot estimate for 'nobody/no-such-model'" in tab.fit_text(services, "nobody/no-such-model")


# -- export and the page --------------------------------------------------------------------------------------


def test_a_run_without_an_adapter_cannot_be_exported(services):
    services.workspace.record_run("early", services.workspace.runs_dir / "early", "failed")
    for handler in (tab.adapter_zip, tab.merge_run):
        with pytest.raises(ValueError, match="run early has no adapter yet"):
            handler(services, "early")
        with pytest.raises(ValueError, match="choose a run"):
            handler(services, "")


def test_a_reloaded_page_finds_the_running_training_and_polls_it(services):
    from ui.tabs.train import refresh

    job, release = blocking_job(services)
    job.event(event("step", 1, train_loss=2.5))
    job.progress(1, 10, "")
    try:
        html, frame, _, _, _, timer = refresh(services, None, None)  # no job id in a new page
        assert "fake-model on other.json" in html and timer.constructor_args["active"] is True
        assert frame["loss"].tolist() == [2.5]
    finally:
        release.set()
    wait_for(lambda: not job.running, 10)
    assert refresh(services, job.id, None)[-1].constructor_args["active"] is False  # finished: stop polling
