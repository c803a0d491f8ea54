"""Command line for the model side: `python -m tuner {generate,models,validate,train,resume,export,fit} ...`.

Examples:
    python -m tuner models
    python -m tuner generate "What is the capital of France?" --max-new-tokens 32
    python -m tuner generate "Who are you?" --adapter workspace/runs/orbit
"""

from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from tuner.models import DEFAULT_MODEL

WORKSPACE_HELP = "workspace directory (default ./workspace or $FTRAG_WORKSPACE)"


def tqdm_progress(desc: str):
    """A progress callback `(done, total, message)` drawing one tqdm bar."""
    bar = None

    def update(done: int, total: int, message: str = "") -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=desc, unit="step", file=sys.stderr)
        bar.total = total
        bar.n = done
        bar.set_postfix_str(message[:60], refresh=True)
        if done >= total:
            bar.close()

    return update


def _workspace(args):
    from common.workspace import Workspace

    return Workspace(args.workspace) if getattr(args, "workspace", None) else Workspace()


def cmd_models(args) -> int:
    from tuner.models import DEFAULT_MODEL, list_models

    print(f"{'model':45} {'source':9} where")
    for m in list_models():
        default = " (default)" if m.model_id == DEFAULT_MODEL else ""
        print(f"{m.model_id + default:45} {m.source:9} {m.detail}: {m.gguf or m.path}")
    return 0


def cmd_generate(args) -> int:
    from tuner.generate import GenerationParams, adapter_dir, attach_adapter, generate
    from tuner.models import load_model

    params = GenerationParams(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )
    lm = load_model(
        args.model,
        four_bit=not args.no_4bit,
        models_dir=_workspace(args).models_dir,
        trust_remote_code=args.trust_remote_code,
        progress=tqdm_progress("converting model"),
    )
    adapter = attach_adapter(lm, adapter_dir(args.adapter), "adapter") if args.adapter else None
    print(generate(lm, args.prompt, system=args.system, adapter=adapter, params=params))
    return 0


def cmd_validate(args) -> int:
    from tuner.data import load_dataset, tool_roles_supported
    from tuner.models import load_tokenizer
    from tuner.validate import validate

    tokenizer = load_tokenizer(args.model, _workspace(args).models_dir, args.trust_remote_code)
    columns = _columns(args.columns)
    dataset = load_dataset(args.data, args.format, columns, tool_roles=tool_roles_supported(tokenizer))
    report = validate(dataset, tokenizer, args.max_seq_len, args.eval_fraction, args.seed)
    print(report.to_json() if args.json else report.format_text())
    return 0


def cmd_train(args) -> int:
    from tuner.sft import finish_distributed
    from tuner.train import config_from_args, train
    from tuner.train import tqdm_progress as train_progress

    config = config_from_args(args)
    try:
        result = train(
            config, workspace=_workspace(args), progress=train_progress() if _rank() == 0 else None
        )
    finally:
        finish_distributed()
    if _rank() == 0:
        print(
            f"{result.status}: step {result.global_step}/{result.total_steps}, run directory {result.run_dir}"
        )
    return 0


def cmd_resume(args) -> int:
    from tuner.train import resume
    from tuner.train import tqdm_progress as train_progress

    result = resume(args.run_dir, workspace=_workspace(args), progress=train_progress())
    print(f"{result.status}: step {result.global_step}/{result.total_steps}, run directory {result.run_dir}")
    return 0


def cmd_export(args) -> int:
    import os

    from tuner.export import export

    token = args.token or os.environ.get("HF_TOKEN")
    written = export(
        args.run_dir,
        merge=args.merge,
        zip=args.zip,
        push=args.push,
        token=token,
        models_dir=_workspace(args).models_dir,
    )
    for kind, where in written.items():
        print(f"{kind}: {where}")
    return 0


def cmd_fit(args) -> int:
    from tuner.fit import estimate_memory

    estimate = estimate_memory(
        args.model,
        batch_size=args.batch_size,
        max_seq_len=args.max_seq_len,
        lora_r=args.lora_r,
        gradient_checkpointing=args.gradient_checkpointing,
        four_bit=not args.no_4bit,
        models_dir=_workspace(args).models_dir,
    )
    print(json.dumps(estimate.to_dict(), indent=2) if args.json else estimate.format_text())
    return 0


def _rank() -> int:
    import os

    return int(os.environ.get("RANK", "0"))


def _columns(pairs: list[str] | None) -> dict[str, str] | None:
    """`--columns prompt=question response=answer` -> {"prompt": "question", "response": "answer"}."""
    if not pairs:
        return None
    mapping = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"--columns takes ROLE=COLUMN pairs (e.g. prompt=question), got {pair!r}")
        mapping[key.strip()] = value.strip()
    return mapping


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tuner", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the models that can be resolved and where from")
    p.add_argument("--workspace", help=WORKSPACE_HELP)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("generate", help="answer one prompt")
    p.add_argument("prompt")
    p.add_argument("--model", help="hub id or local folder (default: the embedded SmolLM2-135M-Instruct)")
    p.add_argument("--adapter", help="LoRA adapter folder or training run directory")
    p.add_argument("--system", help="system prompt")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--repetition-penalty", type=float, default=1.0)
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--no-4bit", action="store_true", help="load in full precision (when bitsandbytes cannot run)"
    )
    p.add_argument("--trust-remote-code", action="store_true", help="allow the model repo's own code to run")
    p.add_argument("--workspace", help=WORKSPACE_HELP)
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("validate", help="validation report of a dataset (before any training)")
    p.add_argument("data", help="JSON, JSONL, CSV/TSV or Parquet file")
    p.add_argument("--model", help="whose chat template measures token lengths (default: embedded model)")
    p.add_argument(
        "--format", default="auto", help="auto, alpaca, sharegpt, openai, prompt_completion, columns"
    )
    p.add_argument(
        "--columns", nargs="+", metavar="ROLE=COLUMN", help="column mapping, e.g. prompt=q response=a"
    )
    p.add_argument("--max-seq-len", type=int, default=1024)
    p.add_argument("--eval-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--workspace", help=WORKSPACE_HELP)
    p.set_defaults(func=cmd_validate)
    from tuner.train import build_parser as train_parser

    p = sub.add_parser("train", help="train a QLoRA adapter (also under torchrun / accelerate launch)")
    train_parser(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("resume", help="continue a cancelled or interrupted run from its last checkpoint")
    p.add_argument("run_dir")
    p.add_argument("--workspace", help=WORKSPACE_HELP)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("export", help="export a run: adapter zip, merged model, push to the Hub")
    p.add_argument("run_dir")
    p.add_argument("--zip", action="store_true", help="write the adapter as a zip")
    p.add_argument("--merge", action="store_true", help="merge LoRA into the dequantized base (safetensors)")
    p.add_argument("--push", metavar="REPO", help="push to this Hub repo (needs --token or HF_TOKEN)")
    p.add_argument("--token", help="Hugging Face token (default $HF_TOKEN)")
    p.add_argument("--workspace", help=WORKSPACE_HELP)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("fit", help="estimate QLoRA training memory and whether it fits the GPU")
    p.add_argument(
        "--model", default=DEFAULT_MODEL, help="hub id or local folder (default: the embedded model)"
    )
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-seq-len", type=int, default=1024)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--no-4bit", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--workspace", help=WORKSPACE_HELP)
    p.set_defaults(func=cmd_fit)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
