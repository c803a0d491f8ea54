"""The app's layout: theme, header and the tabs, in the order of the user's loop.

Data -> Train -> Knowledge -> Compare -> Arena -> Evaluate -> Report. In stakeholder mode only Compare, Arena and
Report are built, so the upload, training, deletion and settings endpoints do not exist at all. Each tab is a
module `ui.tabs.<name>` exposing `build(services)`; a tab whose module is not installed is left out.

    demo = build_app(services); demo.queue().launch(theme=THEME, css=CSS)     # see app.py
"""

from __future__ import annotations

import importlib
import importlib.util

import gradio as gr

from ui.services import Services

TABS = [  # (module, label, shown in stakeholder mode)
    ("data", "Data", False),
    ("train", "Train", False),
    ("knowledge", "Knowledge", False),
    ("compare", "Compare", True),
    ("arena", "Arena", True),
    ("evaluate", "Evaluate", False),
    ("report", "Report", True),
]

THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="slate")
CSS = """
.badge-row span.badge {display:inline-block; margin:2px 4px 2px 0; padding:1px 8px; border-radius:10px;
  font-size:0.8em; border:1px solid var(--border-color-primary);}
.badge.pass {background:#e7f6ec; color:#17663a;} .badge.fail {background:#fdecec; color:#9b1c1c;}
.badge.skip {background:var(--background-fill-secondary); color:var(--body-text-color-subdued);}
.help {color: var(--body-text-color-subdued); font-size: 0.9em;}
footer {visibility: hidden}
"""

HEADER = """# Fine-tune or RAG?
Upload a dataset and documents, train an adapter, then put **base**, **fine-tuned**, **base+RAG** and
**fine-tuned+RAG** side by side, vote blind and download the decision report."""

STAKEHOLDER_HEADER = """# Fine-tune or RAG?
Ask the candidate models side by side, vote blind in the Arena, and read the decision report."""


def available_tabs(stakeholder: bool) -> list[tuple[str, str]]:
    """(module name, label) of the tabs to build: those whose module exists, filtered for stakeholder mode."""
    return [
        (module, label)
        for module, label, public in TABS
        if (public or not stakeholder) and importlib.util.find_spec(f"ui.tabs.{module}") is not None
    ]


def build_app(services: Services) -> gr.Blocks:
    """The whole interface for `services` (one per process)."""
    with gr.Blocks(title="Fine-tune or RAG?") as demo:
        gr.Markdown(STAKEHOLDER_HEADER if services.stakeholder else HEADER)
        for module, label in available_tabs(services.stakeholder):
            with gr.Tab(label, id=module):
                importlib.import_module(f"ui.tabs.{module}").build(services)
    return demo
