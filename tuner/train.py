"""QLoRA training: a dataset file (or chat examples) in, a LoRA adapter run directory out.

The base model is loaded in 4-bit NF4 (`tuner.models.load_model`), LoRA adapters are added with PEFT, and the
transformers `Trainer` runs the loop with our batching (`tuner.batching`: assistant-only labels, length-grouped or
padding-free batches) and our callback (`tuner.callbacks`: progress events, metrics, cancel, early stopping).

A run directory holds the adapter (`adapter_config.json`, `adapter_model.safetensors`, loadable by plain
`peft.PeftModel.from_pretrained`), the tokenizer and chat template, `train_config.json`, `metrics.jsonl`,
`loss_curve.png`, `validation_report.json`, `data.jsonl` (the examples trained on, so `resume` needs nothing else)
and `checkpoints/` (optimizer, scheduler and RNG state for `resume`).

    python -m tuner.train DATA --output DIR [--max-steps N] [knobs...]     # same as `python -m tuner train`
    torchrun --nproc_per_node 2 -m tuner.train DATA --output DIR           # DDP (gloo on CPU, nccl on GPU)
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from common.atomic import atomic_write_json
from tuner.callbacks import ProgressEvent
from tuner.models import DEFAULT_MODEL

CONFIG_FILE = "train_config.json"
RUN_FILE = "run.json"
DATA_FILE = "data.jsonl"
METRICS_FILE = "metrics.jsonl"
REPORT_FILE = "validation_report.json"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def _help(text: str, **kw) -> dict:
    return {"help": text, **kw}


@dataclass
class TrainConfig:
    """Everything a training run needs; the CLI and the UI fill this one dataclass."""

    data: str | None = field(default=None, metadata=_help("dataset file (JSON, JSONL, CSV/TSV, Parquet)"))
    output_dir: str | None = field(
        default=None, metadata=_help("run directory (default <workspace>/runs/<id>)")
    )
    model: str = field(default=DEFAULT_MODEL, metadata=_help("hub id or local model folder"))
    data_format: str = field(
        default="auto", metadata=_help("auto, alpaca, sharegpt, openai, prompt_completion, columns")
    )
    columns: dict | None = field(default=None, metadata=_help('column mapping for format "columns"'))
    four_bit: bool = field(
        default=True, metadata=_help("load the base in 4-bit NF4 (QLoRA); False = plain LoRA")
    )
    lora_r: int = field(default=16, metadata=_help("LoRA rank"))
    lora_alpha: int = field(default=32, metadata=_help("LoRA scaling numerator (scale = alpha / r)"))
    lora_dropout: float = field(default=0.05, metadata=_help("dropout on the LoRA input"))
    target_modules: str | list[str] = field(
        default="all-linear", metadata=_help("modules to adapt; all-linear")
    )
    learning_rate: float = field(default=2e-4, metadata=_help("peak learning rate (AdamW)"))
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = field(
        default="cosine", metadata=_help("learning-rate schedule after warmup")
    )
    warmup_ratio: float = field(
        default=0.03, metadata=_help("share of the steps spent warming up, in [0, 0.5]")
    )
    epochs: float = field(
        default=1.0, metadata=_help("passes over the training set (ignored with max_steps)")
    )
    max_steps: int | None = field(default=None, metadata=_help("optimizer steps to run; overrides epochs"))
    batch_size: int = field(default=4, metadata=_help("examples per device per forward pass"))
    gradient_accumulation: int = field(default=1, metadata=_help("forward passes per optimizer step"))
    max_seq_len: int = field(default=1024, metadata=_help("tokens per example; longer ones are truncated"))
    eval_fraction: float = field(
        default=0.1, metadata=_help("share of examples held out for eval loss, [0, 0.5]")
    )
    eval_every: int | None = field(
        default=None, metadata=_help("steps between evaluations (default: 5 per run)")
    )
    save_every: int = field(default=50, metadata=_help("steps between resumable checkpoints"))
    seed: int = field(default=42, metadata=_help("seed for split, LoRA init and data order"))
    assistant_only_loss: bool = field(default=True, metadata=_help("loss on assistant tokens only"))
    batching: Literal["grouped", "padding_free", "max_length"] = field(
        default="grouped",
        metadata=_help(
            "grouped: similar lengths per batch; padding_free: one flat row; max_length: pad to max_seq_len"
        ),
    )
    gradient_checkpointing: bool = field(default=False, metadata=_help("trade compute for activation memory"))
    early_stopping_patience: int | None = field(
        default=None, metadata=_help("stop after this many evaluations without a better eval loss")
    )
    weight_decay: float = field(default=0.0, metadata=_help("AdamW weight decay"))
    max_grad_norm: float = field(default=1.0, metadata=_help("gradient clipping norm"))
    overwrite: bool = field(
        default=False, metadata=_help("replace an output directory that holds another run")
    )
    trust_remote_code: bool = field(default=False, metadata=_help("allow the model repo's own code to run"))

    def __post_init__(self) -> None:
        _positive_ints(
            self, "lora_r", "lora_alpha", "batch_size", "gradient_accumulation", "max_seq_len", "save_every"
        )
        _optional_positive_ints(self, "max_steps", "eval_every", "early_stopping_patience")
        _in_range(self, "lora_dropout", 0.0, 0.9)
        _in_range(self, "warmup_ratio", 0.0, 0.5)
        _in_range(self, "eval_fraction", 0.0, 0.5)
        _in_range(self, "weight_decay", 0.0, 1.0)
        if not isinstance(self.learning_rate, (int, float)) or not 0 < self.learning_rate <= 1:
            raise ValueError(f"learning_rate must be in (0, 1], got {self.learning_rate!r}")
        if not isinstance(self.epochs, (int, float)) or self.epochs <= 0:
            raise ValueError(f"epochs must be a positive number, got {self.epochs!r}")
        if not isinstance(self.max_grad_norm, (int, float)) or self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be a positive number, got {self.max_grad_norm!r}")
        _choice(self, "lr_scheduler", ("linear", "cosine", "constant", "constant_with_warmup"))
        _choice(self, "batching", ("grouped", "padding_free", "max_length"))
        if isinstance(self.target_modules, list):
            if not self.target_modules or not all(isinstance(m, str) and m for m in self.target_modules):
                raise ValueError(
                    f"target_modules must be 'all-linear' or module names, got {self.target_modules!r}"
                )
        elif not isinstance(self.target_modules, str) or not self.target_modules:
            raise ValueError(
                f"target_modules must be 'all-linear' or module names, got {self.target_modules!r}"
            )
        if self.early_stopping_patience and self.eval_fraction == 0:
            raise ValueError("early_stopping_patience needs an eval set: set eval_fraction above 0")
        if self.data is not None and not Path(self.data).is_file():
            raise ValueError(f"data file {self.data} does not exist")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def _positive_ints(cfg, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _optional_positive_ints(cfg, *names: str) -> None:
    for name in names:
        if getattr(cfg, name) is not None:
            _positive_ints(cfg, name)


def _in_range(cfg, name: str, low: float, high: float) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value!r}")


def _choice(cfg, name: str, choices: tuple[str, ...]) -> None:
    if getattr(cfg, name) not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {getattr(cfg, name)!r}")


@dataclass
class TrainResult:
    """What a run produced. `status` is finished, cancelled or early_stopped (an early stop is a finished run)."""

    run_id: str
    run_dir: Path
    status: Literal["finished", "cancelled"]
    global_step: int
    total_steps: int
    train_loss: float | None
    eval_loss: float | None
    tokens: int  # real (non-padding) tokens this process trained on
    seconds: float
    early_stopped: bool = False
    overfitting_warning: bool = False
    ranks: list[dict] = field(default_factory=list)  # per-process token and step counts (DDP)


Progress = Callable[[ProgressEvent], None]


# -- the run directory ----------------------------------------------------------------------------------------


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _prepare_run_dir(run_dir: Path, overwrite: bool) -> str | None:
    """Refuse a folder that holds something else unless `overwrite`; returns the run id it held (if any)."""
    if not run_dir.exists():
        return None
    if not run_dir.is_dir():
        raise ValueError(f"output directory {run_dir} is a file: choose a folder path")
    if not any(run_dir.iterdir()):
        return None
    held = _read_json(run_dir / RUN_FILE).get("run_id")
    if not overwrite:
        what = f"run {held}" if held else "other files"
        raise ValueError(
            f"output directory {run_dir} already holds {what}: choose another --output, resume it with "
            f"`python -m tuner resume {run_dir}`, or pass --overwrite to replace it"
        )
    return held or ""


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_run_file(run_dir: Path, run_id: str, status: str, **extra) -> None:
    atomic_write_json(
        run_dir / RUN_FILE, {"run_id": run_id, "status": status, "updated": time.time(), **extra}
    )


def _save_examples(path: Path, train_set, eval_set) -> None:
    from common.atomic import atomic_write_text

    lines = [
        json.dumps(
            {"split": split, "row": ex.row, "messages": ex.messages, "tools": getattr(ex, "tools", None)}
        )
        for split, items in (("train", train_set), ("eval", eval_set))
        for ex in items
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _load_examples(path: Path):
    from tuner.data import Example

    train_set, eval_set = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        example = Example(messages=item["messages"], row=item["row"], tools=item.get("tools"))
        (train_set if item["split"] == "train" else eval_set).append(example)
    return train_set, eval_set


def _save_adapter(model, run_dir: Path) -> None:
    """Write the adapter files into the run dir through a temp folder, so a crash never leaves half a file."""
    tmp = run_dir / f".adapter.{uuid.uuid4().hex[:8]}.tmp"
    try:
        model.save_pretrained(tmp)
        for name in os.listdir(tmp):
            os.replace(tmp / name, run_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- data ----------------------------------------------------------------------------------------------------


def _examples_from(config: TrainConfig, examples):
    """The LoadedDataset for `config.data`, or one wrapping pre-loaded examples (Example objects or message lists)."""
    from tuner.data import Example, LoadedDataset, load_dataset

    if examples is None:
        if config.data is None:
            raise ValueError("no training data: set TrainConfig.data to a dataset file or pass examples")
        return load_dataset(config.data, config.data_format, config.columns)
    items = [
        e if isinstance(e, Example) else Example(messages=list(e), row=i + 1) for i, e in enumerate(examples)
    ]
    if not items:
        raise ValueError("no training examples were given")
    return LoadedDataset(
        path="<examples>", format="messages", rows_read=len(items), examples=items, skipped=[]
    )


# -- running -------------------------------------------------------------------------------------------------


def train(
    config: TrainConfig,
    *,
    workspace,
    examples=None,
    progress: Progress | None = None,
    cancel: Any = None,
) -> TrainResult:
    """Train a LoRA adapter on `config.data` (or on `examples`: Example objects or lists of messages).

    Args:
        workspace: the `common.workspace.Workspace` whose registry records the run (and whose runs/ holds it).
        progress: called with a `ProgressEvent` after every optimizer step and evaluation.
        cancel: anything with `is_set()` (a `threading.Event`); when set, training stops after the optimizer step
            in flight, and the adapter of that step is saved (status "cancelled", resumable).

    Raises:
        ValueError: bad data (see `tuner.data.load_dataset`), `max_seq_len` below the chat template's own size,
            or an output directory holding another run without `overwrite`.
    """
    from tuner import sft

    sft.init_distributed()  # under torchrun every rank runs this function: they must share one run id
    run_id = sft.from_rank0(time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])
    run_dir = Path(config.output_dir) if config.output_dir else Path(workspace.runs_dir) / run_id
    run_dir = run_dir.expanduser().resolve()
    held = _prepare_run_dir(run_dir, config.overwrite)
    dataset = _examples_from(config, examples)
    tokenizer = _tokenizer(config, workspace)
    report = _validation_report(dataset, tokenizer, config)
    train_set, eval_set = _split(report.examples, config)  # the examples the chat template can render
    sft.barrier()  # every rank has checked the folder before rank 0 writes into it
    if _rank() == 0:
        if held is not None:
            _discard_run(workspace, run_dir, held)
        run_dir.mkdir(parents=True, exist_ok=True)
        config = TrainConfig.from_dict({**config.to_dict(), "output_dir": str(run_dir)})
        atomic_write_json(run_dir / CONFIG_FILE, {"run_id": run_id, "config": config.to_dict()})
        atomic_write_json(run_dir / REPORT_FILE, report.to_dict())
        _save_examples(run_dir / DATA_FILE, train_set, eval_set)
        tokenizer.save_pretrained(run_dir)
    return _run(config, run_id, run_dir, train_set, eval_set, workspace, progress, cancel, resume_from=None)


def resume(run_dir, *, workspace, progress: Progress | None = None, cancel: Any = None) -> TrainResult:
    """Continue a cancelled or interrupted run from its last checkpoint: same global step, optimizer, scheduler,
    and data order, so the loss curve continues where it stopped.

    Raises:
        ValueError: the folder is not a run, the run already finished, or it has no checkpoint yet.
    """
    run_dir = Path(run_dir).expanduser().resolve()
    saved = _read_json(run_dir / CONFIG_FILE)
    if not saved or not (run_dir / DATA_FILE).is_file():
        raise ValueError(
            f"{run_dir} is not a training run directory (no {CONFIG_FILE}): pass the run's folder"
        )
    status = _read_json(run_dir / RUN_FILE).get("status")
    if status == "finished":
        raise ValueError(
            f"run {saved['run_id']} in {run_dir} already finished: start a new run to train more"
        )
    checkpoint = last_checkpoint(run_dir)
    if checkpoint is None:
        raise ValueError(
            f"run {saved['run_id']} has no checkpoint to resume from yet: start it again instead"
        )
    config = TrainConfig.from_dict({**saved["config"], "output_dir": str(run_dir), "data": None})
    train_set, eval_set = _load_examples(run_dir / DATA_FILE)
    return _run(
        config, saved["run_id"], run_dir, train_set, eval_set, workspace, progress, cancel, checkpoint
    )


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete `checkpoints/checkpoint-N` folder of a run, or None."""
    folder = Path(run_dir) / "checkpoints"
    done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.rsplit("-", 1)[1]), default=None)


