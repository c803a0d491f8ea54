"""Small helpers every tab uses: user errors shown as Gradio errors, checked uploads, empty-state texts.

Handlers raise `ValueError` (as the library does) for anything the user can fix; `user_errors` turns it into a
`gr.Error` with the same message, so the browser shows it and the server keeps serving.
"""

from __future__ import annotations

import functools
import inspect
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import gradio as gr

from ui.services import safe_name

NO_ADAPTER = "No adapter yet: train one in the Train tab."
NO_INDEX = "No knowledge base yet: create one in the Knowledge tab."
NO_DATASET = "No dataset yet: upload one in the Data tab."
SESSION_EXPIRED = "This page's session has no such item (it was reloaded or expired): start again."


def user_errors(fn: Callable) -> Callable:
    """Wrap a handler (plain or generator) so a ValueError reaches the user as a `gr.Error` with its message."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except ValueError as e:
                raise gr.Error(str(e)) from e

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except ValueError as e:
            raise gr.Error(str(e)) from e

    return wrapper


def bind(fn: Callable, services) -> Callable:
    """`fn(services, ...)` as a Gradio handler `(...)`, with ValueErrors shown to the user."""
    handler = user_errors(fn)
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def bound_gen(*args):
            yield from handler(services, *args)

        bound_gen.__signature__ = _without_first(fn)
        return bound_gen

    @functools.wraps(fn)
    def bound(*args):
        return handler(services, *args)

    bound.__signature__ = _without_first(fn)
    return bound


def _without_first(fn: Callable) -> inspect.Signature:
    sig = inspect.signature(fn)
    return sig.replace(parameters=list(sig.parameters.values())[1:])


def upload_path(file) -> Path:
    """The local path of a `gr.File` value (a path string, or an object with `.name`/`.path`)."""
    if file is None:
        raise ValueError("no file uploaded: drop a file on the upload box first")
    for attr in ("path", "name"):
        if hasattr(file, attr) and not isinstance(file, str | Path):
            return Path(getattr(file, attr))
    return Path(file)


def check_upload(file, suffixes: Sequence[str], max_mb: float, what: str = "file") -> tuple[Path, str]:
    """The uploaded file's path and a safe name for it.

    Raises:
        ValueError: no file, a type not in `suffixes`, or larger than `max_mb` (each message says what to do).
    """
    path = upload_path(file)
    name = safe_name(path.name)
    suffix = "".join(Path(name).suffixes[-1:]).lower()
    if suffix not in suffixes:
        raise ValueError(
            f"{name}: {suffix or 'no extension'} is not a supported {what} type; use one of {', '.join(suffixes)}"
        )
    if not path.is_file():
        raise ValueError(f"{name}: the upload did not arrive; upload it again")
    size_mb = path.stat().st_size / 2**20
    if size_mb > max_mb:
        raise ValueError(
            f"{name} is {size_mb:.1f} MB, over the {max_mb:g} MB upload limit; upload a smaller file"
        )
    return path, name


def stage_uploads(files, folder: Path, suffixes: Sequence[str], max_mb: float) -> list[Path]:
    """Copy uploaded files into `folder` under safe names (a later one of the same name replaces the earlier)."""
    folder.mkdir(parents=True, exist_ok=True)
    staged = []
    for file in files or []:
        path, name = check_upload(file, suffixes, max_mb, "document")
        target = folder / name
        shutil.copyfile(path, target)
        staged.append(target)
    if not staged:
        raise ValueError("no files uploaded: drop documents or a .zip on the upload box first")
    return staged


def on_load(fn: Callable, inputs, outputs) -> None:
    """Run `fn` when a page loads (e.g. to show a background job's progress again after a reload)."""
    from gradio.context import Context

    Context.root_block.load(fn, inputs, outputs, api_visibility="private")


def refresh_on_focus(dropdown, choices: Callable[[], list]) -> None:
    """Fill a picker's choices afresh each time it is opened (runs, indexes or datasets made since page load)."""
    dropdown.focus(lambda: gr.Dropdown(choices=choices()), None, dropdown, api_visibility="private")
