"""Report tab: build and download the decision report of an eval run (`evals.report`), with its recommendation,
and the blind-vote leaderboard with the votes as CSV (`evals.votes`).

In stakeholder mode the tab only reads: the report is rendered into a temp file for download (with the latest
votes) and nothing in the workspace is written; no eval run can be started from here in any mode.

API (gradio_client): /report(eval_id) -> [report.html, recommendation], /report_runs() -> eval runs,
/votes_csv() -> votes.csv.
"""

from pathlib import Path

import gradio as gr
import pandas as pd

from ui.downloads import downloadable, temp_file
from ui.evaluation import eval_folder, eval_runs
from ui.helpers import on_load, user_errors
from ui.services import Services

BOARD_COLUMNS = ["arm", "Bradley-Terry", "BT 95% CI", "Elo", "Elo 95% CI", "votes", "W-L-T-both bad"]
NO_REPORT = "No eval run yet: run one in the Evaluate tab, then build its report here."
NO_VOTES = "No blind votes yet: share the Arena tab and let people vote."


def report_choices(services: Services) -> list[tuple[str, str]]:
    """(label, id) of the eval runs a report can be built for (finished, cancelled or failed part-way)."""
    return [
        (f"{r['id']} ({r['status']}, {', '.join(r['arms'])})", r["id"])
        for r in eval_runs(services)
        if r["status"] != "running"
    ]


def recommendation_text(rec: dict) -> str:
    """The recommendation as Markdown: decision and headline, the reasons, the caveats."""
    lines = [f"### Recommendation: {rec['decision']}", rec["headline"], ""]
    lines += [f"- {reason}" for reason in rec["reasons"]]
    if rec.get("caveats"):
        lines += ["", "**Caveats**", *[f"- {c}" for c in rec["caveats"]]]
    return "\n".join(lines)


def _render(services: Services, folder: Path) -> tuple[Path, dict]:
    """report.html in a temp folder, the workspace untouched (stakeholder mode); returns it and the summary."""
    from evals import results as res
    from evals.decision import recommend
    from evals.report import charts, render_html, report_data

    meta, records, forgetting = res.read_run(folder)
    summary = res.summarize(meta, records, forgetting)
    summary["recommendation"] = recommend(summary)
    data = report_data(summary, records, services.workspace)
    path = temp_file(f"report-{meta['id']}.html")
    path.write_text(render_html(data, charts(data)), encoding="utf-8")
    return path, summary


def build_report(services: Services, eval_id: str) -> tuple[str, str]:
    """Build the report of eval run `eval_id` with the latest votes; returns (report.html to download, the
    recommendation as Markdown). Outside stakeholder mode the run folder's summary and report are rewritten.

    Raises:
        ValueError: no run chosen, the run is gone, or it holds no results yet.
    """
    from evals.report import HTML_FILE
    from evals.run import finish_run

    if not eval_id:
        raise ValueError(NO_REPORT)
    folder = eval_folder(services, eval_id)
    if services.stakeholder:
        path, summary = _render(services, folder)
    else:
        summary = finish_run(folder, workspace=services.workspace)
        path = folder / HTML_FILE
    if not summary["examples_done"]:
        raise ValueError(f"eval run {eval_id} has no scored example yet: run it again in the Evaluate tab")
    return downloadable(path, f"report-{eval_id}.html"), recommendation_text(summary["recommendation"])


def leaderboard_frame(services: Services) -> pd.DataFrame:
    """The blind-vote leaderboard: Bradley-Terry and Elo with 95% intervals, votes and record per arm."""
    from evals.votes import leaderboard

    rows = [
        {"arm": r.arm, "Bradley-Terry": round(r.bt), "BT 95% CI": f"{r.bt_low:.0f}-{r.bt_high:.0f}",
         "Elo": round(r.elo), "Elo 95% CI": f"{r.elo_low:.0f}-{r.elo_high:.0f}", "votes": r.votes,
         "W-L-T-both bad": f"{r.wins}-{r.losses}-{r.ties}-{r.both_bad}"}
        for r in leaderboard(services.workspace, rounds=200)
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=BOARD_COLUMNS)


def votes_csv(services: Services) -> str:
    """Every vote (prompt, both answers, arms, winner) as a CSV file to download."""
    from evals.votes import export_votes_csv

    return str(export_votes_csv(services.workspace, temp_file("votes.csv")))


def refresh(services: Services):
    """The run picker and the leaderboard (on page load and on demand)."""
    choices = report_choices(services)
    board = leaderboard_frame(services)
    return (
        gr.Dropdown(choices=choices, value=choices[0][1] if choices else None),
        board,
        "" if len(board) else NO_VOTES,
    )


def build(services: Services) -> None:
    gr.Markdown(
        "The decision report of an eval run: which arm wins and why, scores per check, head-to-head, blind "
        "votes, cost and forgetting, with example answers. One HTML file, nothing loaded from outside.",
        elem_classes="help",
    )
    choices = report_choices(services)
    with gr.Row():
        run = gr.Dropdown(choices, value=choices[0][1] if choices else None, label="Eval run",
                          info=None if choices else NO_REPORT, allow_custom_value=True, scale=3)  # fmt: skip
        make = gr.Button("Build report", variant="primary", scale=1)
    recommendation = gr.Markdown()
    report_file = gr.File(label="Report (HTML)", interactive=False)
    gr.Markdown("### Blind votes")
    frame = leaderboard_frame(services)
    board = gr.Dataframe(frame, label="Leaderboard", interactive=False)
    empty = gr.Markdown("" if len(frame) else NO_VOTES)
    with gr.Row():
        refresh_button = gr.Button("Refresh")
        export = gr.Button("Export votes (CSV)")
    csv_file = gr.File(label="Votes (CSV)", interactive=False)

    make.click(user_errors(lambda eval_id: build_report(services, eval_id)), run, [report_file, recommendation],
               api_name="report")  # fmt: skip
    export.click(user_errors(lambda: votes_csv(services)), None, csv_file, api_name="votes_csv")
    refresh_button.click(lambda: refresh(services), None, [run, board, empty], api_visibility="private")
    on_load(lambda: refresh(services), None, [run, board, empty])
    run.focus(lambda: gr.Dropdown(choices=report_choices(services)), None, run, api_visibility="private")

    def report_runs() -> list:
        """The eval runs a report can be built for, as [label, id] pairs."""
        return [list(pair) for pair in report_choices(services)]

    gr.api(report_runs, api_name="report_runs")
