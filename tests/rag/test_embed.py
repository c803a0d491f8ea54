"""Embedder resolution, loading errors and batched normalized encoding."""

from __future__ import annotations

import numpy as np
import pytest

from rag.embed import DEFAULT_EMBEDDER, canonical_id, embedded_model_dir, load_embedder, resolve_embedder


@pytest.mark.parametrize("model_id", [None, "all-MiniLM-L6-v2", DEFAULT_EMBEDDER])
def test_default_embedder_resolves_to_the_embedded_package(model_id):
    folder = embedded_model_dir()
    assert folder is not None and (folder / "modules.json").is_file()
    assert resolve_embedder(model_id) == str(folder)
    assert canonical_id(model_id) == DEFAULT_EMBEDDER


def test_local_folder_resolves_to_itself(tmp_path):
    assert resolve_embedder(str(tmp_path)) == str(tmp_path.resolve())
    assert canonical_id(str(tmp_path)) == str(tmp_path.resolve())


def test_uncached_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        ValueError, match=r"embedder 'nobody/no-such-embedder' is not a local folder.*offline"
    ):
        resolve_embedder("nobody/no-such-embedder")


def test_folder_that_is_not_a_model_is_a_clear_error(tmp_path):
    (tmp_path / "readme.txt").write_text("not a model")
    with pytest.raises(ValueError, match="could not load embedder"):
        load_embedder(str(tmp_path))


def test_encode_returns_unit_vectors_in_order_with_progress(embedder):
    calls = []
    texts = [f"sentence number {i} about topic {i % 3}" for i in range(10)]
    vectors = embedder.encode(texts, batch_size=2, progress=lambda d, t, m: calls.append((d, t)))
    assert vectors.shape == (10, embedder.dimension) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    single = embedder.encode([texts[7]])
    np.testing.assert_allclose(single[0], vectors[7], atol=1e-5)
    assert calls == [(0, 10), (8, 10), (10, 10)]
    assert embedder.encode([]).shape == (0, embedder.dimension)
