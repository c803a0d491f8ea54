"""Export a training run: the adapter as a zip, a merged full model, or a push to the Hugging Face Hub.

The merged model is the 4-bit base dequantized (the weights the adapter was trained against) with the LoRA deltas
added, saved as a plain safetensors model folder that loads without PEFT or bitsandbytes. A push uploads the
adapter (or the merged folder) in ONE commit, so the repository never holds half an upload.

    python -m tuner export RUN_DIR [--zip] [--merge] [--push USER/REPO --token hf_...]
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from common.atomic import atomic_write_bytes

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
EXTRA_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
    "train_config.json",
    "validation_report.json",
    "loss_curve.png",
)


def _check_run(run_dir: Path) -> None:
    missing = [name for name in ADAPTER_FILES if not (run_dir / name).is_file()]
    if missing:
        raise ValueError(
            f"{run_dir} holds no trained adapter ({', '.join(missing)} missing): train or resume first"
        )


def export(
    run_dir,
    *,
    merge: bool = False,
    zip: bool = False,
    push: str | None = None,
    token: str | None = None,
    models_dir=None,
) -> dict[str, str]:
    """Export a run; returns what was written or pushed: {"zip": path, "merged": folder, "pushed": url}.

    Raises:
        ValueError: not a run with an adapter, nothing asked for, or a push while offline or without a token.
    """
    run_dir = Path(run_dir).expanduser().resolve()
    _check_run(run_dir)
    if not (merge or zip or push):
        raise ValueError("nothing to export: ask for --zip, --merge and/or --push REPO")
    if push:
        _check_can_push(token)
    out: dict[str, str] = {}
    if zip:
        out["zip"] = str(zip_adapter(run_dir))
    if merge:
        out["merged"] = str(merge_adapter(run_dir, models_dir=models_dir))
    if push:
        folder = Path(out["merged"]) if merge else run_dir
        out["pushed"] = push_to_hub(folder, push, token, merged=merge)
    return out


def zip_adapter(run_dir: Path) -> Path:
    """`<run>/export/adapter.zip`: the adapter, tokenizer and run files, written atomically."""
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in (*ADAPTER_FILES, *EXTRA_FILES):
            if (run_dir / name).is_file():
                zf.write(run_dir / name, name)
    return atomic_write_bytes(run_dir / "export" / "adapter.zip", buf.getvalue())


def merge_adapter(run_dir: Path, models_dir=None) -> Path:
    """`<run>/export/merged/`: base dequantized + LoRA merged, as safetensors with the tokenizer."""
    import json

    from peft import PeftModel

    from common.atomic import atomic_dir
    from tuner.models import load_model

    config = json.loads((run_dir / "train_config.json").read_text())["config"]
    lm = load_model(config["model"], four_bit=config["four_bit"], models_dir=models_dir)
    base = lm.model.dequantize() if config["four_bit"] else lm.model
    merged = PeftModel.from_pretrained(base, str(run_dir)).merge_and_unload()
    target = run_dir / "export" / "merged"
    with atomic_dir(target) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        lm.tokenizer.save_pretrained(tmp)
    return target


def _check_can_push(token: str | None) -> None:
    from tuner.models import hub_offline

    if hub_offline():
        raise ValueError(
            "cannot push to the Hugging Face Hub: offline mode (HF_HUB_OFFLINE) is on; go online first"
        )
    if not token:
        raise ValueError(
            "pushing to the Hugging Face Hub needs a write token: pass --token (or set HF_TOKEN)"
        )


def push_to_hub(folder: Path, repo_id: str, token: str | None, merged: bool = False) -> str:
    """Upload `folder` to `repo_id` in one commit (created private if missing); returns the commit URL."""
    from huggingface_hub import HfApi

    _check_can_push(token)
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=True, exist_ok=True)
        allow = None if merged else [*ADAPTER_FILES, *EXTRA_FILES]
        info = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            allow_patterns=allow,
            commit_message="Upload adapter trained with tuner",
        )
    except Exception as e:  # network and auth failures come in many types; all mean "not pushed"
        raise ValueError(f"push to {repo_id} failed, nothing was uploaded: {type(e).__name__}: {e}") from e
    return str(getattr(info, "commit_url", info))
