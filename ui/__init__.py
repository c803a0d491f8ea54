"""The Gradio interface: `build_app(services)` builds the tabs; `app.py` at the repository root launches it."""

from ui.app import CSS, THEME, build_app

__all__ = ["CSS", "THEME", "build_app"]
