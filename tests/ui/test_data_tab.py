"""Data tab handlers: format detection and override, column mapping, the report views, saving, bad uploads."""

from __future__ import annotations

import json

import gradio as gr
import pytest

from ui.helpers import bind
from ui.tabs import data

DEFAULTS = ("auto", data.NONE, data.NONE, data.NONE, 512, 0.2, 7)


def validate(services, path, *options):
    return bind(data.validate_upload, services)(str(path), *(options or DEFAULTS))


@pytest.fixture
def qa_csv(tmp_path):
    path = tmp_path / "qa.csv"
    rows = ["q,a,notes", *(f"What is {i}?,It is {i}.,n{i}" for i in range(8)), "What is 0?,It is 0.,n0", ",,"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_upload_is_validated_saved_and_reported(services, alpaca_file):
    status, preview, summary, skipped, hist, saved = validate(services, alpaca_file)
    assert "Saved as **demo.json**" in status
    assert (services.workspace.datasets_dir / "demo.json").read_bytes() == alpaca_file.read_bytes()
    assert services.dataset_options("demo.json") == {
        "fmt": "alpaca", "columns": None, "eval_fraction": 0.2, "seed": 7, "max_seq_len": 512,
    }  # fmt: skip
    assert list(preview.columns) == ["row", "system", "user", "assistant"] and len(preview) == 12
    assert preview.loc[0, "user"] == "Question number 0?"
    assert "**12** usable of 12 rows (alpaca)" in summary and "10** train / **2** eval" in summary
    assert skipped.empty
    assert sum(count for _, count in hist.value["data"]) == 12
    assert any("demo.json" in choice for choice in saved.choices)  # other tests may have saved datasets too


def test_inspect_detects_the_columns_of_a_csv(services, qa_csv):
    detected, prompt, _, _ = bind(data.inspect_file, services)(str(qa_csv))
    assert "Could not detect the format" in detected
    assert [c[0] for c in prompt.choices] == [data.NONE, "q", "a", "notes"]


def test_column_mapping_reads_two_column_data_and_reports_bad_rows(services, qa_csv):
    _, preview, summary, skipped, _, _ = validate(services, qa_csv, "auto", "q", "a", data.NONE, 512, 0.1, 1)
    assert services.dataset_options("qa.csv")["columns"] == {"prompt": "q", "response": "a", "system": None}
    assert len(preview) == 9 and preview.loc[0, "assistant"] == "It is 0."
    assert "**1** duplicates" in summary and "row 9 = row 1" in summary
    assert list(skipped["row"]) == [10] and skipped.loc[0, "reason"]


def test_truncation_is_reported(services, alpaca_file):
    summary = validate(services, alpaca_file, "auto", data.NONE, data.NONE, data.NONE, 40, 0.1, 1)[2]
    assert "Truncation: **" in summary and "exceed max_seq_len 40" in summary


@pytest.mark.parametrize(
    ("name", "content", "options", "message"),
    [
        ("notes.txt", b"hello", DEFAULTS, "not a supported dataset type"),
        ("big.json", b"[" + b" " * (2 * 2**20) + b"]", DEFAULTS, "over the 1 MB upload limit"),
        ("demo.json", json.dumps([{"a": 1}]).encode(), DEFAULTS, "cannot tell the format"),
        ("demo.json", b"[]", DEFAULTS, "holds no rows"),
        ("qa.csv", b"q,a\nx,y\n", ("auto", "q", data.NONE, data.NONE, 512, 0.1, 1), "pick both"),
        (
            "qa.csv",
            b"q,a\nx,y\n",
            ("alpaca", "q", "a", data.NONE, 512, 0.1, 1),
            "only applies to the 'columns'",
        ),
    ],
)
def test_bad_uploads_are_user_errors(services, tmp_path, name, content, options, message):
    path = tmp_path / name
    path.write_bytes(content)
    before = sorted(p.name for p in services.workspace.datasets_dir.iterdir())
    with pytest.raises(gr.Error, match=message):
        validate(services, path, *options)
    assert sorted(p.name for p in services.workspace.datasets_dir.iterdir()) == before


def test_no_upload_is_a_user_error(services):
    with pytest.raises(gr.Error, match="no file uploaded"):
        bind(data.validate_upload, services)(None, *DEFAULTS)


def test_path_like_upload_names_are_saved_inside_the_workspace(services, alpaca_file, tmp_path):
    odd = tmp_path / "..\\..\\evil name.json"  # a legal file name on Linux, a path on Windows
    odd.write_bytes(alpaca_file.read_bytes())
    status = validate(services, odd)[0]
    saved = [p for p in services.workspace.datasets_dir.iterdir() if "evil" in p.name]
    assert [p.name for p in saved] == ["evil_name.json"] and "evil_name.json" in services.dataset_names()
    assert "Saved as **evil_name.json**" in status
