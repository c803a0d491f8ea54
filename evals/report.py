"""The decision report of an eval run: one self-contained HTML file (charts embedded as PNG) and report.json.

Both hold the same data: the recommendation with the rule and figures behind it, the arms x checks table,
head-to-head win rates, the blind-vote leaderboard (when the workspace has votes), latency and token cost per
arm, the forgetting check, and side-by-side answers (each arm's best and worst example). Every model answer
is HTML-escaped; the page loads nothing from outside.

    python -m evals report RUN_DIR [--workspace DIR]      # rebuilds summary, CSV and report from the run folder
"""

from __future__ import annotations

import base64
import html
import io
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_json, atomic_write_text

HTML_FILE = "report.html"
JSON_FILE = "report.json"
MAX_EXAMPLES = 8
DECISION_COLOURS = {"fine-tune": "#2b6cb0", "RAG": "#2f855a", "both": "#6b46c1", "neither": "#718096"}


# -- data -----------------------------------------------------------------------------------------------------


def side_by_side(records: Sequence[dict], arms: Sequence[str], limit: int = MAX_EXAMPLES) -> list[dict]:
    """Each arm's best and worst scored example, with every arm's answer to it (at most `limit` examples)."""
    by_example: dict[int, dict[str, dict]] = {}
    for r in records:
        by_example.setdefault(r["example"], {})[r["arm"]] = r
    picks: list[tuple[int, str]] = []
    for arm in arms:
        scored = [
            (rs[arm]["weighted"], ex)
            for ex, rs in by_example.items()
            if rs.get(arm, {}).get("weighted") is not None
        ]
        if scored:
            picks += [(max(scored)[1], f"best for {arm}"), (min(scored)[1], f"worst for {arm}")]
    chosen: dict[int, list[str]] = {}
    for ex, why in picks:
        if ex in chosen or len(chosen) < limit:
            chosen.setdefault(ex, []).append(why)
    out = []
    for ex, why in chosen.items():
        first = next(iter(by_example[ex].values()))
        answers = [
            {"arm": a, "answer": r["answer"], "score": r["weighted"],
             "failed": [n for n, s in r["scores"].items() if not s["skipped"] and not s["passed"]],
             "sources": [s["label"] for s in r.get("sources", [])]}
            for a in arms if (r := by_example[ex].get(a))
        ]  # fmt: skip
        out.append({"example": ex, "row": first["row"], "why": why, "question": first["question"],
                    "reference": first["reference"], "answers": answers})  # fmt: skip
    return out


def cost_table(summary: dict) -> list[dict]:
    """Per arm: mean latency, prompt and completion tokens, and prompt tokens beyond the base arm's."""
    base = next((a["name"] for a in summary["arms"] if a["kind"] == "base"), None)
    base_prompt = summary["per_arm"].get(base, {}).get("prompt_tokens") if base else None
    rows = []
    for arm, agg in summary["per_arm"].items():
        extra = (
            None
            if base_prompt is None or agg["prompt_tokens"] is None
            else round(agg["prompt_tokens"] - base_prompt, 1)
        )
        rows.append({"arm": arm, "latency_s": agg["latency_s"], "prompt_tokens": agg["prompt_tokens"],
                     "completion_tokens": agg["completion_tokens"], "extra_prompt_tokens": extra,
                     "tokens_per_s": agg["tokens_per_s"]})  # fmt: skip
    return rows


def _votes(workspace) -> list[dict]:
    if workspace is None:
        return []
    from evals.votes import leaderboard

    return [r.to_dict() for r in leaderboard(workspace, rounds=200)]


def report_data(summary: dict, records: Sequence[dict], workspace=None) -> dict[str, Any]:
    """Everything the report shows, as plain data (what report.json holds)."""
    from evals.decision import recommend

    arms = [a["name"] for a in summary["arms"]]
    return {
        "title": f"Fine-tune or RAG? Eval run {summary['id']}",
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "recommendation": summary.get("recommendation") or recommend(summary),
        "summary": summary,
        "cost": cost_table(summary),
        "leaderboard": _votes(workspace),
        "examples": side_by_side(records, arms),
    }


