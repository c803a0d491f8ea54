"""Eval results, the recommendation rule and the decision report, on synthetic runs (no model needed)."""

from __future__ import annotations

import csv
import json
import re

import pytest

from evals.decision import MAX_FORGETTING_DROP, MIN_GAIN, recommend
from evals.report import side_by_side, write_report
from evals.results import (
    RESULTS_FILE,
    append_jsonl,
    check_category,
    read_jsonl,
    summarize,
    win_rates,
    write_csv,
)

KIND_NAMES = {"base": "base", "ft": "fine-tuned", "rag": "base+RAG", "ft+rag": "fine-tuned+RAG"}


def make_summary(arms: dict, wins: dict | None = None, drop: float | None = None, examples: int = 50) -> dict:
    """A summary as `summarize` writes it: arms = {kind: (style, content, overall, prompt_tokens)}.

    Win rates default to 1.0 for the arm with the higher overall score (0.5 when equal)."""
    names = {k: KIND_NAMES[k] for k in arms}
    per_arm = {
        names[k]: {"answers": examples, "style_score": s, "content_score": c, "score": o, "prompt_tokens": t}
        for k, (s, c, o, t) in arms.items()
    }
    rates: dict = {}
    for a, x in per_arm.items():
        for b, y in per_arm.items():
            if a != b:
                rate = (wins or {}).get(
                    (a, b), 1.0 if x["score"] > y["score"] else 0.0 if x["score"] < y["score"] else 0.5
                )
                rates.setdefault(a, {})[b] = {"rate": rate}
    forgetting = None
    if drop is not None:
        forgetting = {"arms": [{"arm": "base", "drop": None}, {"arm": "fine-tuned", "drop": drop}]}
    return {
        "id": "t", "status": "finished", "examples_done": examples, "problems": [],
        "arms": [{"name": names[k], "kind": k} for k in arms],
        "per_arm": per_arm, "win_rates": rates, "forgetting": forgetting,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("arms", "drop", "decision"),
    [
        # fine-tuning lifts style, retrieval adds nothing to content
        ({"base": (0.5, 0.5, 0.5, 40), "ft": (0.8, 0.5, 0.65, 40), "rag": (0.5, 0.52, 0.51, 300)}, 0.0, "fine-tune"),
        # retrieval lifts content, fine-tuning adds nothing to style
        ({"base": (0.5, 0.4, 0.45, 40), "ft": (0.52, 0.4, 0.46, 40), "rag": (0.5, 0.7, 0.6, 300)}, 0.0, "RAG"),
        # both lift their side and the combined arm holds up
        ({"base": (0.5, 0.4, 0.45, 40), "ft": (0.8, 0.4, 0.6, 40), "rag": (0.5, 0.7, 0.6, 300),
          "ft+rag": (0.8, 0.7, 0.75, 300)}, 0.0, "both"),
        # both lift their side, but the combined arm falls well below the better single arm
        ({"base": (0.5, 0.4, 0.45, 40), "ft": (0.8, 0.4, 0.6, 40), "rag": (0.5, 0.7, 0.7, 300),
          "ft+rag": (0.5, 0.5, 0.5, 300)}, 0.0, "RAG"),
        # neither beats base by MIN_GAIN
        ({"base": (0.5, 0.5, 0.5, 40), "ft": (0.53, 0.5, 0.51, 40), "rag": (0.5, 0.53, 0.51, 300)}, 0.0, "neither"),
        # fine-tuning lifts style but forgets too much general ability
        ({"base": (0.5, 0.5, 0.5, 40), "ft": (0.9, 0.5, 0.7, 40)}, MAX_FORGETTING_DROP + 0.05, "neither"),
        # only the base arm ran
        ({"base": (0.5, 0.5, 0.5, 40)}, None, "inconclusive"),
        # no base arm: fine-tuned+RAG vs base+RAG decides fine-tuning, fine-tuned+RAG vs fine-tuned decides RAG
        ({"ft": (0.8, 0.4, 0.6, 40), "rag": (0.5, 0.4, 0.45, 300), "ft+rag": (0.8, 0.42, 0.62, 300)}, None, "fine-tune"),
    ],
)  # fmt: skip
def test_recommendation_rule(arms, drop, decision):
    rec = recommend(make_summary(arms, drop=drop))
    assert rec["decision"] == decision
    assert rec["rule"] and rec["headline"]


def test_gain_without_head_to_head_wins_is_not_enough():
    arms = {"base": (0.5, 0.5, 0.5, 40), "rag": (0.5, 0.9, 0.7, 300)}
    summary = make_summary(arms, wins={("base+RAG", "base"): 0.3})  # one outlier example carries the mean
    rec = recommend(summary)
    assert rec["decision"] == "neither"
    assert rec["figures"]["rag"]["gain"] == pytest.approx(0.4)
    assert rec["figures"]["rag"]["win_rate"] == 0.3


def test_rag_cost_and_gain_are_stated_in_the_reasons():
    rec = recommend(make_summary({"base": (0.5, 0.4, 0.45, 40), "rag": (0.5, 0.7, 0.6, 300)}))
    rag = rec["figures"]["rag"]
    assert rag["extra_prompt_tokens"] == 260 and rag["prompt_token_ratio"] == 7.5
    assert any("+260 prompt tokens" in r and "+0.30" in r for r in rec["reasons"])


def test_missing_category_falls_back_to_overall_score_and_says_so():
    summary = make_summary(
        {"base": (None, None, 0.4, 40), "ft": (None, None, 0.4 + 2 * MIN_GAIN, 40)}, drop=0.0
    )
    rec = recommend(summary)
    assert rec["decision"] == "fine-tune"
    assert rec["figures"]["fine_tune"]["measure"] == "overall score"


