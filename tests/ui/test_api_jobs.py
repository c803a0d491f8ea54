"""The background-job endpoints over real HTTP with gradio_client: train, evaluate and report, end to end.

The app is launched in-process on 127.0.0.1 at a free port, on its own workspace (so its training run does not
show in the other UI tests' registry), sharing the session's model.
"""

import csv
import json
import socket
import time
from pathlib import Path

import pytest
from gradio_client import Client

IDENTITY_ROWS = 12
TRAIN_SETTINGS = {"max_steps": 2, "batch_size": 1, "max_seq_len": 128, "four_bit": False, "eval_every": 2}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_services(tmp_path_factory, models_dir, lm, shared_data):
    """Services on a fresh workspace holding a slice of identity.json as a saved dataset."""
    from common.workspace import Workspace
    from ui.services import Services

    ws = Workspace(tmp_path_factory.mktemp("api-jobs") / "ws")
    (ws.root / "models").rmdir()
    (ws.root / "models").symlink_to(models_dir, target_is_directory=True)
    rows = json.loads((shared_data / "llamafactory" / "identity.json").read_text(encoding="utf-8"))
    (ws.datasets_dir / "identity.json").write_text(json.dumps(rows[:IDENTITY_ROWS]), encoding="utf-8")
    services = Services(ws)
    services.set_lm(lm)
    return services


@pytest.fixture(scope="module")
def client(app_services):
    from ui import build_app

    port = free_port()
    demo = build_app(app_services).queue(default_concurrency_limit=4)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    demo.close()


def poll(client: Client, api_name: str, job_id: str, timeout: float = 900.0) -> dict:
    deadline = time.time() + timeout
    while (state := client.predict(job_id, api_name=api_name))["status"] == "running":
        if time.time() > deadline:
            raise TimeoutError(f"{api_name} still running: {state}")
        time.sleep(1)
    return state


@pytest.fixture(scope="module")
def trained(client) -> dict:
    """A 2-step training run started and followed through the API; a second start meanwhile is refused."""
    started = client.predict("", "identity.json", TRAIN_SETTINGS, api_name="/train_start")
    assert started["status"] == "running" and started["name"].endswith("on identity.json")
    with pytest.raises(Exception, match="is training") as refused:
        client.predict("", "identity.json", TRAIN_SETTINGS, api_name="/train_start")
    finished = poll(client, "/train_status", started["job_id"])
    return {"started": started, "finished": finished, "refused": str(refused.value)}


def test_starting_training_without_a_dataset_is_refused_with_what_to_do(client):
    with pytest.raises(Exception, match="choose a dataset to train on"):
        client.predict("", "", {}, api_name="/train_start")
    assert client.predict("", api_name="/train_status")["status"] in ("idle", "running", "finished")


def test_bad_settings_over_the_api_name_the_field(client):
    with pytest.raises(Exception, match="lora_r must be a positive integer"):
        client.predict("", "identity.json", {"lora_r": -1}, api_name="/train_start")


def test_training_through_the_api_runs_once_and_finishes(client, trained):
    assert trained["started"]["name"] in trained["refused"]  # the refusal names the run that is training
    state = trained["finished"]
    assert state["status"] == "finished" and state["step"] == state["total_steps"] == 2, state
    assert state["train_loss"] is not None and state["run_id"]
    runs = client.predict(api_name="/train_runs")
    assert [(r["run"], r["status"], r["steps"]) for r in runs] == [(state["run_id"], "finished", "2/2")]


def test_cancel_with_nothing_running_is_an_error_not_a_crash(client, trained):
    with pytest.raises(Exception, match="no training is running"):
        client.predict(api_name="/train_cancel")
    assert client.predict(trained["started"]["job_id"], api_name="/train_status")["status"] == "finished"


def test_fit_estimate_over_the_api(client):
    estimate = client.predict("Qwen/Qwen2.5-7B-Instruct", {"batch_size": 1}, api_name="/train_fit")
    assert (
        estimate["total"] > estimate["base_weights"] > 0 and estimate["model"] == "Qwen/Qwen2.5-7B-Instruct"
    )


def test_eval_of_the_trained_adapter_then_its_report(client, trained, tmp_path):
    run_id = trained["finished"]["run_id"]
    sets = [value for _, value in client.predict(api_name="/eval_sets")]
    assert sets == ["dataset:identity.json", f"run:{run_id}"]
    yaml_text = client.predict("dataset:identity.json", api_name="/eval_checks_infer")
    assert "rouge-l" in yaml_text
    settings = {"max_new_tokens": 8, "forgetting": False, "limit": 2}
    started = client.predict(
        "dataset:identity.json", ["base", "ft"], run_id, "", yaml_text, settings, api_name="/eval_run"
    )
    state = poll(client, "/eval_status", started["job_id"])
    assert state["status"] == "finished" and state["done"] == 2 and state["decision"], state

    summary = client.predict(state["eval_id"], api_name="/eval_results")
    assert [a["kind"] for a in summary["arms"]] == ["base", "ft"] and summary["examples_done"] == 2

    assert [value for _, value in client.predict(api_name="/report_runs")] == [state["eval_id"]]
    report_path, recommendation = client.predict(state["eval_id"], api_name="/report")
    assert "<h2>Recommendation</h2>" in Path(report_path).read_text(encoding="utf-8")
    assert recommendation.startswith("### Recommendation: ")


def test_votes_csv_downloads_over_the_api(client):
    path = client.predict(api_name="/votes_csv")
    with open(path, encoding="utf-8", newline="") as f:
        header = next(csv.reader(f))
    assert header[:3] == ["comparison_id", "created", "voter"] and header[-1] == "winner_arm"


def test_the_trained_adapter_downloads_as_a_zip_and_merges(client, trained):
    import zipfile

    run_id = trained["finished"]["run_id"]
    path = client.predict(run_id, api_name="/train_download")
    assert Path(path).name == f"adapter-{run_id}.zip"
    with zipfile.ZipFile(path) as zf:
        assert {"adapter_config.json", "adapter_model.safetensors"} <= set(zf.namelist())
    message = client.predict(run_id, api_name="/train_merge")
    folder = Path(message.split("`")[1])
    assert (folder / "config.json").is_file() and list(folder.glob("*.safetensors"))
    assert not (folder / "adapter_config.json").exists()  # a plain model, not an adapter


def test_exporting_an_unknown_run_says_so(client):
    with pytest.raises(Exception, match="no training run 'nope'"):
        client.predict("nope", api_name="/train_download")
