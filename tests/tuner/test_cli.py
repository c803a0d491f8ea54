"""`python -m tuner ...`: each subcommand reaches its function; errors are one line and exit code 2."""

from __future__ import annotations

import json

import pytest

from tuner.__main__ import main


@pytest.fixture
def tiny_dataset(tmp_path):
    rows = [{"instruction": f"Say the number {i}.", "output": f"The number is {i}."} for i in range(6)]
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(rows))
    return path


def test_models_lists_the_embedded_default(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "SmolLM2-135M-Instruct (default)" in out and "embedded" in out


def test_validate_json_reports_rows(tiny_dataset, models_dir, capsys):
    assert main(["validate", str(tiny_dataset), "--json", "--workspace", str(models_dir.parent)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows_read"] == 6 and report["usable"] == 6


def test_fit_json_has_a_total(capsys):
    assert main(["fit", "--json", "--batch-size", "2", "--max-seq-len", "256"]) == 0
    estimate = json.loads(capsys.readouterr().out)
    assert estimate["total"] > estimate["base_weights"] > 0
    assert estimate["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "hi", "--model", "nobody/none-xyz"], "unreachable"),
        (["validate", "/no/such/file.json"], "file.json"),
        (["export", "."], "adapter"),
        (["resume", "."], "not a training run"),
    ],
)
def test_errors_are_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_train_then_export_zip(tiny_dataset, workspace, capsys):
    run_dir = workspace.runs_dir / "cli"
    argv = ["train", str(tiny_dataset), "--output", str(run_dir), "--workspace", str(workspace.root)]
    assert (
        main([*argv, "--max-steps", "1", "--batch-size", "2", "--max-seq-len", "64", "--eval-fraction", "0"])
        == 0
    )
    assert (run_dir / "adapter_model.safetensors").is_file()
    assert "finished" in capsys.readouterr().out
    assert main(["export", str(run_dir), "--zip", "--workspace", str(workspace.root)]) == 0
    zipped = capsys.readouterr().out.split("zip: ", 1)[1].strip()
    import zipfile

    assert "adapter_config.json" in {n.split("/")[-1] for n in zipfile.ZipFile(zipped).namelist()}
