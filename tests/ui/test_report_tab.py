"""Report tab handlers without a browser: the decision report of an eval run (also read-only in stakeholder
mode), the vote leaderboard and the votes CSV."""

import csv
import shutil
import tempfile
from pathlib import Path

import pytest

from evals.votes import create_comparison, record_vote
from ui.evaluation import eval_runs
from ui.tabs import report as tab

EVAL_SET = "report-evalset.json"


@pytest.fixture(scope="module")
def eval_id(services, alpaca_file) -> str:
    """A finished eval run (base arm, 2 examples) in the session workspace."""
    from evals.run import EvalConfig, run_eval

    path = services.workspace.datasets_dir / EVAL_SET
    shutil.copy(alpaca_file, path)
    config = EvalConfig(data=str(path), arms="base", limit=2, max_new_tokens=8, forgetting=False)
    with services.generating() as lm:
        result = run_eval(config, lm=lm, embedder=services.embedder(), workspace=services.workspace)
    return result.run_id


@pytest.fixture
def voted(workspace):
    """Services on a fresh workspace with three blind votes (the session workspace keeps its own)."""
    from ui.services import Services

    for winner in ("a", "a", "tie"):
        cid = create_comparison(
            workspace, "Who are you?", "base", "I am a bot.", "fine-tuned", "I am Orbit.", False
        )
        record_vote(workspace, cid, winner, voter="tester")
    return Services(workspace)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_the_report_is_built_with_its_recommendation_and_served_from_the_temp_folder(services, eval_id):
    html_path, recommendation = tab.build_report(services, eval_id)
    page = Path(html_path).read_text(encoding="utf-8")
    assert "<h2>Recommendation</h2>" in page and eval_id in page
    assert Path(html_path).is_relative_to(tempfile.gettempdir())
    assert not Path(html_path).is_relative_to(services.workspace.root)
    assert recommendation.startswith("### Recommendation: ")
    folder = Path(dict((r["id"], r["path"]) for r in eval_runs(services))[eval_id])
    assert (folder / "report.html").read_text(encoding="utf-8").split("Generated")[1:] == page.split(
        "Generated"
    )[1:]


def test_stakeholder_mode_reads_and_writes_nothing_in_the_workspace(services, eval_id):
    from ui.services import Services

    viewer = Services(services.workspace, stakeholder=True)
    folder = Path(dict((r["id"], r["path"]) for r in eval_runs(services))[eval_id])
    before = snapshot(folder)
    html_path, recommendation = tab.build_report(viewer, eval_id)
    assert snapshot(folder) == before
    assert "<h2>Recommendation</h2>" in Path(html_path).read_text(encoding="utf-8")
    assert recommendation.startswith("### Recommendation: ")


def test_report_choices_list_eval_runs_but_not_running_ones(services, eval_id):
    with services.workspace.db() as con:
        con.execute(
            "INSERT INTO eval_runs (id, path, arms, status, created, updated) VALUES ('busy', '/x', '[]', 'running', 0, 0)"
        )
    try:
        ids = [value for _, value in tab.report_choices(services)]
        assert eval_id in ids and "busy" not in ids
    finally:
        with services.workspace.db() as con:
            con.execute("DELETE FROM eval_runs WHERE id = 'busy'")


@pytest.mark.parametrize(
    ("choice", "message"), [("", "No eval run yet"), ("nope", "eval run 'nope' is gone")]
)
def test_a_missing_eval_run_says_what_to_do(services, choice, message):
    with pytest.raises(ValueError, match=message):
        tab.build_report(services, choice)


def test_the_leaderboard_ranks_the_arms_by_the_votes(voted):
    board = tab.leaderboard_frame(voted)
    assert board["arm"].tolist() == ["base", "fine-tuned"]
    assert board["votes"].tolist() == [3, 3]
    assert board["W-L-T-both bad"].tolist() == ["2-0-1-0", "0-2-1-0"]
    assert board["Bradley-Terry"].iloc[0] > board["Bradley-Terry"].iloc[1]


def test_votes_export_as_csv(voted):
    with open(tab.votes_csv(voted), encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["winner_arm"] for r in rows] == ["base", "base", ""]
    assert rows[0]["answer_b"] == "I am Orbit." and rows[0]["voter"] == "tester"


def test_no_votes_yet_has_an_empty_state(workspace):
    from ui.services import Services

    picker, board, note = tab.refresh(Services(workspace))
    assert board.empty and note == tab.NO_VOTES
    assert picker.constructor_args["choices"] == []
