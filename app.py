"""Serve the app: `python app.py [--host H] [--port P] [--workspace DIR] [--share] [--auth user:pass] [--stakeholder]`.

On a Hugging Face Space (SPACE_ID set) it listens on 0.0.0.0, keeps its workspace in /data/workspace when
persistent storage is mounted, and runs generation under `spaces.GPU` when the `spaces` package is installed.
`--auth` may also come from the FTRAG_AUTH environment variable ("user:pass", several separated by commas).
"""

from __future__ import annotations

import argparse
import os

from tuner.models import DEFAULT_MODEL

AUTH_ENV = "FTRAG_AUTH"


def parse_auth(spec: str | None) -> list[tuple[str, str]] | None:
    """`"alice:pw1,bob:pw2"` -> [("alice", "pw1"), ("bob", "pw2")]; None or "" -> None (no login)."""
    if not spec:
        return None
    pairs = []
    for item in spec.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user or not password:
            raise ValueError(
                f"--auth must be user:password (comma-separated for several), got {item.strip()!r}"
            )
        pairs.append((user, password))
    return pairs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    on_space = bool(os.environ.get("SPACE_ID"))
    p = argparse.ArgumentParser(description="Fine-tune or RAG? The app.")
    p.add_argument("--host", default="0.0.0.0" if on_space else "127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", 7860)), help="port to listen on")
    p.add_argument(
        "--workspace", default=None, help="workspace folder (default: $FTRAG_WORKSPACE or ./workspace)"
    )
    p.add_argument("--share", action="store_true", help="create a public Gradio share link")
    p.add_argument("--auth", default=os.environ.get(AUTH_ENV), help=f"user:password login (or ${AUTH_ENV})")
    p.add_argument("--stakeholder", action="store_true", help="demo mode: only Compare, Arena and Report")
    p.add_argument("--model", default=DEFAULT_MODEL, help="base model: hub id or local folder")
    p.add_argument("--no-4bit", dest="four_bit", action="store_false", help="load the model unquantized")
    p.add_argument("--max-upload-mb", type=float, default=100.0, help="largest accepted upload, in MB")
    p.add_argument("--concurrency", type=int, default=4, help="events the queue runs at once, per event")
    return p.parse_args(argv)


def make_services(args: argparse.Namespace):
    from common.workspace import Workspace
    from ui.services import Services

    workspace = Workspace(args.workspace) if args.workspace else Workspace()
    return Services(workspace, args.model, args.four_bit, args.stakeholder, args.max_upload_mb)


def launch(args: argparse.Namespace, services=None, prevent_thread_lock: bool = False):
    """Build and launch the app (for `services`, or ones made from `args`); returns the Blocks.

    With `prevent_thread_lock` the server runs in the background (tests, benchmarks); `demo.close()` stops it.
    """
    from ui import CSS, THEME, build_app

    auth = parse_auth(args.auth)
    services = services or make_services(args)
    demo = build_app(services).queue(default_concurrency_limit=args.concurrency)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        auth=auth,
        auth_message="Log in with the user name and password you were given." if auth else None,
        max_file_size=f"{args.max_upload_mb:g}mb",
        prevent_thread_lock=prevent_thread_lock,
        theme=THEME,
        css=CSS,
        footer_links=[] if services.stakeholder else ["api"],
        quiet=True,
    )
    return demo


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        parse_auth(args.auth)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    launch(args)


if __name__ == "__main__":
    main()
