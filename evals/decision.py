"""The recommendation of an eval run: fine-tune, RAG, both, or neither, with the rule and figures behind it.

`recommend(summary)` is a pure function of an eval summary (`evals.results.summarize`). The rule, written
out in `RULE` and repeated in every report:

1. Fine-tuning helps when the best fine-tuned arm beats the base arm on the style/format checks by at least
   `MIN_GAIN` (0.05 on the 0-1 score) AND wins at least `MIN_WIN_RATE` of the head-to-head examples (ties
   count half) AND it forgets at most `MAX_FORGETTING_DROP` (0.10) of the general-ability questions base
   answered. (Without base, fine-tuned+RAG is compared with base+RAG.)
2. RAG helps when base+RAG beats base on the content checks (similarity to the reference, ROUGE-L, citations,
   support by the sources) by at least `MIN_GAIN` AND wins at least `MIN_WIN_RATE` head to head. Its cost,
   the extra prompt tokens per question, is stated beside it. (Without base, fine-tuned+RAG vs fine-tuned.)
   When a run has no checks of a category, the overall weighted score stands in for it, and the report says so.
3. Both helps -> "both", unless the fine-tuned+RAG arm was measured and scores more than `MIN_GAIN` below the
   better single arm: then that single arm. One helps -> that one. Neither -> "neither". No fine-tuned and no
   RAG arm -> "inconclusive".
"""

from __future__ import annotations

from typing import Any

MIN_GAIN = 0.05
MIN_WIN_RATE = 0.5
MAX_FORGETTING_DROP = 0.10
MIN_EXAMPLES = 20  # fewer held-out examples than this: the figures are noted as thin evidence

RULE = [
    f"Fine-tune helps if the best fine-tuned arm beats base on style/format checks by >= {MIN_GAIN:.2f}, wins "
    f">= {MIN_WIN_RATE:.0%} of head-to-head examples (ties count half), and loses <= {MAX_FORGETTING_DROP:.0%} "
    "accuracy on the general-ability (forgetting) questions.",
    f"RAG helps if base+RAG beats base on content checks (reference similarity, ROUGE-L, citations, source "
    f"support) by >= {MIN_GAIN:.2f} and wins >= {MIN_WIN_RATE:.0%} head to head; its cost is the extra prompt "
    "tokens per question.",
    f"Both help -> both (unless fine-tuned+RAG scores > {MIN_GAIN:.2f} below the better single arm, then that "
    "arm); one helps -> that one; neither -> neither.",
]

Summary = dict[str, Any]


def _arms(summary: Summary, kind: str) -> list[str]:
    return [
        a["name"]
        for a in summary["arms"]
        if a["kind"] == kind and summary["per_arm"].get(a["name"], {}).get("answers")
    ]


def _score(summary: Summary, arm: str, key: str) -> tuple[float | None, bool]:
    """(the arm's `key` score, whether the overall score stood in because `key` is missing)."""
    agg = summary["per_arm"][arm]
    return (agg[key], False) if agg.get(key) is not None else (agg.get("score"), True)


def _compare(summary: Summary, treated: str, control: str, key: str) -> dict[str, Any]:
    """Gain of `treated` over `control` on `key` (style_score / content_score) and its head-to-head rate."""
    mine, fell_back = _score(summary, treated, key)
    theirs, fell_back_too = _score(summary, control, key)
    gain = None if mine is None or theirs is None else round(mine - theirs, 4)
    rate = summary["win_rates"].get(treated, {}).get(control, {}).get("rate")
    return {
        "arm": treated,
        "versus": control,
        "measure": "overall score" if fell_back or fell_back_too else key.replace("_score", " score"),
        "score": mine,
        "versus_score": theirs,
        "gain": gain,
        "win_rate": rate,
        "helps": gain is not None and gain >= MIN_GAIN and rate is not None and rate >= MIN_WIN_RATE,
    }


def _forgetting_drop(summary: Summary, arm: str) -> float | None:
    report = summary.get("forgetting") or {}
    for row in report.get("arms", []):
        if row["arm"] == arm:
            return row.get("drop")
    return None


def _fine_tune(summary: Summary) -> dict[str, Any] | None:
    pairs = [(ft, b) for b in _arms(summary, "base") for ft in _arms(summary, "ft")]
    pairs = pairs or [(ft, r) for r in _arms(summary, "rag") for ft in _arms(summary, "ft+rag")]
    if not pairs:
        return None
    found = [_compare(summary, ft, control, "style_score") for ft, control in pairs]
    best = max(found, key=lambda f: (f["gain"] is not None, f["gain"] or 0.0))
    drop = _forgetting_drop(summary, best["arm"])
    best["forgetting_drop"] = drop
    best["forgets"] = drop is not None and drop > MAX_FORGETTING_DROP
    best["helps"] = best["helps"] and not best["forgets"]
    return best


