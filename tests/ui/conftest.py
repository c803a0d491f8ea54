"""Fixtures for the UI tests: one `Services` per session on a temp workspace, sharing the session's model, with a
random LoRA adapter registered as a finished run and a small knowledge base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ADAPTER_RUN = "run-random"
KB_NAME = "facts"
DOCS = {
    "tower.txt": "The Eiffel Tower is in Paris. It was finished in 1889 and is 330 metres tall.",
    "river.md": "# Rivers\n\nThe Seine flows through Paris into the English Channel.",
}
ALPACA = [
    {"instruction": f"Question number {i}?", "input": "", "output": f"Answer: item {i} is fine. Thanks!"}
    for i in range(12)
]


@pytest.fixture(scope="session")
def ui_workspace(tmp_path_factory, models_dir):
    from common.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("ui") / "ws")
    (ws.root / "models").rmdir()
    (ws.root / "models").symlink_to(models_dir, target_is_directory=True)
    return ws


@pytest.fixture(scope="session")
def random_adapter_dir(ui_workspace, lm) -> Path:
    """A LoRA adapter with random non-zero weights in a finished run directory of the workspace registry."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(lm.model.config)
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    run_dir = ui_workspace.runs_dir / ADAPTER_RUN
    get_peft_model(model, config).save_pretrained(run_dir)
    ui_workspace.record_run(ADAPTER_RUN, run_dir, "finished", dataset="demo.json", model="test")
    return run_dir


@pytest.fixture(scope="session")
def services(ui_workspace, lm, random_adapter_dir):
    """Services on the session workspace with the session's model, an adapter run and a knowledge base."""
    from rag import IndexConfig
    from ui.services import Services

    svc = Services(ui_workspace, max_upload_mb=1.0)
    svc.set_lm(lm)
    kb = svc.kb(KB_NAME, IndexConfig(chunk_size=64, overlap=8), create=True)
    docs = ui_workspace.root.parent / "docs"
    docs.mkdir(exist_ok=True)
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    kb.add_paths([docs / name for name in DOCS])
    return svc


@pytest.fixture(scope="session")
def alpaca_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "demo.json"
    path.write_text(json.dumps(ALPACA), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def adapter_run() -> str:
    """The run id of the random adapter in the workspace registry."""
    return ADAPTER_RUN


@pytest.fixture(scope="session")
def kb_name() -> str:
    """The name of the small knowledge base (tower.txt, river.md)."""
    return KB_NAME


@pytest.fixture(scope="session")
def serve():
    """Launch the app for given services (and app.py flags) on 127.0.0.1 at a free port: -> (demo, url)."""
    import socket

    import app

    def launch(services, *flags: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        args = app.parse_args(["--host", "127.0.0.1", "--port", str(port), "--max-upload-mb", "1", *flags])
        return app.launch(args, services, prevent_thread_lock=True), f"http://127.0.0.1:{port}/"

    return launch


@pytest.fixture(scope="session")
def server(services, serve):
    """The full app on the session services, served over HTTP for gradio_client tests."""
    demo, url = serve(services)
    yield url
    demo.close()
