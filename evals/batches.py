"""One batch of an eval run: several examples x every arm generated in ONE mixed-adapter batch, then scored.

`run_batch` turns eval items into result records (answer, per-check scores, weighted/style/content scores,
latency, prompt and completion tokens); `forgetting_batch` does the same for general-ability questions on the
base and fine-tuned arms. `evals.run` drives them and saves each batch as it finishes.
"""

from __future__ import annotations

import time

from evals.items import EvalItem


def generate_batch(lm, requests, params) -> tuple[list, list[float]]:
    """Final outputs of one mixed batch (`tuner.generate.stream_arms`) and, per row, the seconds until that
    row's answer was finished (rows share the batch, so this is latency under batching)."""
    from tuner.generate import stream_arms

    start = time.perf_counter()
    finished_at: list[float | None] = [None] * len(requests)
    outputs: list = []
    for outputs in stream_arms(lm, requests, params):  # the last yield holds the answers
        now = time.perf_counter() - start
        for i, out in enumerate(outputs):
            if out.finished and finished_at[i] is None:
                finished_at[i] = now
    return outputs, [t if t is not None else time.perf_counter() - start for t in finished_at]


def category_score(results, checks, category: str) -> float | None:
    from evals.checks import weighted_score

    return weighted_score([r for r, c in zip(results, checks, strict=True) if c["category"] == category])


def _generate_rows(arms, requests, params, by_context: bool) -> tuple[list, list[float]]:
    """All rows in one call, or (by_context) one call for the arms without retrieval and one for the RAG arms,
    so short prompts are not padded to the length of prompts that carry sources."""
    if not by_context:
        return generate_batch(arms.lm, requests, params)
    rag = [arms.arms[i % len(arms.arms)].rag for i in range(len(requests))]
    outputs: list = [None] * len(requests)
    seconds: list[float] = [0.0] * len(requests)
    for flag in (False, True):
        rows = [i for i, r in enumerate(rag) if r == flag]
        if rows:
            outs, secs = generate_batch(arms.lm, [requests[i] for i in rows], params)
            for i, out, sec in zip(rows, outs, secs, strict=True):
                outputs[i], seconds[i] = out, sec
    return outputs, seconds


def run_batch(
    arms, batch: list[EvalItem], params, checks, check_rows, embedder, by_context: bool = False
) -> list[dict]:
    """Generate every arm of every example in `batch` in one call (two with `by_context`), score the answers,
    and return the records."""
    from evals.checks import score_batch, weighted_score

    n = len(arms.arms)
    prepared = [
        arms.prepare(
            it.question, system=it.system, histories=[it.history] * n, max_new_tokens=params.max_new_tokens
        )
        for it in batch
    ]
    requests = [r for p in prepared for r in p.requests]
    outputs, seconds = _generate_rows(arms, requests, params, by_context)
    rows = [
        (it, p, arm, p.sources[j])
        for it, p in zip(batch, prepared, strict=True)
        for j, arm in enumerate(arms.arms)
    ]
    scored = score_batch(
        [o.text for o in outputs],
        checks,
        [it.reference for it, *_ in rows],
        [src if arm.rag else None for _, _, arm, src in rows],
        embedder,
    )
    records = []
    for (it, prep, arm, src), out, secs, results in zip(rows, outputs, seconds, scored, strict=True):
        records.append({
            "example": it.index, "row": it.row, "arm": arm.name, "kind": arm.kind,
            "question": it.question, "reference": it.reference, "answer": out.text,
            "scores": {r.name: {"score": round(r.score, 4), "passed": r.passed, "reason": r.reason,
                                "skipped": r.skipped} for r in results},
            "weighted": weighted_score(results),
            "style": category_score(results, check_rows, "style"),
            "content": category_score(results, check_rows, "content"),
            "latency_s": round(secs + (prep.retrieval_seconds if arm.rag else 0.0), 4),
            "prompt_tokens": out.prompt_tokens, "completion_tokens": out.completion_tokens,
            "truncated": out.completion_tokens >= params.max_new_tokens,
            "sources": [{"n": s["n"], "label": s["label"], "score": s["score"]} for s in src],
        })  # fmt: skip
    return records


def forgetting_arms(arms) -> list:
    """The arms the forgetting check runs on: base and fine-tuned (none without a fine-tuned arm)."""
    plain = [a for a in arms.arms if not a.rag]
    return plain if any(a.kind == "ft" for a in plain) else []


def forgetting_batch(arms, questions, params) -> list[dict]:
    """General-ability questions through the base and fine-tuned arms in one batch: one record each."""
    from tuner.generate import ArmRequest, chat_messages

    plain = forgetting_arms(arms)
    requests = [ArmRequest(chat_messages(q.prompt), a.adapter) for q in questions for a in plain]
    outputs, _ = generate_batch(arms.lm, requests, params)
    pairs = [(q, a) for q in questions for a in plain]
    return [
        {
            "question_id": q.id,
            "arm": a.name,
            "kind": a.kind,
            "answer": o.text,
            "correct": q.is_correct(o.text),
        }
        for (q, a), o in zip(pairs, outputs, strict=True)
    ]
