"""Evaluate tab: run a held-out set through the arms (base, fine-tuned, base+RAG, fine-tuned+RAG), score every
answer with the checks, and look at the results per arm, per check and per example.

The handlers that start and follow a run live in `ui.evaluation`; this module holds the result views (table,
charts, per-example drill-down), lays out the page and wires the events and the API. Results are read back from
the eval run's folder, so runs of earlier sessions show too, and a reload shows a running eval again.

API (gradio_client): /eval_run(data, arms, adapter, index, checks, settings) -> job, /eval_status(job_id),
/eval_cancel(), /eval_checks_infer(data) -> YAML, /eval_results(eval_id) -> summary, /eval_sets().
"""

import gradio as gr
import pandas as pd

from evals.run import EvalConfig
from ui.arms import KIND_CHOICES, adapter_choices
from ui.evaluation import (
    CHECK_SUFFIXES,
    NO_EVAL,
    cancel_eval,
    eval_runs,
    eval_sets,
    eval_status,
    eval_summary,
    infer_checks_yaml,
    load_checks_file,
    start_eval,
    status_text,
)
from ui.forms import config_widgets
from ui.helpers import on_load, user_errors
from ui.services import Services

KNOBS = ("max_new_tokens", "limit", "batch_examples", "k", "temperature", "forgetting")


def results_frame(summary: dict) -> pd.DataFrame:
    """One row per arm: mean scores, each check's pass rate, latency and throughput."""
    rows = []
    for arm, agg in summary["per_arm"].items():
        row = {
            "arm": arm,
            "score": agg["score"],
            "style": agg["style_score"],
            "content": agg["content_score"],
        }
        row |= {f"pass: {c}": rate for c, rate in agg["pass_rate"].items()}
        row |= {"latency s": agg["latency_s"], "tokens/s": agg["tokens_per_s"], "answers": agg["answers"]}
        rows.append(row)
    return pd.DataFrame(rows)


def example_choices(records: list[dict]) -> list[tuple[str, int]]:
    seen: dict[int, str] = {}
    for r in records:
        seen.setdefault(r["example"], f"{r['example'] + 1}. {r['question'][:80]}")
    return [(label, ex) for ex, label in sorted(seen.items())]


def drilldown(records: list[dict], example: int | None) -> tuple[str, pd.DataFrame]:
    """One example: the question and reference, and every arm's answer with its score and failed checks."""
    rows = [r for r in records if r["example"] == example]
    columns = ["arm", "score", "answer", "failed checks", "sources"]
    if not rows:
        return "Pick an example to see every arm's answer.", pd.DataFrame(columns=columns)
    first = rows[0]
    head = f"**Question** (row {first['row']}): {first['question']}\n\n**Reference:** {first['reference'] or '-'}"
    table = [
        {"arm": r["arm"], "score": r["weighted"], "answer": r["answer"],
         "failed checks": ", ".join(f"{n} ({s['reason']})" for n, s in r["scores"].items()
                                    if not s["skipped"] and not s["passed"]),
         "sources": ", ".join(s["label"] for s in r.get("sources", []))}
        for r in rows
    ]  # fmt: skip
    return head, pd.DataFrame(table, columns=columns)


