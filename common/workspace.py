"""The workspace: one directory that holds everything the app and the CLIs produce.

Layout::

    <root>/
      models/       converted model cache (safetensors rebuilt from embedded GGUF files)
      datasets/     uploaded datasets
      runs/<id>/    training runs (adapter, config, metrics, report)
      indexes/<n>/  knowledge bases (FAISS file + metadata, never pickle)
      evals/<id>/   eval runs (results, report)
      registry.sqlite   runs, indexes, eval runs and votes

The root is `./workspace` unless `--workspace` or the `FTRAG_WORKSPACE` environment variable says otherwise;
on a Hugging Face Space with persistent storage it is `/data/workspace`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_VAR = "FTRAG_WORKSPACE"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    model TEXT,
    dataset TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'cancelled', 'failed')),
    error TEXT,
    config TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS indexes (
    name TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    embedder TEXT,
    documents INTEGER,
    chunks INTEGER,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS eval_runs (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    arms TEXT,
    status TEXT NOT NULL,
    summary TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS comparisons (
    id TEXT PRIMARY KEY,
    prompt TEXT NOT NULL,
    arm_a TEXT NOT NULL,
    arm_b TEXT NOT NULL,
    answer_a TEXT NOT NULL,
    answer_b TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS votes (
    comparison_id TEXT PRIMARY KEY REFERENCES comparisons(id),
    winner TEXT NOT NULL CHECK (winner IN ('a', 'b', 'tie', 'both_bad')),
    voter TEXT,
    created REAL NOT NULL
);
"""


def default_root() -> Path:
    """The workspace root: `$FTRAG_WORKSPACE`, else `/data/workspace` on a Space with storage, else ./workspace."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    if os.environ.get("SPACE_ID") and Path("/data").is_dir() and os.access("/data", os.W_OK):
        return Path("/data/workspace")
    return Path("workspace")


@dataclass
class Workspace:
    """Paths and the SQLite registry of one workspace directory."""

    root: Path = field(default_factory=default_root)

    def __post_init__(self) -> None:
        self.root = Path(self.root).expanduser().resolve()
        for sub in ("models", "datasets", "runs", "indexes", "evals"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        with self.db() as con:
            con.executescript(SCHEMA)

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def indexes_dir(self) -> Path:
        return self.root / "indexes"

    @property
    def evals_dir(self) -> Path:
        return self.root / "evals"

    @property
    def db_path(self) -> Path:
        return self.root / "registry.sqlite"

    @contextmanager
    def db(self):
        """A connection in a transaction: committed on success, rolled back on error, always closed."""
        con = sqlite3.connect(self.db_path, timeout=30)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA foreign_keys=ON")
        try:
            with con:
                yield con
        finally:
            con.close()

    # -- runs ------------------------------------------------------------------------------------------
    def record_run(self, run_id: str, path: Path, status: str, **fields: Any) -> None:
        """Insert or update a training run's row (status: running / finished / cancelled / failed)."""
        now = time.time()
        config = fields.pop("config", None)
        with self.db() as con:
            con.execute(
                """INSERT INTO runs (id, path, model, dataset, status, error, config, created, updated)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET status=excluded.status, error=excluded.error,
                     path=excluded.path, updated=excluded.updated,
                     model=COALESCE(excluded.model, runs.model),
                     dataset=COALESCE(excluded.dataset, runs.dataset),
                     config=COALESCE(excluded.config, runs.config)""",
                (
                    run_id,
                    str(path),
                    fields.get("model"),
                    fields.get("dataset"),
                    status,
                    fields.get("error"),
                    json.dumps(config) if config is not None else None,
                    now,
                    now,
                ),
            )

    def runs(self) -> list[dict]:
        """All training runs, newest first."""
        with self.db() as con:
            rows = con.execute("SELECT * FROM runs ORDER BY created DESC").fetchall()
        return [dict(r) for r in rows]

    def run(self, run_id: str) -> dict | None:
        with self.db() as con:
            row = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return dict(row) if row else None

    # -- indexes ---------------------------------------------------------------------------------------
    def record_index(self, name: str, path: Path, embedder: str, documents: int, chunks: int) -> None:
        with self.db() as con:
            con.execute(
                """INSERT INTO indexes (name, path, embedder, documents, chunks, updated)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT(name) DO UPDATE SET path=excluded.path, embedder=excluded.embedder,
                     documents=excluded.documents, chunks=excluded.chunks, updated=excluded.updated""",
                (name, str(path), embedder, documents, chunks, time.time()),
            )

    def indexes(self) -> list[dict]:
        with self.db() as con:
            rows = con.execute("SELECT * FROM indexes ORDER BY name").fetchall()
        return [dict(r) for r in rows]

    def remove_index(self, name: str) -> None:
        with self.db() as con:
            con.execute("DELETE FROM indexes WHERE name = ?", (name,))