def _retrieval(summary: Summary) -> dict[str, Any] | None:
    pairs = [(r, b) for b in _arms(summary, "base") for r in _arms(summary, "rag")]
    pairs = pairs or [(r, ft) for ft in _arms(summary, "ft")[:1] for r in _arms(summary, "ft+rag")[:1]]
    if not pairs:
        return None
    found = _compare(summary, *pairs[0], "content_score")
    rag_tokens = summary["per_arm"][found["arm"]].get("prompt_tokens")
    plain_tokens = summary["per_arm"][found["versus"]].get("prompt_tokens")
    if rag_tokens is not None and plain_tokens:
        found["extra_prompt_tokens"] = round(rag_tokens - plain_tokens, 1)
        found["prompt_token_ratio"] = round(rag_tokens / plain_tokens, 2)
    return found


def _combined_check(summary: Summary, ft: dict, rag: dict) -> tuple[str, str]:
    """("both", reason) or the better single arm's decision when fine-tuned+RAG was measured and fell short."""
    combined = _arms(summary, "ft+rag")
    if not combined:
        return "both", "fine-tuned+RAG was not run; both help on their own"
    both = summary["per_arm"][combined[0]].get("score") or 0.0
    single = {"fine-tune": ft["arm"], "RAG": rag["arm"]}
    best = max(single, key=lambda d: summary["per_arm"][single[d]].get("score") or 0.0)
    best_score = summary["per_arm"][single[best]].get("score") or 0.0
    if both < best_score - MIN_GAIN:
        return (
            best,
            f"{combined[0]} scored {both:.2f}, more than {MIN_GAIN:.2f} below {single[best]} ({best_score:.2f})",
        )
    return (
        "both",
        f"{combined[0]} scored {both:.2f} overall (best single arm {single[best]}: {best_score:.2f})",
    )


def _ft_sentence(ft: dict | None) -> str:
    if ft is None:
        return "Fine-tuning was not evaluated (no fine-tuned arm ran)."
    gain = "n/a" if ft["gain"] is None else f"{ft['gain']:+.2f}"
    rate = "n/a" if ft["win_rate"] is None else f"{ft['win_rate']:.0%}"
    drop = "not measured" if ft["forgetting_drop"] is None else f"{ft['forgetting_drop']:+.0%}"
    verdict = "helps" if ft["helps"] else "does not help enough"
    why = " (it forgets too much general ability)" if ft["forgets"] else ""
    return (
        f"Fine-tuning {verdict}{why}: {ft['arm']} vs {ft['versus']} on {ft['measure']} {gain}, "
        f"head-to-head win rate {rate}, forgetting drop {drop}."
    )


def _rag_sentence(rag: dict | None) -> str:
    if rag is None:
        return "RAG was not evaluated (no RAG arm ran)."
    gain = "n/a" if rag["gain"] is None else f"{rag['gain']:+.2f}"
    rate = "n/a" if rag["win_rate"] is None else f"{rag['win_rate']:.0%}"
    cost = ""
    if "extra_prompt_tokens" in rag:
        cost = f", at {rag['extra_prompt_tokens']:+.0f} prompt tokens per question ({rag['prompt_token_ratio']:.1f}x)"
    verdict = "helps" if rag["helps"] else "does not help enough"
    return f"RAG {verdict}: {rag['arm']} vs {rag['versus']} on {rag['measure']} {gain}, head-to-head win rate {rate}{cost}."


HEADLINES = {
    "fine-tune": "Fine-tune: it brings the answers closer to your style and format; retrieval adds too little.",
    "RAG": "Use RAG: retrieval improves the content of the answers; fine-tuning adds too little.",
    "both": "Fine-tune and add RAG: fine-tuning fixes style and format, retrieval improves content.",
    "neither": "Neither: on this eval set, neither fine-tuning nor RAG beats the base model by enough.",
    "inconclusive": "Inconclusive: no fine-tuned or RAG arm was evaluated, so there is nothing to compare.",
}


def recommend(summary: Summary) -> dict[str, Any]:
    """The decision, a one-line headline, the reasons with figures, the rule, and caveats."""
    ft, rag = _fine_tune(summary), _retrieval(summary)
    reasons = [_ft_sentence(ft), _rag_sentence(rag)]
    ft_helps, rag_helps = bool(ft and ft["helps"]), bool(rag and rag["helps"])
    if ft is None and rag is None:
        decision = "inconclusive"
    elif ft_helps and rag_helps:
        decision, why = _combined_check(summary, ft, rag)
        reasons.append(why[0].upper() + why[1:] + ".")
    else:
        decision = "fine-tune" if ft_helps else "RAG" if rag_helps else "neither"
    return {
        "decision": decision,
        "headline": HEADLINES[decision],
        "reasons": reasons,
        "rule": RULE,
        "figures": {"fine_tune": ft, "rag": rag},
        "caveats": _caveats(summary, ft),
    }


def _caveats(summary: Summary, ft: dict | None) -> list[str]:
    notes = []
    done = summary.get("examples_done") or 0
    if done < MIN_EXAMPLES:
        notes.append(f"Only {done} held-out examples were scored: treat small differences as noise.")
    if summary.get("status") not in (None, "finished"):
        notes.append(f"The run is {summary.get('status')}: these figures cover the examples finished so far.")
    if ft is not None and ft["forgetting_drop"] is None:
        notes.append("Forgetting was not measured (no base arm, or the forgetting check was off).")
    notes.extend(f"Not run: {p}" for p in summary.get("problems", []))
    return notes
