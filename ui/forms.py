"""Forms generated from a job's config dataclass: one widget per field, labelled with the field's help text, and
the widget values turned back into that dataclass's keyword arguments.

The Train tab builds its knobs from `tuner.train.TrainConfig` and the Evaluate tab from `evals.run.EvalConfig`
this way, so the UI and the CLI fill the same dataclass and a new field needs no UI code:

    widgets = config_widgets(TrainConfig, ["max_steps", "learning_rate"])    # inside a gr.Blocks
    kwargs = coerce(TrainConfig, {"max_steps": 3.0, "learning_rate": 2e-4}) # {"max_steps": 3, ...}
    TrainConfig(data=path, **kwargs)                                          # validates, names a bad field
"""

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import gradio as gr


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _kind(hint: Any) -> tuple[str, tuple, bool]:
    """(kind, choices, optional) of a field's type hint: kind is bool, choice, int, float, list or text."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "choice", typing.get_args(hint), False
    union = origin in (typing.Union, types.UnionType)
    members = [a for a in typing.get_args(hint) if a is not type(None)] if union else [hint]
    optional = union and len(members) < len(typing.get_args(hint))
    if optional and len(members) == 1:
        return _kind(members[0])[0], (), True
    if members == [bool]:
        return "bool", (), optional
    if members == [int]:
        return "int", (), optional
    if members in ([float], [int, float]):
        return "float", (), optional
    if any(m is list or typing.get_origin(m) is list for m in members):
        return "list", (), optional
    return "text", (), optional


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def label_of(name: str) -> str:
    """`"max_seq_len"` -> `"Max seq len"`."""
    return name.replace("_", " ").capitalize()


def config_widgets(cls, names: Iterable[str], defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One Gradio input per named field of dataclass `cls` (call inside a Blocks), keyed by field name.

    bool -> Checkbox, Literal -> Dropdown, int/float (optional ones may be left empty) -> Number, list -> Textbox
    of comma-separated values, anything else -> Textbox. The field's `help` metadata is the widget's info line.
    """
    hints = typing.get_type_hints(cls)
    fields = _fields(cls)
    widgets = {}
    for name in names:
        field = fields[name]
        kind, choices, optional = _kind(hints[name])
        value = (defaults or {}).get(name, _default(field))
        info = field.metadata.get("help")
        label = label_of(name) + (" (optional)" if optional else "")
        if kind == "bool":
            widgets[name] = gr.Checkbox(bool(value), label=label, info=info)
        elif kind == "choice":
            widgets[name] = gr.Dropdown(list(choices), value=value, label=label, info=info)
        elif kind in ("int", "float"):
            precision = 0 if kind == "int" else None
            widgets[name] = gr.Number(value, label=label, info=info, precision=precision)
        else:
            text = ", ".join(value) if isinstance(value, list) else ("" if value is None else str(value))
            widgets[name] = gr.Textbox(text, label=label, info=info)
    return widgets


def coerce(cls, values: Mapping[str, Any]) -> dict[str, Any]:
    """Widget or JSON values -> keyword arguments for `cls`: whole numbers for int fields, None for an emptied
    optional field, a list for a comma-separated list field. Range checks are left to the dataclass.

    Raises:
        ValueError: a name that is not a field of `cls`, an empty required field, or a value of the wrong kind
            (each message names the field).
    """
    hints = typing.get_type_hints(cls)
    fields = _fields(cls)
    out = {}
    for name, value in values.items():
        if name not in fields:
            raise ValueError(f"unknown setting {name!r}: use one of {', '.join(fields)}")
        kind, _, optional = _kind(hints[name])
        out[name] = _coerce_value(name, value, kind, optional, _default(fields[name]))
    return out


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _coerce_value(name: str, value: Any, kind: str, optional: bool, default: Any) -> Any:
    if _empty(value):
        if optional or default is None:
            return None
        raise ValueError(f"{name} is empty: enter a value (the default is {default!r})")
    if kind == "bool":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value
    if kind in ("int", "float"):
        return _number(name, value, kind)
    if kind == "list" and isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
        return items[0] if len(items) == 1 and isinstance(default, str) else items
    return value.strip() if isinstance(value, str) else value


def _number(name: str, value: Any, kind: str) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if kind == "int":
        if not number.is_integer():
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        return int(number)
    return number