def charts(summary: dict):
    """A matplotlib figure: mean scores per arm (overall, style, content) and each check's pass rate per arm."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    per = summary["per_arm"]
    arms = list(per)
    checks = [c["name"] for c in summary["checks"]]
    fig = Figure(figsize=(11, 3.6), dpi=90)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2]})
    _grouped(
        left,
        ["score", "style", "content"],
        arms,
        lambda arm, key: per[arm]["score" if key == "score" else f"{key}_score"],
        "mean score (0-1)",
    )
    _grouped(right, checks, arms, lambda arm, check: per[arm]["pass_rate"].get(check), "pass rate")  # fmt: skip
    right.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def _grouped(ax, groups: list[str], arms: list[str], value, ylabel: str) -> None:
    import numpy as np

    x = np.arange(len(groups))
    width = 0.8 / max(1, len(arms))
    for i, arm in enumerate(arms):
        heights = [value(arm, g) or 0 for g in groups]
        ax.bar(x + (i - (len(arms) - 1) / 2) * width, heights, width, label=arm)
    ax.set_xticks(x, groups, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)


# -- the page -----------------------------------------------------------------------------------------------


def show_run(services: Services, eval_id: str | None):
    """The results table, charts, example picker and first example of an eval run (empty without one)."""
    if not eval_id:
        return pd.DataFrame(), None, gr.Dropdown(choices=[], value=None), *drilldown([], None)
    summary, records = eval_summary(services, eval_id)
    choices = example_choices(records)
    first = choices[0][1] if choices else None
    return (
        results_frame(summary),
        charts(summary) if summary["per_arm"] else None,
        gr.Dropdown(choices=choices, value=first),
        *drilldown(records, first),
    )


def show_example(services: Services, eval_id: str | None, example: int | None):
    if not eval_id:
        return drilldown([], None)
    return drilldown(eval_summary(services, eval_id)[1], example)


def run_choices(services: Services) -> list[tuple[str, str]]:
    return [
        (
            f"{r['id']} ({r['status']}, {', '.join(r['arms'])}{': ' + r['decision'] if r['decision'] else ''})",
            r["id"],
        )
        for r in eval_runs(services)
    ]


def poll(services: Services, job_id: str | None, eval_id: str | None):
    """Status line, timer, and the run picker (switched to the job's eval run once it has finished)."""
    job = services.jobs.get(job_id) or next(iter(services.jobs.list("eval")), None)
    finished = eval_status(job).get("eval_id")
    choices = run_choices(services)
    selected = finished if finished and job_id else eval_id
    return (
        status_text(job),
        gr.Timer(active=bool(job and job.running)),
        gr.Dropdown(choices=choices, value=selected if selected in dict(choices).values() else None),
    )


def build(services: Services) -> None:
    gr.Markdown(
        "Run a held-out set through the arms and score every answer. The checks default to the style profile "
        "inferred from the reference answers; edit the YAML or load a checks file.",
        elem_classes="help",
    )
    sets, adapters, indexes = eval_sets(services), adapter_choices(services), services.index_names()
    job_id = gr.State(None)
    timer = gr.Timer(1.0, active=False)
    with gr.Row():
        with gr.Column(scale=2):
            data = gr.Dropdown(sets, value=sets[0][1] if sets else None, label="Eval set",
                               info="a dataset from the Data tab, or a training run's held-out split")  # fmt: skip
            arms = gr.CheckboxGroup(KIND_CHOICES, value=["base"], label="Arms")
            adapter = gr.Dropdown(adapters, value=adapters[0][1] if adapters else None,
                                  label="Adapter (fine-tuned arms)", info=None if adapters else "no adapter yet")  # fmt: skip
            index = gr.Dropdown(indexes, value=indexes[0] if indexes else None,
                                label="Knowledge base (RAG arms)", info=None if indexes else "no knowledge base yet")  # fmt: skip
            with gr.Accordion("Settings", open=False):
                knobs = config_widgets(EvalConfig, KNOBS)
        with gr.Column(scale=3):
            with gr.Row():
                infer = gr.Button("Infer the style profile from the eval set")
                checks_file = gr.File(
                    label="or load a checks file", file_types=list(CHECK_SUFFIXES), height=80
                )
            checks = gr.Code("", language="yaml", label="Checks (YAML; empty = inferred when the run starts)",
                             interactive=True, lines=12)  # fmt: skip
    with gr.Row():
        run = gr.Button("Run eval", variant="primary")
        cancel = gr.Button("Cancel", variant="stop")
    status = gr.Markdown(NO_EVAL)
    runs = gr.Dropdown(run_choices(services), value=None, label="Eval run", info="results of this run below")
    table = gr.Dataframe(label="Results per arm", interactive=False)
    plot = gr.Plot(label="Scores and pass rates per arm")
    example = gr.Dropdown([], label="Example", info="every arm's answer to one question")
    question = gr.Markdown()
    answers = gr.Dataframe(label="Answers", wrap=True, interactive=False)

    def on_run(values: dict):
        settings = {name: values[w] for name, w in knobs.items()}
        job = start_eval(
            services, values[data], values[arms], values[adapter], values[index], values[checks], settings
        )
        return job.id, gr.Timer(active=True), status_text(job)

    run.click(user_errors(on_run), {data, arms, adapter, index, checks, *knobs.values()}, [job_id, timer, status],
              api_visibility="private")  # fmt: skip
    cancel.click(user_errors(lambda: cancel_eval(services)), None, status, api_visibility="private")
    infer.click(user_errors(lambda d: infer_checks_yaml(services, d)), data, checks, api_visibility="private")
    checks_file.upload(user_errors(lambda f: load_checks_file(services, f)), checks_file, checks,
                       api_visibility="private")  # fmt: skip
    polled = user_errors(lambda j, e: poll(services, j, e))
    timer.tick(polled, [job_id, runs], [status, timer, runs], api_visibility="private")
    on_load(polled, [job_id, runs], [status, timer, runs])
    runs.change(user_errors(lambda e: show_run(services, e)), runs, [table, plot, example, question, answers],
                api_visibility="private")  # fmt: skip
    example.change(user_errors(lambda e, x: show_example(services, e, x)), [runs, example], [question, answers],
                   api_visibility="private")  # fmt: skip
    for picker, fresh in ((data, lambda: eval_sets(services)), (adapter, lambda: adapter_choices(services)),
                          (index, services.index_names)):  # fmt: skip
        picker.focus(lambda fresh=fresh: gr.Dropdown(choices=fresh()), None, picker, api_visibility="private")
    _api(services)


def _api(services: Services) -> None:
    """The eval endpoints for gradio_client (typed; each returns plain JSON)."""

    def eval_run(data: str, arms: list[str], adapter: str = "", index: str = "", checks: str = "",
                 settings: dict | None = None) -> dict:  # fmt: skip
        """Start an eval run: data is 'dataset:<name>' or 'run:<id>'; arms from base, ft, rag, ft+rag."""
        return eval_status(start_eval(services, data, arms, adapter, index, checks, settings))

    def eval_status_api(job_id: str = "") -> dict:
        """The eval job's progress (the latest one when job_id is empty)."""
        return eval_status(services.jobs.get(job_id) or next(iter(services.jobs.list("eval")), None))

    def eval_cancel() -> str:
        """Stop the running eval after the batch in flight."""
        return cancel_eval(services)

    def eval_checks_infer(data: str) -> str:
        """The style profile inferred from an eval set's references, as editable YAML."""
        return infer_checks_yaml(services, data)

    def eval_results(eval_id: str) -> dict:
        """The summary of an eval run: per-arm aggregates, win rates, checks and forgetting."""
        return eval_summary(services, eval_id)[0]

    def eval_sets_api() -> list:
        """The eval sets to choose from, as [label, value] pairs."""
        return [list(pair) for pair in eval_sets(services)]

    gr.api(user_errors(eval_run), api_name="eval_run")
    gr.api(user_errors(eval_status_api), api_name="eval_status")
    gr.api(user_errors(eval_cancel), api_name="eval_cancel")
    gr.api(user_errors(eval_checks_infer), api_name="eval_checks_infer")
    gr.api(user_errors(eval_results), api_name="eval_results")
    gr.api(user_errors(eval_sets_api), api_name="eval_sets")
