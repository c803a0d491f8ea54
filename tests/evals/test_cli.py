import json

import pytest

from evals.__main__ import main
from evals.checks import load_checks
from evals.votes import create_comparison, record_vote


@pytest.fixture
def identity_file(shared_data):
    return shared_data / "llamafactory" / "identity.json"


def test_checks_infer_writes_an_editable_profile(identity_file, tmp_path, capsys):
    out = tmp_path / "profile.yaml"
    assert (
        main(
            [
                "checks",
                "infer",
                str(identity_file),
                "--set",
                "name=Tuna",
                "--set",
                "author=Acme",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    checks = {c.type: c for c in load_checks(out)}
    assert "tuna" in checks["persona"].params["markers"]
    assert "word-count" in checks
    assert "proposed" in capsys.readouterr().err


def test_checks_infer_prints_yaml_for_a_plain_jsonl_file(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": f"q{i}", "completion": json.dumps({"id": i})}) + "\n" for i in range(6))
    )
    assert main(["checks", "infer", str(data)]) == 0
    assert "type: is-json" in capsys.readouterr().out


def test_checks_validate_reports_the_bad_entry(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("- type: is-json\n- type: regex\n  value: '(('\n")
    assert main(["checks", "validate", str(path)]) == 2
    assert "c.yaml[1] (regex): field 'value'/'pattern' invalid regex" in capsys.readouterr().err


def test_checks_types_lists_every_type(capsys):
    assert main(["checks", "types"]) == 0
    out = capsys.readouterr().out
    assert "is-json (format)" in out and "support-proxy (rag)" in out


def test_leaderboard_table_json_and_csv(tmp_path, capsys):
    from common.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    for winner in ("a", "a", "tie"):
        record_vote(ws, create_comparison(ws, "p", "ft", "x", "base", "y", shuffle=False), winner)
    assert main(["leaderboard", "--workspace", str(ws.root), "--rounds", "50"]) == 0
    table = capsys.readouterr().out
    assert table.index("ft ") < table.index("base ") and "2-0-1-0" in table
    csv_path = tmp_path / "votes.csv"
    assert (
        main(["leaderboard", "--json", "--workspace", str(ws.root), "--rounds", "50", "--csv", str(csv_path)])
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [r["arm"] for r in rows] == ["ft", "base"] and rows[0]["votes"] == 3
    assert len(csv_path.read_text().splitlines()) == 4


def test_leaderboard_without_votes(tmp_path, capsys):
    assert main(["leaderboard", "--workspace", str(tmp_path / "empty")]) == 0
    assert "no votes yet" in capsys.readouterr().out


def test_checks_infer_accepts_a_file_of_answers_only(tmp_path, capsys):
    data = tmp_path / "answers.json"
    data.write_text(
        json.dumps([{"answer": f"Ahoy! Order {i} ships today. Fair winds, Tuna"} for i in range(6)])
    )
    assert main(["checks", "infer", str(data)]) == 0
    out = capsys.readouterr().out
    assert "prefix: Ahoy!" in out and "suffix: Fair winds, Tuna" in out


def test_checks_infer_on_an_unusable_file_reports_the_loader_error(tmp_path, capsys):
    data = tmp_path / "bad.json"
    data.write_text(json.dumps([{"colour": "red"}, {"colour": "blue"}]))
    assert main(["checks", "infer", str(data)]) == 2
    assert "bad.json" in capsys.readouterr().err