def _tokenizer(config: TrainConfig, workspace):
    from tuner.models import load_tokenizer

    return load_tokenizer(config.model, Path(workspace.models_dir), config.trust_remote_code)


def _validation_report(dataset, tokenizer, config: TrainConfig):
    from tuner.validate import validate

    return validate(dataset, tokenizer, config.max_seq_len, config.eval_fraction, config.seed)


def _split(examples, config: TrainConfig):
    from tuner.data import split_examples

    return split_examples(examples, config.eval_fraction, config.seed)


def _discard_run(workspace, run_dir: Path, held: str) -> None:
    """Remove a run being overwritten: its folder and its registry row."""
    shutil.rmtree(run_dir)
    if held:
        with workspace.db() as con:
            con.execute("DELETE FROM runs WHERE id = ?", (held,))


def _run(
    config, run_id, run_dir, train_set, eval_set, workspace, progress, cancel, resume_from
) -> TrainResult:
    """Train (or resume) and keep the run directory and the registry in step, whatever happens."""
    main = _rank() == 0
    record = {"model": config.model, "dataset": config.data, "config": config.to_dict()} if main else None
    if main:
        workspace.record_run(run_id, run_dir, "running", **record)
        _write_run_file(run_dir, run_id, "running")
    try:
        result = _fit(config, run_id, run_dir, train_set, eval_set, workspace, progress, cancel, resume_from)
    except BaseException as e:
        if main:
            error = f"{type(e).__name__}: {e}"
            workspace.record_run(run_id, run_dir, "failed", error=error)
            _write_run_file(run_dir, run_id, "failed", error=error)
        raise
    if main:
        workspace.record_run(run_id, run_dir, result.status)
        _write_run_file(run_dir, run_id, result.status, result=_result_dict(result))
    return result


