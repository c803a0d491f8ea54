"""Prompt augmentation: a question plus retrieved hits -> chat messages with numbered, citable sources.

    from rag import augment
    result = augment(question, kb.search(question), budget_tokens=1536, count_tokens=lambda t: len(tok(t).input_ids))
    answer = generate(result.messages)          # the generator applies its own chat template
    show(answer, result.sources)                # "[1] manual.pdf, page 4" under the answer

Hits from the same place (same file, page and record) share one number. Sources are added best first while
they fit `budget_tokens` (the generator's context minus the room it keeps for the answer); the first one that
does not fit whole is cut at a word boundary if a useful part fits, and the rest are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rag.retrieve import Hit

SYSTEM_PROMPT = (
    "Answer the question using only the numbered sources below. Cite the sources you use with their numbers "
    "in square brackets, like [1] or [2][3]. If the sources do not contain the answer, say that you do not know."
)
MIN_EXCERPT_TOKENS = 24
MESSAGE_OVERHEAD_TOKENS = 8


@dataclass
class Source:
    """A numbered source as shown to the model and under the answer."""

    number: int
    label: str
    excerpts: list[str] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)

    def block(self) -> str:
        return f"[{self.number}] {self.label}\n" + "\n...\n".join(self.excerpts)


@dataclass
class Augmented:
    """Chat messages ready for a chat template, the sources they cite, and the hits that did not fit."""

    messages: list[dict[str, str]]
    sources: list[Source]
    left_out: list[Hit]


def augment(
    question: str,
    hits: Sequence[Hit],
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    system_prompt: str = SYSTEM_PROMPT,
) -> Augmented:
    """Build [system, user] messages holding numbered sources that fit in `budget_tokens`.

    Args:
        question: the user's question.
        hits: retrieved chunks, best first (`KnowledgeBase.search`).
        budget_tokens: tokens the messages may use in the generator's context.
        count_tokens: the generator's token counter for a piece of text.

    Raises:
        ValueError: the question is empty, or the question and instructions alone exceed the budget.
    """
    if not question.strip():
        raise ValueError("question is empty; type a question")
    frame = _user_message(question, [])
    used = count_tokens(system_prompt) + count_tokens(frame) + 2 * MESSAGE_OVERHEAD_TOKENS
    if used > budget_tokens:
        raise ValueError(
            f"the question and instructions need {used} tokens but budget_tokens is {budget_tokens}; "
            "shorten the question or give the model a larger context"
        )
    sources: dict[str, Source] = {}
    left_out: list[Hit] = []
    for hit in hits:
        if left_out:
            left_out.append(hit)
            continue
        label = hit.citation
        is_new = label not in sources
        header = count_tokens(f"[{len(sources) + 1}] {label}\n\n") if is_new else count_tokens("\n...\n")
        room = budget_tokens - used - header
        excerpt = _fit(hit.text, room, count_tokens)
        if excerpt is None:
            left_out.append(hit)
            continue
        source = sources.setdefault(label, Source(len(sources) + 1, label))
        source.excerpts.append(excerpt)
        source.hits.append(hit)
        used += header + count_tokens(excerpt)
    ordered = list(sources.values())
    messages = [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": _user_message(question, ordered)},
    ]
    return Augmented(messages, ordered, left_out)


def _user_message(question: str, sources: list[Source]) -> str:
    blocks = "\n\n".join(s.block() for s in sources) if sources else "(no sources found)"
    return f"Sources:\n\n{blocks}\n\nQuestion: {question.strip()}"


def _fit(text: str, room: int, count_tokens: Callable[[str], int]) -> str | None:
    """`text` if it fits in `room` tokens, else its longest word-boundary prefix that does (+ " ..."), else None."""
    if room < MIN_EXCERPT_TOKENS:
        return None
    if count_tokens(text) <= room:
        return text
    words = text.split(" ")
    low, high = 0, len(words)
    while low < high:  # longest prefix of words that fits
        middle = (low + high + 1) // 2
        if count_tokens(" ".join(words[:middle]) + " ...") <= room:
            low = middle
        else:
            high = middle - 1
    if low == 0 or count_tokens(" ".join(words[:low])) < MIN_EXCERPT_TOKENS:
        return None
    return " ".join(words[:low]) + " ..."
