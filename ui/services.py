"""Process-wide services the tabs share: the workspace, the model behind one generation lock, knowledge bases,
datasets saved in the workspace, and a registry of background jobs.

`app.py` builds one `Services` and passes it to `ui.build_app`; nothing here is a module global, and nothing here
holds per-user data (chat histories and blind comparisons live in `gr.State`).

    services = Services(Workspace("workspace"))
    with services.generating() as lm:       # the loaded model, one batch at a time
        ...
    job = services.jobs.start("index", "manuals", work)    # work(job) calls job.progress(done, total, msg)
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_json
from common.workspace import Workspace
from tuner.models import DEFAULT_MODEL

DATASET_SUFFIXES = (".json", ".jsonl", ".csv", ".tsv", ".parquet")
META_FOLDER = ".meta"  # datasets/.meta/<name>.json: how each saved dataset is read
NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str, fallback: str = "upload") -> str:
    """A file or folder name that cannot leave its folder: no directories, no leading dots, plain characters.

    `"../../etc/passwd"` -> `"passwd"`, `"my data (v2).json"` -> `"my_data_v2_.json"`.
    """
    base = re.split(r"[\\/]", str(name or ""))[-1]
    cleaned = NAME.sub("_", base).lstrip("._-")[:120]
    return cleaned or fallback


class JobConflict(ValueError):
    """A job cannot start because another one of its kind is running (e.g. a second training)."""


@dataclass
class Job:
    """One background task and its progress; readable from any session by id, so a reload shows it again."""

    id: str
    kind: str
    name: str
    status: str = "running"  # running / finished / failed / cancelled
    done: int = 0
    total: int = 0
    message: str = "starting"
    events: list[Any] = field(default_factory=list)
    error: str | None = None
    result: Any = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event, repr=False)

    def progress(self, done: int, total: int, message: str = "") -> None:
        """The callback the library jobs report through: `progress(done, total, message)`."""
        self.done, self.total = int(done), int(total)
        if message:
            self.message = message

    def event(self, item: Any) -> None:
        """Record an event (e.g. a training log line with loss) for plots."""
        self.events.append(item)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @property
    def running(self) -> bool:
        return self.status == "running"

    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    def summary(self) -> str:
        """One line for a status box: kind, name, status, percent and message (or the error)."""
        if self.status == "failed":
            return f"{self.kind} {self.name}: failed: {self.error}"
        pct = f" {100 * self.fraction():.0f}%" if self.total else ""
        return f"{self.kind} {self.name}: {self.status}{pct} ({self.message})"


class Jobs:
    """Background jobs in threads. `exclusive` kinds (training, eval runs) run one at a time."""

    def __init__(self, exclusive: tuple[str, ...] = ("train", "eval")) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self.exclusive = exclusive

    def start(self, kind: str, name: str, work: Callable[[Job], Any]) -> Job:
        """Run `work(job)` in a thread; its return value becomes `job.result`, an exception `job.error`.

        Raises:
            JobConflict: `kind` is exclusive and a job of that kind is running (the message names it).
        """
        with self._lock:
            busy = self.running(kind)
            if kind in self.exclusive and busy:
                raise JobConflict(
                    f"{kind} {busy[0].name!r} is still running: wait for it to finish or cancel it first"
                )
            job = Job(uuid.uuid4().hex[:12], kind, name)
            self._jobs[job.id] = job
        threading.Thread(target=self._run, args=(job, work), daemon=True, name=f"job-{kind}").start()
        return job

    @staticmethod
    def _run(job: Job, work: Callable[[Job], Any]) -> None:
        try:
            job.result = work(job)
            job.status = "cancelled" if job.cancelled else "finished"
            job.message = job.status
        except Exception as e:  # the job's failure is shown in the UI, never kills the server
            job.status, job.error = (
                "failed",
                f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e),
            )
        finally:
            job.ended = time.time()

    def get(self, job_id: str | None) -> Job | None:
        return self._jobs.get(job_id or "")

    def list(self, kind: str | None = None) -> list[Job]:
        """Jobs, newest first, optionally of one kind."""
        jobs = [j for j in self._jobs.values() if kind is None or j.kind == kind]
        return sorted(jobs, key=lambda j: j.started, reverse=True)

    def running(self, kind: str | None = None) -> list[Job]:
        return [j for j in self.list(kind) if j.running]

    def latest(self, kind: str, name: str | None = None) -> Job | None:
        return next((j for j in self.list(kind) if name is None or j.name == name), None)


def gpu_decorator() -> Callable[[Callable], Callable]:
    """`spaces.GPU` on a ZeroGPU Space (the `spaces` package is importable there), else a no-op."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return lambda fn: fn
    return spaces.GPU