# -- charts ---------------------------------------------------------------------------------------------------


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _bars(title: str, labels: list[str], series: dict[str, list[float]], ylabel: str, ylim=None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(labels) * max(1, len(series)) ** 0.5), 3.2))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(labels))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + i * width - 0.4 + width / 2, [v or 0 for v in values], width, label=name)
    ax.set_xticks(x, labels, rotation=15, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim:
        ax.set_ylim(*ylim)
    if len(series) > 1:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def charts(data: dict) -> dict[str, str]:
    """Base64 PNGs: scores per arm, latency and tokens per arm, forgetting accuracy."""
    summary = data["summary"]
    arms = list(summary["per_arm"])
    if not arms:
        return {}
    per = summary["per_arm"]
    out = {
        "scores": _bars("Mean score per arm (0-1)", arms, {
            "overall": [per[a]["score"] for a in arms], "style/format": [per[a]["style_score"] for a in arms],
            "content": [per[a]["content_score"] for a in arms]}, "score", (0, 1)),
        "cost": _bars("Tokens per answer", arms, {
            "prompt": [per[a]["prompt_tokens"] for a in arms],
            "completion": [per[a]["completion_tokens"] for a in arms]}, "tokens"),
    }  # fmt: skip
    forgetting = summary.get("forgetting")
    if forgetting:
        names = [a["arm"] for a in forgetting["arms"]]
        out["forgetting"] = _bars(
            "General-ability accuracy",
            names,
            {"accuracy": [a["accuracy"] for a in forgetting["arms"]]},
            "accuracy",
            (0, 1),
        )
    return out


# -- HTML -----------------------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1a202c;line-height:1.45}h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #e2e8f0}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{border:1px solid #e2e8f0;padding:.3em .6em;
text-align:left;vertical-align:top}th{background:#f7fafc}td.num{text-align:right;font-variant-numeric:tabular-nums}
.decision{padding:1em 1.2em;border-radius:8px;color:#fff;font-size:1.15em}.muted{color:#718096;font-size:.9em}
.answers{display:grid;grid-template-columns:repeat(auto-fit,minmax(240px,1fr));gap:.6em}
.answer{border:1px solid #e2e8f0;border-radius:6px;padding:.5em;white-space:pre-wrap;font-size:.9em}
.bad{color:#c53030}.good{color:#2f855a}img{max-width:100%}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: Any, fmt: str = "{:.2f}") -> str:
    return '<td class="num">' + ("n/a" if value is None else _e(fmt.format(value))) + "</td>"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """`rows` hold ready <td> cells."""
    top = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table><tr>{top}</tr>" + "".join("<tr>" + "".join(r) + "</tr>" for r in rows) + "</table>"


def _img(chart: str | None, alt: str) -> str:
    return f'<p><img alt="{_e(alt)}" src="data:image/png;base64,{chart}"></p>' if chart else ""


def _recommendation_html(rec: dict) -> str:
    colour = DECISION_COLOURS.get(rec["decision"], "#718096")
    reasons = "".join(f"<li>{_e(r)}</li>" for r in rec["reasons"])
    rule = "".join(f"<li>{_e(r)}</li>" for r in rec["rule"])
    caveats = "".join(f"<li>{_e(c)}</li>" for c in rec["caveats"])
    return (
        f'<div class="decision" style="background:{colour}"><b>Recommendation: {_e(rec["decision"])}</b><br>'
        f"{_e(rec['headline'])}</div><h3>Why</h3><ul>{reasons}</ul><h3>The rule</h3><ol>{rule}</ol>"
        + (f"<h3>Caveats</h3><ul>{caveats}</ul>" if caveats else "")
    )


def _checks_html(summary: dict) -> str:
    arms = list(summary["per_arm"])
    rows = []
    for c in summary["checks"]:
        cells = [f"<td>{_e(c['name'])}<div class='muted'>{_e(c['description'])}</div></td>",
                 f"<td>{_e(c['category'])}</td>", _num(c["weight"], "{:g}")]  # fmt: skip
        cells += [_num(summary["per_arm"][a]["pass_rate"].get(c["name"]), "{:.0%}") for a in arms]
        rows.append(cells)
    rows.append(
        ["<td><b>weighted score</b></td><td></td><td></td>"]
        + [_num(summary["per_arm"][a]["score"]) for a in arms]
    )
    return _table(["check", "measures", "weight", *[f"{a} (pass rate)" for a in arms]], rows)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _wins_html(summary: dict) -> str:
    arms = list(summary["per_arm"])
    rows = []
    for a in arms:
        cells = [f"<th>{_e(a)}</th>"]
        for b in arms:
            w = summary["win_rates"].get(a, {}).get(b)
            if w is None:
                cells.append("<td>-</td>")
                continue
            record = f"({w['wins']}-{w['losses']}-{w['ties']})"
            cells.append(f'<td class="num">{_pct(w["rate"])} <span class="muted">{record}</span></td>')
        rows.append(cells)
    return _table(["row beats column (W-L-T)", *arms], rows)


def _cost_html(cost: list[dict]) -> str:
    rows = [
        [f"<td>{_e(c['arm'])}</td>", _num(c["latency_s"]), _num(c["prompt_tokens"], "{:.0f}"),
         _num(c["extra_prompt_tokens"], "{:+.0f}"), _num(c["completion_tokens"], "{:.0f}"), _num(c["tokens_per_s"], "{:.1f}")]
        for c in cost
    ]  # fmt: skip
    head = ["arm", "latency (s)", "prompt tokens", "vs base", "answer tokens", "answer tokens/s"]
    return _table(head, rows) + (
        '<p class="muted">Latency is measured inside a shared batch (time until the arm\'s answer was complete, '
        "plus retrieval for RAG arms); the extra prompt tokens are what retrieval costs per question.</p>"
    )


def _forgetting_html(forgetting: dict | None) -> str:
    if not forgetting:
        return "<p>Not run (it needs a fine-tuned arm, and is skipped when switched off).</p>"
    rows = [[f"<td>{_e(a['arm'])}</td>", _num(a["accuracy"], "{:.0%}"), f"<td>{a['correct']} / {a['total']}</td>",
             _num(a["drop"], "{:+.0%}"), f"<td>{_e(', '.join(forgetting['regressions'].get(a['arm'], [])) or '-')}</td>"]
            for a in forgetting["arms"]]  # fmt: skip
    return _table(["arm", "accuracy", "correct", "drop vs base", "questions lost"], rows)


def _votes_html(board: list[dict]) -> str:
    if not board:
        return "<p>No blind votes yet. Share the Arena tab and let people vote; the leaderboard appears here.</p>"
    rows = [[f"<td>{_e(r['arm'])}</td>", f"<td>{r['bt']:.0f} ({r['bt_low']:.0f}-{r['bt_high']:.0f})</td>",
             f"<td>{r['elo']:.0f} ({r['elo_low']:.0f}-{r['elo_high']:.0f})</td>", f"<td>{r['votes']}</td>",
             f"<td>{r['wins']}-{r['losses']}-{r['ties']}-{r['both_bad']}</td>"] for r in board]  # fmt: skip
    return _table(["arm", "Bradley-Terry (95% CI)", "Elo (95% CI)", "votes", "W-L-T-both bad"], rows)


def _answer_card(a: dict) -> str:
    score = "n/a" if a["score"] is None else f"{a['score']:.2f}"
    failed = f'<div class="bad">failed: {_e(", ".join(a["failed"]))}</div>' if a["failed"] else ""
    return (
        f'<div class="answer"><b>{_e(a["arm"])}</b> <span class="muted">score {score}</span>{failed}'
        f"<div>{_e(a['answer'])}</div></div>"
    )


def _examples_html(examples: list[dict]) -> str:
    parts = []
    for ex in examples:
        cards = "".join(_answer_card(a) for a in ex["answers"])
        why = _e("; ".join(ex["why"]))
        parts.append(
            f"<h3>Example {ex['example'] + 1} (row {ex['row']}) <span class='muted'>{why}</span></h3>"
            f"<p><b>Question:</b> {_e(ex['question'])}</p><p><b>Reference:</b> {_e(ex['reference'])}</p>"
            f'<div class="answers">{cards}</div>'
        )
    return "".join(parts) or "<p>No scored examples yet.</p>"


def render_html(data: dict, chart_pngs: dict[str, str]) -> str:
    """The report page: every section, charts inline, nothing fetched from outside."""
    s = data["summary"]
    arms = ", ".join(f"{a['name']}" for a in s["arms"])
    problems = "".join(f"<li class='bad'>{_e(p)}</li>" for p in s["problems"])
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(data["title"])}</title>
<style>{CSS}</style></head><body><h1>{_e(data["title"])}</h1>
<p class="muted">Generated {_e(data["generated"])}. Status: {_e(s["status"])}. {s["examples_done"]} of
{_e(s["examples_total"])} held-out examples scored, from {_e(s["data_note"] or s["data"])}. Arms: {_e(arms)}.</p>
{f"<ul>{problems}</ul>" if problems else ""}
<h2>Recommendation</h2>{_recommendation_html(data["recommendation"])}
<h2>Scores by arm and check</h2><p>Each check scores an answer from 0 to 1; the weighted score averages them by
weight. "style" checks look at form (format, length, tone); "content" checks compare with the reference answer
or the retrieved sources.</p>{_img(chart_pngs.get("scores"), "scores per arm")}{_checks_html(s)}
<h2>Head to head</h2><p>How often the row arm's weighted score beat the column arm's on the same question (ties
count half).</p>{_wins_html(s)}
<h2>Blind votes</h2>{_votes_html(data["leaderboard"])}
<h2>Latency and token cost</h2>{_img(chart_pngs.get("cost"), "tokens per arm")}{_cost_html(data["cost"])}
<h2>Forgetting</h2><p>General questions (capitals, arithmetic, everyday facts) that any model should answer: a
drop after fine-tuning means the model lost general ability.</p>{_img(chart_pngs.get("forgetting"), "forgetting")}
{_forgetting_html(s.get("forgetting"))}
<h2>Example answers</h2>{_examples_html(data["examples"])}
</body></html>
"""


def write_report(
    folder: str | Path, summary: dict, records: Sequence[dict], workspace=None
) -> tuple[Path, Path]:
    """Write report.html and report.json into the run folder; returns both paths."""
    folder = Path(folder)
    data = report_data(summary, records, workspace)
    page = render_html(data, charts(data))
    return atomic_write_text(folder / HTML_FILE, page), atomic_write_json(folder / JSON_FILE, data)