def test_thin_evidence_and_unfinished_runs_are_caveated():
    summary = make_summary({"base": (0.5, 0.5, 0.5, 40), "ft": (0.9, 0.5, 0.7, 40)}, examples=5)
    summary["status"] = "failed"
    caveats = " ".join(recommend(summary)["caveats"])
    assert (
        "Only 5 held-out examples" in caveats
        and "failed" in caveats
        and "Forgetting was not measured" in caveats
    )


# -- results --------------------------------------------------------------------------------------------------


def _record(example: int, arm: str, kind: str, weighted: float | None, answer: str = "an answer") -> dict:
    scores = {
        "rouge-l": {
            "score": weighted or 0.0,
            "passed": (weighted or 0) >= 0.5,
            "reason": "",
            "skipped": weighted is None,
        }
    }
    return {
        "example": example, "row": example + 1, "arm": arm, "kind": kind, "question": f"question {example}?",
        "reference": f"reference {example}", "answer": answer, "scores": scores, "weighted": weighted,
        "style": None, "content": weighted, "latency_s": 1.0, "prompt_tokens": 100 if "RAG" in arm else 20,
        "completion_tokens": 10, "truncated": False, "sources": [],
    }  # fmt: skip


META = {
    "id": "synthetic", "status": "finished", "data": "eval.jsonl", "examples_total": 3,
    "arms": [{"name": "base", "kind": "base"}, {"name": "base+RAG", "kind": "rag"}],
    "checks": [{"name": "rouge-l", "type": "rouge-l", "weight": 1.0, "description": "overlap", "category": "content"}],
}  # fmt: skip


@pytest.fixture
def records() -> list[dict]:
    return [
        _record(0, "base", "base", 0.2), _record(0, "base+RAG", "rag", 0.9),
        _record(1, "base", "base", 0.5), _record(1, "base+RAG", "rag", 0.5),
        _record(2, "base", "base", 0.6), _record(2, "base+RAG", "rag", 0.4, "<script>alert('x')</script> & co"),
    ]  # fmt: skip


def test_win_rates_count_wins_losses_and_ties(records):
    table = win_rates(records, ["base", "base+RAG"])
    assert table["base+RAG"]["base"] == {"wins": 1, "losses": 1, "ties": 1, "n": 3, "rate": 0.5}
    assert table["base"]["base+RAG"]["wins"] == 1


def test_summary_aggregates_per_arm(records):
    summary = summarize(META, records)
    rag = summary["per_arm"]["base+RAG"]
    assert rag["score"] == pytest.approx(0.6) and rag["pass_rate"]["rouge-l"] == pytest.approx(
        2 / 3, abs=1e-4
    )
    assert rag["prompt_tokens"] == 100 and summary["per_arm"]["base"]["prompt_tokens"] == 20
    assert summary["examples_done"] == 3 and summary["forgetting"] is None


def test_torn_last_line_is_skipped(tmp_path, records):
    path = tmp_path / RESULTS_FILE
    append_jsonl(path, records[:2])
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"example": 9, "arm": "ba')  # a crash mid-write
    assert read_jsonl(path) == records[:2]


def test_csv_has_one_row_per_answer_and_a_column_per_check(tmp_path, records):
    write_csv(tmp_path / "r.csv", records, ["rouge-l"])
    rows = list(csv.DictReader((tmp_path / "r.csv").open(encoding="utf-8")))
    assert len(rows) == 6 and rows[1]["arm"] == "base+RAG" and float(rows[1]["score:rouge-l"]) == 0.9


@pytest.mark.parametrize(
    ("check_type", "needs", "category"),
    [("rouge-l", ["reference"], "content"), ("cites-sources", ["sources"], "content"), ("is-json", [], "style"),
     ("length-ratio", ["reference"], "style"), ("exact-match", [], "style"), ("exact-match", ["reference"], "content")],
)  # fmt: skip
def test_check_categories(check_type, needs, category):
    assert check_category(check_type, needs) == category


def test_side_by_side_shows_each_arms_best_and_worst(records):
    picks = side_by_side(records, ["base", "base+RAG"])
    whys = {w for p in picks for w in p["why"]}
    assert whys == {"best for base", "worst for base", "best for base+RAG", "worst for base+RAG"}
    assert {p["example"] for p in picks} == {0, 2}
    assert all(len(p["answers"]) == 2 for p in picks)


# -- report ---------------------------------------------------------------------------------------------------


def test_report_holds_every_arm_the_recommendation_and_escapes_answers(tmp_path, records):
    summary = summarize(META, records)
    summary["recommendation"] = recommend(summary)
    html_path, json_path = write_report(tmp_path, summary, records)
    page = html_path.read_text(encoding="utf-8")
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert "base+RAG" in page and ">base<" in page
    assert summary["recommendation"]["headline"] in page
    assert data["recommendation"]["decision"] == summary["recommendation"]["decision"]
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in page
    assert re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', page)  # charts are inline
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing loaded from outside
    assert "No blind votes yet" in page


def test_report_shows_the_vote_leaderboard(tmp_path, records, workspace):
    from evals.votes import create_comparison, record_vote

    for winner in ("a", "a", "b"):
        comparison_id = create_comparison(
            workspace, "q?", "base+RAG", "answer 1", "base", "answer 2", shuffle=False
        )
        record_vote(workspace, comparison_id, winner)
    summary = summarize(META, records)
    html_path, json_path = write_report(tmp_path, summary, records, workspace=workspace)
    board = json.loads(json_path.read_text(encoding="utf-8"))["leaderboard"]
    assert [r["arm"] for r in board] == ["base+RAG", "base"] and board[0]["votes"] == 3
    assert "Bradley-Terry" in html_path.read_text(encoding="utf-8")