def _result_dict(result: TrainResult) -> dict:
    out = asdict(result)
    out["run_dir"] = str(result.run_dir)
    return out


def _fit(
    config, run_id, run_dir, train_set, eval_set, workspace, progress, cancel, resume_from
) -> TrainResult:
    from tuner import sft
    from tuner.batching import TokenCounter, tokenize_examples
    from tuner.callbacks import make_run_callback, plot_loss_curve, read_metrics

    model, lm = sft.load_lora_model(config, Path(workspace.models_dir))
    train_items, _ = tokenize_examples(
        lm.tokenizer, train_set, config.max_seq_len, config.assistant_only_loss
    )
    eval_items, _ = tokenize_examples(lm.tokenizer, eval_set, config.max_seq_len, config.assistant_only_loss)
    if not train_items:
        raise ValueError(f"no training example keeps an answer token within max_seq_len={config.max_seq_len}")
    total = sft.planned_steps(config, len(train_items))
    counter = TokenCounter()
    metrics = run_dir / METRICS_FILE
    if resume_from is not None and _rank() == 0:
        _truncate_metrics(metrics, int(resume_from.name.rsplit("-", 1)[1]))
    callback = make_run_callback(
        progress=progress,
        cancel=cancel,
        counter=counter,
        metrics_path=metrics,
        early_stopping_patience=config.early_stopping_patience,
    )
    args = sft.training_arguments(config, run_dir / "checkpoints", total, bool(eval_items))
    trainer = sft.build_trainer(model, lm.tokenizer, config, args, train_items, eval_items, callback, counter)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    state = trainer.state
    ranks = sft.distributed_counts(counter.tokens, state.global_step)
    if _rank() == 0:
        _save_adapter(model, run_dir)
        plot_loss_curve(read_metrics(metrics), run_dir / "loss_curve.png")
    events = read_metrics(metrics) if _rank() == 0 else []
    return TrainResult(
        run_id=run_id,
        run_dir=run_dir,
        status="cancelled" if callback.cancelled else "finished",
        global_step=state.global_step,
        total_steps=state.max_steps,
        train_loss=_last(events, "train_loss"),
        eval_loss=_last(events, "eval_loss"),
        tokens=counter.tokens,
        seconds=time.perf_counter() - start,
        early_stopped=callback.early_stopped,
        overfitting_warning=callback.overfit_warned,
        ranks=ranks,
    )


