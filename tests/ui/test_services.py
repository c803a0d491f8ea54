"""Services: safe names, background jobs (progress, failures, one training at a time), saved datasets."""

from __future__ import annotations

import threading
import time

import pytest

from ui.services import JobConflict, Jobs, safe_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("data.json", "data.json"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\win.ini", "win.ini"),
        ("my data (v2).json", "my_data_v2_.json"),
        ("/", "upload"),
        (".hidden.json", "hidden.json"),
    ],
)
def test_safe_name_keeps_files_in_their_folder(name, expected):
    assert safe_name(name) == expected


def wait(job, timeout=10.0):
    end = time.time() + timeout
    while job.running and time.time() < end:
        time.sleep(0.01)
    return job


def test_job_reports_progress_and_result():
    jobs = Jobs()
    gate = threading.Event()

    def work(job):
        job.progress(1, 4, "one")
        gate.wait(5)
        return 42

    job = jobs.start("index", "kb", work)
    time.sleep(0.05)
    assert jobs.get(job.id).running and job.fraction() == 0.25 and "25%" in job.summary()
    gate.set()
    assert wait(job).status == "finished" and job.result == 42 and jobs.latest("index", "kb") is job


def test_failed_job_keeps_its_error():
    job = wait(Jobs().start("index", "kb", lambda job: 1 / 0))
    assert job.status == "failed" and "ZeroDivisionError" in job.error


def test_only_one_training_at_a_time():
    jobs, gate = Jobs(), threading.Event()
    first = jobs.start("train", "run-1", lambda job: gate.wait(5))
    with pytest.raises(JobConflict, match="train 'run-1' is still running"):
        jobs.start("train", "run-2", lambda job: None)
    jobs.start("index", "kb", lambda job: None)  # other kinds still start
    gate.set()
    wait(first)
    assert wait(jobs.start("train", "run-2", lambda job: None)).status == "finished"


def test_saved_dataset_unknown_name_says_where_to_upload(ui_workspace):
    from ui.services import Services

    with pytest.raises(ValueError, match="upload one in the Data tab"):
        Services(ui_workspace).dataset_path("missing.json")
