"""Shared fixtures: the embedded chat model (4-bit, loaded once per session) and throwaway workspaces.

The converted-model cache lives in `<repo>/workspace/models` (git-ignored) so the GGUF conversion runs once per
machine, not once per test session; set FTRAG_TEST_MODELS_DIR to move it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data folder (../shared/data)."""
    if not DATA.is_dir():
        pytest.skip(f"shared data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def models_dir() -> Path:
    path = Path(os.environ.get("FTRAG_TEST_MODELS_DIR", ROOT / "workspace" / "models"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def workspace(tmp_path, models_dir):
    """A fresh workspace in a temp folder (its model cache is the shared one)."""
    from common.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    (ws.root / "models").rmdir()
    (ws.root / "models").symlink_to(models_dir, target_is_directory=True)
    return ws


@pytest.fixture(scope="session")
def lm(models_dir):
    """The embedded SmolLM2-135M-Instruct in 4-bit NF4. Tests that attach adapters must detach them."""
    from tuner.models import load_model

    return load_model(models_dir=models_dir)


@pytest.fixture(scope="session")
def tokenizer(models_dir):
    from tuner.models import load_tokenizer

    return load_tokenizer(models_dir=models_dir)