def _last(events: list[dict], key: str) -> float | None:
    values = [e[key] for e in events if e.get(key) is not None]
    return values[-1] if values else None


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines past the checkpoint being resumed, so the curve has one value per step."""
    from common.atomic import atomic_write_text
    from tuner.callbacks import read_metrics

    kept = [json.dumps(e) for e in read_metrics(path) if e["step"] <= step]
    atomic_write_text(path, "".join(line + "\n" for line in kept))


# -- command line ----------------------------------------------------------------------------------------------


def build_parser(parser=None):
    """Arguments for `python -m tuner train` / `python -m tuner.train`, one flag per TrainConfig field."""
    import argparse

    parser = parser or argparse.ArgumentParser(
        prog="python -m tuner.train", description="Train a QLoRA adapter."
    )
    parser.add_argument("data", help=TrainConfig.__dataclass_fields__["data"].metadata["help"])
    parser.add_argument("--output", dest="output_dir", help="run directory (default <workspace>/runs/<id>)")
    parser.add_argument("--workspace", help="workspace directory (default ./workspace or $FTRAG_WORKSPACE)")
    parser.add_argument(
        "--columns", help='column mapping as JSON, e.g. {"prompt": "question", "response": "answer"}'
    )
    parser.add_argument("--target-modules", help="comma-separated module names (default all-linear)")
    parser.add_argument(
        "--no-4bit", dest="four_bit", action="store_false", help="plain LoRA on the full model"
    )
    parser.add_argument("--no-assistant-only-loss", dest="assistant_only_loss", action="store_false")
    skip = {"data", "output_dir", "columns", "target_modules", "four_bit", "assistant_only_loss"}
    for f in fields(TrainConfig):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.default is False:
            parser.add_argument(flag, action="store_true", help=f.metadata["help"])
            continue
        kind = {int: int, float: float}.get(type(f.default), str)
        if f.name in {"max_steps", "eval_every", "early_stopping_patience"}:
            kind = int
        parser.add_argument(flag, type=kind, default=f.default, help=f.metadata["help"])
    return parser


def config_from_args(args) -> TrainConfig:
    values = {
        f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None
    }
    if args.columns:
        try:
            values["columns"] = json.loads(args.columns)
        except json.JSONDecodeError as e:
            raise ValueError(f"--columns must be a JSON object, got {args.columns!r}: {e}") from e
    if args.target_modules:
        values["target_modules"] = [m.strip() for m in args.target_modules.split(",") if m.strip()]
    return TrainConfig(**values)


def tqdm_progress():
    """A progress callback drawing one tqdm bar from ProgressEvents (warnings are printed above it)."""
    import sys

    from tqdm import tqdm

    bar = None

    def update(event: ProgressEvent) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=event.total_steps, desc="training", unit="step", file=sys.stderr)
        if event.kind == "warning":
            bar.write(f"warning: {event.message}")
        bar.n = event.step
        bar.set_postfix_str(event.summary(), refresh=True)

    return update


def main(argv: list[str] | None = None) -> int:
    """Train from the command line; prints the run directory. Works the same under torchrun."""
    import sys

    from common.workspace import Workspace
    from tuner import sft

    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        workspace = Workspace(args.workspace) if args.workspace else Workspace()
        result = train(config, workspace=workspace, progress=tqdm_progress() if _rank() == 0 else None)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sft.finish_distributed()
    if _rank() == 0:
        print(
            f"{result.status}: step {result.global_step}/{result.total_steps}, run directory {result.run_dir}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
