"""Fixtures for the evals tests: a tiny deterministic embedder and the real embedded all-MiniLM-L6-v2."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest


def _bag_of_words(texts: list[str], dim: int = 64) -> np.ndarray:
    """Hash each lower-cased word into one of `dim` slots: same words -> same vector, no model needed."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % dim] += 1.0
    return out


@pytest.fixture
def fake_embedder():
    """A callable embedder (texts -> array) for fast, exact tests."""
    return _bag_of_words


@pytest.fixture(scope="session")
def minilm():
    """The embedded sentence-transformers model (loaded once per session)."""
    from rag.embed import load_embedder

    return load_embedder()
