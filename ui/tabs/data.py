"""Data tab: upload a dataset, see how it is read (format, column mapping) and its validation report.

A dataset that validates is saved into the workspace (`datasets/<safe name>` plus how to read it), where the
Train, Compare, Arena and Evaluate tabs pick it. Handlers are plain functions of (services, values).
"""

from __future__ import annotations

import itertools
import shutil

import gradio as gr
import pandas as pd

from tuner.data import FORMATS, detect_format, load_dataset
from tuner.data_files import RowError, read_rows
from tuner.validate import ValidationReport, validate
from ui.helpers import bind, check_upload
from ui.services import DATASET_SUFFIXES, Services

NONE = "(none)"
PREVIEW_ROWS = 20


def file_fields(services: Services, file) -> tuple[list[str], str]:
    """The field names of an uploaded file's first rows and a sentence on the format detected from them."""
    path, name = check_upload(file, DATASET_SUFFIXES, services.max_upload_mb, "dataset")
    rows = read_rows(path, int(services.max_upload_mb * 2**20))
    fields: dict[str, None] = {}
    for _, row in rows[:100]:
        if isinstance(row, dict) and not isinstance(row, RowError):
            fields.update(dict.fromkeys(str(k) for k in row))
    try:
        fmt, columns = detect_format(rows, name)
    except ValueError as e:
        return list(fields), f"Could not detect the format: {e}"
    mapping = f" (prompt = `{columns['prompt']}`, response = `{columns['response']}`)" if columns else ""
    return list(fields), f"Detected format: **{fmt}**{mapping}, {len(rows)} rows."


def inspect_file(services: Services, file):
    """On upload: the detected format and the file's fields as choices for the column mapping."""
    if file is None:
        empty = gr.Dropdown(choices=[NONE], value=NONE)
        return "Drop a dataset file above.", empty, empty, empty
    fields, detected = file_fields(services, file)
    choices = [NONE, *fields]
    return (
        detected,
        gr.Dropdown(choices=choices, value=NONE),
        gr.Dropdown(choices=choices, value=NONE),
        gr.Dropdown(choices=choices, value=NONE),
    )


def column_mapping(fmt: str, prompt: str | None, response: str | None, system: str | None) -> dict | None:
    """The `columns` argument of `load_dataset` from the mapping dropdowns (None when nothing is mapped)."""
    prompt, response = (None if v in (None, "", NONE) else v for v in (prompt, response))
    system = None if system in (None, "", NONE) else system
    if prompt is None and response is None:
        if fmt == "columns":
            raise ValueError("format 'columns' needs a prompt column and a response column: pick both")
        return None
    if prompt is None or response is None:
        raise ValueError("pick both a prompt column and a response column (or neither, to detect them)")
    if fmt not in ("auto", "columns"):
        raise ValueError(
            f"a column mapping only applies to the 'columns' format, not {fmt!r}: set the format to auto"
        )
    return {"prompt": prompt, "response": response, "system": system}


def validate_upload(
    services: Services,
    file,
    fmt: str,
    prompt_col: str | None,
    response_col: str | None,
    system_col: str | None,
    max_seq_len: float,
    eval_fraction: float,
    seed: float,
):
    """Read and validate the upload, save it into the workspace, and return every view of the report."""
    path, name = check_upload(file, DATASET_SUFFIXES, services.max_upload_mb, "dataset")
    columns = column_mapping(fmt, prompt_col, response_col, system_col)
    dataset = load_dataset(path, fmt, columns, max_bytes=int(services.max_upload_mb * 2**20))
    options = {
        "fmt": dataset.format,
        "columns": dataset.columns,
        "eval_fraction": float(eval_fraction),
        "seed": int(seed),
        "max_seq_len": int(max_seq_len),
    }
    report = validate(
        dataset, services.tokenizer(), options["max_seq_len"], options["eval_fraction"], options["seed"]
    )
    report.path = name
    save_dataset(services, path, name, options)
    status = f"Saved as **{name}** in the workspace: pick it in the Train, Compare and Evaluate tabs."
    return (
        status,
        preview_table(report),
        report_markdown(report),
        skipped_table(report),
        histogram_plot(report),
        gr.Dropdown(choices=services.dataset_names(), value=name),
    )


def save_dataset(services: Services, source, name: str, options: dict) -> None:
    """Copy the validated upload into the workspace datasets folder (atomically) with how to read it."""
    target = services.workspace.datasets_dir / name
    tmp = target.with_name(f".{name}.tmp")
    shutil.copyfile(source, tmp)
    tmp.replace(target)
    services.save_dataset_options(name, options)


def preview_table(report: ValidationReport) -> pd.DataFrame:
    """The first usable examples as rows: row number, system, user, assistant (multi-turn ones joined)."""
    rows = []
    for ex in report.examples[:PREVIEW_ROWS]:
        by_role: dict[str, list[str]] = {}
        for m in ex.messages:
            by_role.setdefault(m["role"], []).append(m["content"])
        rows.append(
            {"row": ex.row, **{r: " | ".join(by_role.get(r, [])) for r in ("system", "user", "assistant")}}
        )
    return pd.DataFrame(rows, columns=["row", "system", "user", "assistant"])


def skipped_table(report: ValidationReport) -> pd.DataFrame:
    rows = [{"row": s.row, "reason": s.reason} for s in report.skipped_rows]
    return pd.DataFrame(rows, columns=["row", "reason"])