@dataclass
class Services:
    """Everything the tabs share in one process. Build one in `app.py`; never a module global."""

    workspace: Workspace
    model_id: str = DEFAULT_MODEL
    four_bit: bool = True
    stakeholder: bool = False
    max_upload_mb: float = 100.0
    jobs: Jobs = field(default_factory=Jobs)
    on_gpu: Callable[[Callable], Callable] = field(default_factory=gpu_decorator)
    generation_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _load_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _lm: Any = field(default=None, repr=False)
    _tokenizer: Any = field(default=None, repr=False)
    _embedder: Any = field(default=None, repr=False)
    _kbs: dict[str, Any] = field(default_factory=dict, repr=False)
    _kb_locks: dict[str, threading.RLock] = field(default_factory=dict, repr=False)

    # -- model -----------------------------------------------------------------------------------------
    def lm(self):
        """The shared `LoadedModel`, loaded on first use (4-bit unless --no-4bit)."""
        with self._load_lock:
            if self._lm is None:
                from tuner.models import load_model

                self._lm = load_model(
                    self.model_id, four_bit=self.four_bit, models_dir=self.workspace.models_dir
                )
            return self._lm

    def set_lm(self, lm) -> None:
        """Use an already loaded model (tests share one per session)."""
        self._lm = lm

    def tokenizer(self):
        """The chat model's tokenizer (the loaded model's if there is one; else loaded alone, cheaply)."""
        if self._lm is not None:
            return self._lm.tokenizer
        with self._load_lock:
            if self._tokenizer is None:
                from tuner.models import load_tokenizer

                self._tokenizer = load_tokenizer(self.model_id, models_dir=self.workspace.models_dir)
            return self._tokenizer

    @contextmanager
    def generating(self) -> Iterator[Any]:
        """The loaded model, held by this caller alone: one generation batch at a time in the process."""
        lm = self.lm()
        with self.generation_lock:
            yield lm

    # -- knowledge bases -------------------------------------------------------------------------------
    def embedder(self):
        with self._load_lock:
            if self._embedder is None:
                from rag import Embedder

                self._embedder = Embedder.load()
            return self._embedder

    def index_names(self) -> list[str]:
        """Knowledge bases in the workspace, by name."""
        from rag.store import is_index_dir

        root = self.workspace.indexes_dir
        return sorted(p.name for p in root.iterdir() if p.is_dir() and is_index_dir(p))

    def kb_lock(self, name: str) -> threading.RLock:
        return self._kb_locks.setdefault(name, threading.RLock())

    def kb(self, name: str, config=None, create: bool = False):
        """The open knowledge base `name` (loaded once). With `create`, a new one is made if missing.

        Raises:
            ValueError: unknown name (without `create`), or a name that is not a plain folder name.
        """
        if not name or safe_name(name) != name:
            raise ValueError(f"index name {name!r} must use letters, digits, '.', '_' or '-' only")
        if name in self._kbs:
            return self._kbs[name]
        if not create and name not in self.index_names():
            raise ValueError(f"no knowledge base named {name!r}: create it in the Knowledge tab")
        from rag import KnowledgeBase

        with self.kb_lock(name):
            path = self.workspace.indexes_dir / name
            kb = KnowledgeBase.open(path, self.embedder(), config, workspace=self.workspace)
            return self._kbs.setdefault(name, kb)

    def forget_kb(self, name: str) -> None:
        self._kbs.pop(name, None)

    # -- adapters --------------------------------------------------------------------------------------
    def adapter_runs(self) -> list[dict]:
        """Finished training runs whose adapter is still on disk, newest first."""
        from evals.arms import adapter_dir

        runs = [r for r in self.workspace.runs() if r["status"] in ("finished", "cancelled")]
        return [r for r in runs if (adapter_dir(r["path"]) / "adapter_config.json").is_file()]

    # -- datasets --------------------------------------------------------------------------------------
    def dataset_names(self) -> list[str]:
        """Datasets saved in the workspace (by the Data tab), by file name."""
        folder = self.workspace.datasets_dir
        return sorted(
            p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in DATASET_SUFFIXES
        )

    def dataset_path(self, name: str) -> Path:
        path = self.workspace.datasets_dir / safe_name(name)
        if not name or not path.is_file():
            raise ValueError(f"no dataset named {name!r} in the workspace: upload one in the Data tab")
        return path

    def dataset_options(self, name: str) -> dict:
        """How a saved dataset is read: {"fmt", "columns", "eval_fraction", "seed", "max_seq_len"}."""
        meta = self._meta_path(name)
        defaults = {"fmt": "auto", "columns": None, "eval_fraction": 0.1, "seed": 42, "max_seq_len": 1024}
        if not meta.is_file():
            return defaults
        return {**defaults, **json.loads(meta.read_text(encoding="utf-8"))}

    def save_dataset_options(self, name: str, options: dict) -> None:
        atomic_write_json(self._meta_path(name), options)

    def _meta_path(self, name: str) -> Path:
        return self.dataset_path(name).parent / META_FOLDER / f"{safe_name(name)}.json"

    def load_dataset(self, name: str):
        """A saved dataset read with the format and column mapping chosen when it was uploaded."""
        from tuner.data import load_dataset

        opts = self.dataset_options(name)
        return load_dataset(self.dataset_path(name), opts["fmt"], opts["columns"])

    def eval_examples(self, name: str) -> list:
        """The held-out split of a saved dataset (the same split training uses: its eval_fraction and seed)."""
        from tuner.data import split_examples

        opts = self.dataset_options(name)
        fraction = opts["eval_fraction"] or 0.1
        _, held_out = split_examples(self.load_dataset(name).examples, fraction, opts["seed"])
        return held_out
