"""Training progress: events for the CLI bar and the UI plot, metrics JSONL, cancel, overfitting and early stopping.

`ProgressEvent` is what a `progress` callback receives from `tuner.train.train`, once per optimizer step and once
per evaluation. `RunCallback` is the transformers `TrainerCallback` that produces them; it also stops training
when the `cancel` event is set (after the optimizer step in flight, saving a checkpoint) and when eval loss has not
improved for `early_stopping_patience` evaluations.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

OVERFIT_EVALS = 3  # eval loss rising this many evaluations in a row while train loss falls -> warning


@dataclass
class ProgressEvent:
    """One progress report. Losses are None when not measured at this step."""

    kind: Literal["step", "eval", "warning"]
    step: int
    total_steps: int
    epoch: float
    train_loss: float | None = None
    eval_loss: float | None = None
    learning_rate: float | None = None
    tokens_per_s: float | None = None  # real (non-padding) tokens through the model, this process
    elapsed_s: float = 0.0
    eta_s: float | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """A short line for a progress bar postfix."""
        parts = []
        if self.train_loss is not None:
            parts.append(f"loss {self.train_loss:.3f}")
        if self.eval_loss is not None:
            parts.append(f"eval {self.eval_loss:.3f}")
        if self.tokens_per_s:
            parts.append(f"{self.tokens_per_s:.0f} tok/s")
        if self.message:
            parts.append(self.message)
        return ", ".join(parts)


def overfitting(evals: list[tuple[float, float]], n: int = OVERFIT_EVALS) -> bool:
    """True when, over the last `n` evaluations, eval loss rose every time while train loss fell.

    `evals` holds (train_loss, eval_loss) pairs, the train loss being the mean since the previous evaluation.
    """
    if len(evals) < n + 1:
        return False
    window = evals[-(n + 1) :]
    pairs = list(itertools.pairwise(window))
    return all(b[1] > a[1] for a, b in pairs) and all(b[0] < a[0] for a, b in pairs)


def _trainer_callback_base():
    from transformers import TrainerCallback

    return TrainerCallback


def make_run_callback(**kwargs):
    """A `RunCallback` (built lazily so importing this module does not import transformers)."""

    class RunCallback(_trainer_callback_base()):
        def __init__(
            self,
            *,
            progress: Callable[[ProgressEvent], None] | None,
            cancel: Any,
            counter: Any,
            metrics_path: Path | None,
            early_stopping_patience: int | None,
        ) -> None:
            self.progress = progress
            self.cancel = cancel
            self.counter = counter
            self.metrics_path = metrics_path
            self.patience = early_stopping_patience
            self.cancelled = False
            self.early_stopped = False
            self.overfit_warned = False
            self.evals: list[tuple[float, float]] = []
            self._losses: list[float] = []
            self._start = time.perf_counter()
            self._start_step = 0
            self._start_tokens = 0
            self._last_lr: float | None = None

        def on_train_begin(self, args, state, control, **kw):
            self._start = time.perf_counter()
            self._start_step = state.global_step
            self._start_tokens = self.counter.tokens

        def on_log(self, args, state, control, logs=None, **kw):
            logs = logs or {}
            if "loss" in logs:
                self._losses.append(float(logs["loss"]))
                self._last_lr = logs.get("learning_rate", self._last_lr)
                self._emit(self._event("step", state, train_loss=float(logs["loss"])), args)

        def on_step_end(self, args, state, control, **kw):
            if self.cancel is not None and self.cancel.is_set():
                self.cancelled = True
                control.should_save = True
                control.should_training_stop = True

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            if not metrics or "eval_loss" not in metrics:
                return
            eval_loss = float(metrics["eval_loss"])
            train_loss = sum(self._losses) / len(self._losses) if self._losses else float("nan")
            self._losses = []
            self.evals.append((train_loss, eval_loss))
            self._emit(self._event("eval", state, eval_loss=eval_loss), args)
            if not self.overfit_warned and overfitting(self.evals):
                self.overfit_warned = True
                message = (
                    f"overfitting: eval loss rose for {OVERFIT_EVALS} evaluations while train loss fell; "
                    "consider fewer steps, a lower learning rate or more data"
                )
                self._emit(self._event("warning", state, eval_loss=eval_loss, message=message), args)
            if self.patience and self._evals_since_best() >= self.patience:
                self.early_stopped = True
                control.should_save = True
                control.should_training_stop = True

        def _evals_since_best(self) -> int:
            losses = [e for _, e in self.evals]
            return len(losses) - 1 - losses.index(min(losses))

        def _event(self, kind: str, state, **fields) -> ProgressEvent:
            elapsed = time.perf_counter() - self._start
            done = state.global_step - self._start_step
            eta = elapsed / done * (state.max_steps - state.global_step) if done else None
            tokens = self.counter.tokens - self._start_tokens
            return ProgressEvent(
                kind=kind,  # type: ignore[arg-type]
                step=state.global_step,
                total_steps=state.max_steps,
                epoch=float(state.epoch or 0.0),
                learning_rate=self._last_lr,
                tokens_per_s=tokens / elapsed if elapsed > 0 else None,
                elapsed_s=elapsed,
                eta_s=eta,
                **fields,
            )

        def _emit(self, event: ProgressEvent, args) -> None:
            if args.process_index != 0:
                return
            if self.metrics_path is not None:
                with open(
                    self.metrics_path, "a", encoding="utf-8"
                ) as f:  # append-only log, one line per event
                    f.write(json.dumps(event.to_dict()) + "\n")
            if self.progress is not None:
                self.progress(event)

    return RunCallback(**kwargs)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The events of a metrics JSONL file (a half-written last line from a crash is ignored)."""
    events = []
    if not Path(path).is_file():
        return events
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def plot_loss_curve(events: list[dict[str, Any]], path: Path) -> Path:
    """Draw train and eval loss against the step into a PNG (matplotlib, no display needed); written atomically."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from common.atomic import atomic_write_bytes

    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot()
    train = [
        (e["step"], e["train_loss"]) for e in events if e["kind"] == "step" and e["train_loss"] is not None
    ]
    evals = [(e["step"], e["eval_loss"]) for e in events if e["kind"] == "eval"]
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss")
    if evals:
        ax.plot(*zip(*evals, strict=True), marker="o", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())