def histogram_frame(report: ValidationReport) -> pd.DataFrame:
    """The token-length histogram as a frame the bar plot draws: one bar per bin, in bin order."""
    edges, counts = report.histogram["edges"], report.histogram["counts"]
    labels = [f"{lo}-{hi - 1}" for lo, hi in itertools.pairwise(edges)]
    return pd.DataFrame({"tokens": labels, "examples": counts})


def histogram_plot(report: ValidationReport) -> gr.BarPlot:
    frame = histogram_frame(report)
    return gr.BarPlot(value=frame, sort=list(frame["tokens"]))


def report_markdown(r: ValidationReport) -> str:
    """The report's headline numbers, duplicates and truncation as Markdown."""
    t = r.tokens
    lines = [
        f"**{r.usable}** usable of {r.rows_read} rows ({r.format}); **{r.skipped}** skipped, "
        f"**{r.duplicates}** duplicates, **{r.empty_answers}** empty answers.",
        f"Split: **{r.train_size}** train / **{r.eval_size}** eval (eval fraction {r.eval_fraction}, seed {r.seed}).",
        f"Tokens per example (chat template included): min {t.min}, median {t.median:g}, p95 {t.p95}, max {t.max}.",
        _truncation(r),
    ]
    if r.skip_reasons:
        lines.append("Skipped by reason: " + "; ".join(f"{n} x {k}" for k, n in r.skip_reasons.items()) + ".")
    if r.duplicate_rows:
        pairs = ", ".join(f"row {a} = row {b}" for a, b in r.duplicate_rows[:8])
        lines.append(f"Duplicates (exact repeats): {pairs}{', ...' if r.duplicates > 8 else ''}.")
    if r.placeholders:
        names = ", ".join(f"`{{{{{k}}}}}` in {n}" for k, n in r.placeholders.items())
        lines.append(f"Unfilled placeholders: {names} examples; fill them before training.")
    return "\n\n".join(lines)


def _truncation(r: ValidationReport) -> str:
    if not r.over_max_seq_len:
        return f"Truncation: none, every example fits max_seq_len {r.max_seq_len}."
    share = 100 * r.over_max_seq_len / r.usable
    text = f"Truncation: **{r.over_max_seq_len}** examples ({share:.1f}%) exceed max_seq_len {r.max_seq_len}"
    rows = ", ".join(map(str, r.over_max_rows[:10]))
    return text + f" (rows {rows}{', ...' if r.over_max_seq_len > 10 else ''}); they are cut in training."


def build(services: Services) -> None:
    gr.Markdown(
        "Upload instruction/response pairs: JSON, JSONL, CSV, TSV or Parquet in alpaca, ShareGPT, OpenAI "
        "messages, prompt/completion or any two text columns. The report shows what training will see.",
        elem_classes="help",
    )
    with gr.Row():
        with gr.Column(scale=2):
            upload = gr.File(
                label="Dataset file", file_types=list(DATASET_SUFFIXES), type="filepath", height=140
            )
            detected = gr.Markdown("Drop a dataset file above.")
        with gr.Column(scale=3):
            with gr.Row():
                fmt = gr.Dropdown(
                    list(FORMATS), value="auto", label="Format", info="auto detects it from the fields"
                )
                prompt_col = gr.Dropdown(
                    [NONE],
                    value=NONE,
                    label="Prompt column",
                    info="for two-column data",
                    allow_custom_value=True,
                )
                response_col = gr.Dropdown(
                    [NONE], value=NONE, label="Response column", allow_custom_value=True
                )
                system_col = gr.Dropdown(
                    [NONE], value=NONE, label="System column", info="optional", allow_custom_value=True
                )
            with gr.Row():
                max_seq_len = gr.Number(
                    1024,
                    label="Max sequence length",
                    precision=0,
                    minimum=16,
                    info="tokens; longer examples are truncated",
                )
                eval_fraction = gr.Slider(0.0, 0.5, 0.1, step=0.01, label="Eval fraction", info="held out")
                seed = gr.Number(42, label="Split seed", precision=0)
            run = gr.Button("Validate", variant="primary")
    status = gr.Markdown()
    saved = gr.Dropdown(services.dataset_names(), label="Saved datasets", interactive=False)
    with gr.Row():
        summary = gr.Markdown(label="Report")
        hist = gr.BarPlot(x="tokens", y="examples", label="Token lengths", x_label_angle=-45, height=260)
    with gr.Tab("Preview"):
        preview = gr.Dataframe(label="First examples", wrap=True, max_height=360, interactive=False)
    with gr.Tab("Skipped rows"):
        skipped = gr.Dataframe(label="Skipped rows and why", wrap=True, max_height=360, interactive=False)

    inputs = [upload, fmt, prompt_col, response_col, system_col, max_seq_len, eval_fraction, seed]
    outputs = [status, preview, summary, skipped, hist, saved]
    validate_fn = bind(validate_upload, services)
    upload.upload(
        bind(inspect_file, services),
        upload,
        [detected, prompt_col, response_col, system_col],
        api_name="dataset_inspect",
    ).success(validate_fn, inputs, outputs, api_visibility="private")
    run.click(validate_fn, inputs, outputs, api_name="dataset_validate")
