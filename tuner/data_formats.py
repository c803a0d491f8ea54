"""Row formats: one dataset row (a dict) in, chat messages out; a bad row raises `RowError` with the reason.

Formats: alpaca, sharegpt, openai, prompt_completion and columns (see `tuner.data` for the fields of each).
`convert_row` also enforces what training needs: an optional system prompt first, a user message first, an
assistant answer last, and no empty prompt or answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tuner.data_files import RowError, type_name

SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "model": "assistant",
    "system": "system",
    "function_call": "assistant",  # the model's call, trained like any answer
    "observation": "tool",  # the tool's result
    "tool": "tool",
}
OPENAI_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}
TOOL_TURNS = "tool turns (function_call/observation/tool) but the model's chat template has no tool role"


def _text(row: dict, key: str, required: bool = True) -> str | None:
    value = row.get(key)
    if value is None:
        if required:
            raise RowError(f"missing field '{key}'", "missing field")
        return None
    if not isinstance(value, str):
        raise RowError(f"field '{key}' must be a string, got {type_name(value)}", "not a string")
    return value


def _system(text: str | None) -> list[dict]:
    return [{"role": "system", "content": text}] if text and text.strip() else []


def _alpaca(row: dict, **_) -> list[dict]:
    prompt = "\n".join(t for t in (_text(row, "instruction"), _text(row, "input", False)) if t)
    answer = _text(row, "output")
    return [
        *_system(_text(row, "system", False)),
        *_history(row.get("history")),
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": answer},
    ]


def _history(history: Any) -> list[dict]:
    if history is None:
        return []
    pairs_ok = isinstance(history, list) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(t, str) for t in p) for p in history
    )
    if not pairs_ok:
        raise RowError("field 'history' must be a list of [instruction, answer] string pairs", "bad history")
    return [
        m for q, a in history for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})
    ]


def _sharegpt(row: dict, *, tool_roles: bool, **_) -> list[dict]:
    turns = row.get("conversations")
    if not isinstance(turns, list):
        raise _not_a_list("conversations", turns)
    messages = _system(_text(row, "system", False))
    for i, turn in enumerate(turns, 1):
        source = turn.get("from", turn.get("role")) if isinstance(turn, dict) else None
        content = turn.get("value", turn.get("content")) if isinstance(turn, dict) else None
        if source not in SHAREGPT_ROLES or not isinstance(content, str):
            raise RowError(
                f"conversations turn {i} must be {{from, value}} with from in "
                f"{'/'.join(SHAREGPT_ROLES)} and a string value, got {_short(turn)}",
                "bad turn",
            )
        role = SHAREGPT_ROLES[source]
        if source in ("function_call", "observation", "tool") and not tool_roles:
            raise RowError(f"has {TOOL_TURNS} (turn {i})", "tool turns unsupported")
        messages.append({"role": role, "content": content})
    return messages


def _openai(row: dict, *, tool_roles: bool, **_) -> list[dict]:
    return _openai_messages(row.get("messages"), "messages", tool_roles)


def _openai_messages(messages: Any, key: str, tool_roles: bool) -> list[dict]:
    if not isinstance(messages, list):
        raise _not_a_list(key, messages)
    out = []
    for i, message in enumerate(messages, 1):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in OPENAI_ROLES:
            raise RowError(
                f"{key}[{i}] must have a role among {', '.join(OPENAI_ROLES)}, got {_short(message)}",
                "bad message",
            )
        if (OPENAI_ROLES[role] == "tool" or message.get("tool_calls")) and not tool_roles:
            raise RowError(f"has {TOOL_TURNS} ({key}[{i}])", "tool turns unsupported")
        out.append({"role": OPENAI_ROLES[role], "content": _openai_content(message, f"{key}[{i}]")})
    return out


def _openai_content(message: dict, where: str) -> str:
    content = message.get("content")
    if isinstance(content, list):
        texts = []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            text = part.get("text", part.get("value")) if kind == "text" else None
            if not isinstance(text, str):
                raise RowError(
                    f"{where} has a {_short(part)} content part; only text parts are supported",
                    "non-text content",
                )
            texts.append(text)
        content = "".join(texts)
    if content is None and message.get("tool_calls"):
        return json.dumps(message["tool_calls"], ensure_ascii=False)
    if not isinstance(content, str):
        raise RowError(
            f"{where}.content must be a string or a list of text parts, got {type_name(content)}",
            "not a string",
        )
    return content


def _prompt_completion(row: dict, *, tool_roles: bool, **_) -> list[dict]:
    def side(key: str, role: str) -> list[dict]:
        value = row.get(key)
        if isinstance(value, list):
            return _openai_messages(value, key, tool_roles)
        return [{"role": role, "content": _text(row, key)}]

    return [*_system(_text(row, "system", False)), *side("prompt", "user"), *side("completion", "assistant")]


def _columns(row: dict, *, columns: dict, **_) -> list[dict]:
    system = _text(row, columns["system"], False) if columns.get("system") else None
    return [
        *_system(system),
        {"role": "user", "content": _text(row, columns["prompt"])},
        {"role": "assistant", "content": _text(row, columns["response"])},
    ]


CONVERTERS: dict[str, Callable[..., list[dict]]] = {
    "alpaca": _alpaca,
    "sharegpt": _sharegpt,
    "openai": _openai,
    "prompt_completion": _prompt_completion,
    "columns": _columns,
}


def _check_conversation(messages: list[dict]) -> list[dict]:
    """Enforce what training needs: optional system first, a user turn first, an assistant answer last."""
    if messages and messages[0]["role"] == "system" and not messages[0]["content"].strip():
        messages = messages[1:]
    for i, m in enumerate(messages, 1):
        if m["role"] == "system" and i > 1:
            raise RowError(
                f"system message at turn {i}; only the first message may be a system prompt",
                "misplaced system message",
            )
        if m["role"] == "user" and not m["content"].strip():
            raise RowError(f"empty user message (turn {i})", "empty prompt")
        if m["role"] == "assistant" and not m["content"].strip():
            raise RowError(f"empty or whitespace-only answer (turn {i})", "empty answer")
    talk = [m for m in messages if m["role"] != "system"]
    if not talk or talk[0]["role"] != "user":
        raise RowError("the conversation must start with a user message", "no user message")
    if talk[-1]["role"] != "assistant":
        raise RowError("the conversation must end with an assistant answer", "no answer")
    return messages


def _tools(row: dict) -> list | None:
    tools = row.get("tools")
    if isinstance(tools, str):
        try:
            tools = json.loads(tools) if tools.strip() else None
        except json.JSONDecodeError as e:
            raise RowError(f"field 'tools' is not valid JSON ({e.msg})", "bad tools") from None
    if tools is not None and not isinstance(tools, list):
        raise RowError(
            f"field 'tools' must be a list of tool definitions, got {type_name(tools)}", "bad tools"
        )
    return tools or None


def _not_a_list(key: str, value: Any) -> RowError:
    if value is None:
        return RowError(f"missing field '{key}'", "missing field")
    return RowError(f"field '{key}' must be a list, got {type_name(value)}", "not a list")


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def convert_row(
    fmt: str, row: Any, *, tool_roles: bool = False, columns: dict | None = None
) -> tuple[list[dict], list | None]:
    """The messages of one row in format `fmt`, and its tool definitions (only kept when `tool_roles`).

    Raises:
        RowError: the row cannot become a training conversation (the reason says why).
    """
    if not isinstance(row, dict):
        raise RowError(f"row is {type_name(row)}, expected an object with fields", "not an object")
    messages = _check_conversation(CONVERTERS[fmt](row, tool_roles=tool_roles, columns=columns))
    tools = _tools(row) if tool_roles and fmt in ("sharegpt", "openai") else None
    return messages, tools
