"""Pieces every package stands on: the workspace directory, its SQLite registry, and atomic file writes.

`tuner`, `rag` and `evals` all import from here; `common` imports none of them (and nothing heavy).
"""

from common.atomic import atomic_dir, atomic_write_bytes, atomic_write_json, atomic_write_text
from common.workspace import Workspace

__all__ = ["Workspace", "atomic_dir", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"]
