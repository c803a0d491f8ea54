"""The training machinery behind `tuner.train`: the 4-bit base with LoRA adapters and a configured `Trainer`.

Split from `tuner.train` (which owns the run directory, the registry and resume) so each reads on its own.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from tuner.batching import IGNORE, Collator, LengthGroupedSampler, TokenCounter, TokenDataset


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def load_lora_model(config, models_dir: Path):
    """The base model (4-bit NF4 unless `config.four_bit` is False) wrapped with fresh trainable LoRA adapters."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from tuner.models import load_model

    lm = load_model(
        config.model,
        four_bit=config.four_bit,
        models_dir=models_dir,
        trust_remote_code=config.trust_remote_code,
    )
    model = lm.model
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available() and local_rank:
        model.to(f"cuda:{local_rank}")  # load_model places everything on GPU 0; DDP wants one GPU per process
    if config.four_bit:
        keep_4bit_layers_differentiable(model)
        # casts norms to fp32 and makes inputs require grad, which checkpointing through frozen 4-bit layers needs
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.gradient_checkpointing
        )
    elif config.gradient_checkpointing:
        model.enable_input_require_grads()
    torch.manual_seed(config.seed)  # LoRA init depends on it
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora), lm


def keep_4bit_layers_differentiable(model) -> None:
    """Stop bitsandbytes from repacking 4-bit weights for its CPU inference kernel during evaluation.

    On CPUs with AVX512-BF16, bitsandbytes converts a Linear4bit's weight to a packed layout the first time it runs
    in eval mode and then keeps using a kernel that has no autograd: every later training step would silently drop
    the gradient through the frozen layers (a warning "gemv_4bit: an autograd kernel was not registered"). Evaluation
    runs between training steps, so the conversion is switched off for the modules being trained.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def planned_steps(config, n_train: int) -> int:
    """Optimizer steps the run will take (max_steps, else epochs over the training set)."""
    if config.max_steps:
        return config.max_steps
    per_epoch = max(
        1, math.ceil(n_train / (config.batch_size * world_size())) // config.gradient_accumulation
    )
    return max(1, math.ceil(per_epoch * config.epochs))


def training_arguments(config, checkpoints_dir: Path, total_steps: int, has_eval: bool):
    import torch
    from transformers import TrainingArguments

    eval_every = config.eval_every or max(1, total_steps // 5)
    cuda = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(checkpoints_dir),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a ratio of the total steps
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        seed=config.seed,
        logging_steps=1,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=eval_every,
        save_strategy="steps",
        save_steps=config.save_every,
        save_total_limit=2,
        gradient_checkpointing=config.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        bf16=cuda and torch.cuda.is_bf16_supported(),
        use_cpu=not cuda,
        ddp_backend="gloo" if world_size() > 1 and not cuda else None,
        ddp_find_unused_parameters=False,
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def build_trainer(model, tokenizer, config, args, train_items, eval_items, callback, counter: TokenCounter):
    """A transformers Trainer over tokenized examples with our sampler and collator; counts real training tokens."""
    from transformers import Trainer

    class SFTRunner(Trainer):
        def _get_train_sampler(self, train_dataset=None):
            dataset = train_dataset or self.train_dataset
            return LengthGroupedSampler(
                dataset.lengths(), config.batch_size, config.seed, group=config.batching == "grouped"
            )

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss, outputs = supervised_loss(model, inputs, num_items_in_batch)
            if num_items_in_batch is not None and self.args.average_tokens_across_devices:
                loss = loss * self.accelerator.num_processes  # DDP averages gradients over processes
            return (loss, outputs) if return_outputs else loss

        def training_step(self, model, inputs, num_items_in_batch=None):
            mask = inputs.get("attention_mask")
            counter.tokens += int(mask.sum()) if mask is not None else inputs["input_ids"].numel()
            return super().training_step(model, inputs, num_items_in_batch)

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return SFTRunner(
        model=model,
        args=args,
        train_dataset=TokenDataset(train_items),
        eval_dataset=TokenDataset(eval_items) if eval_items else None,
        data_collator=Collator(pad, config.batching, config.max_seq_len),
        processing_class=tokenizer,
        callbacks=[callback],
    )


def supervised_loss(model, inputs: dict, num_items=None):
    """Next-token cross-entropy computing logits only at positions that predict a supervised token.

    With assistant-only labels most positions (system prompt, question, padding) carry no loss, and the vocabulary
    projection is a large share of a small model's compute; `logits_to_keep` skips it for them. Returns the loss
    summed over supervised tokens divided by `num_items` (all supervised tokens of the optimizer step, so gradient
    accumulation weighs every token equally) or, without it, the mean; and the model outputs.
    """
    import torch.nn.functional as F

    inputs = dict(inputs)
    targets = inputs.pop("labels")[:, 1:]
    keep = (targets != IGNORE).any(dim=0).nonzero().squeeze(-1)
    outputs = model(
        **inputs, logits_to_keep=keep, use_cache=False
    )  # a cache would hide the packed-sequence mask
    wanted = targets[:, keep]
    total = F.cross_entropy(
        outputs.logits.flatten(0, 1).float(), wanted.flatten(), ignore_index=IGNORE, reduction="sum"
    )
    count = num_items if num_items is not None else (wanted != IGNORE).sum().clamp(min=1)
    return total / count, outputs


def init_distributed() -> None:
    """Join the process group when started by `torchrun` or `accelerate launch` (a no-op in one process).

    The Trainer would create the group itself, but only once its arguments exist; the run directory is prepared
    before that, and every rank must agree on the run id and finish checking the folder before rank 0 writes
    to it. Accelerate and DeepSpeed reuse a group that already exists.
    """
    if world_size() <= 1:
        return
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if os.environ.get("MASTER_PORT") == "0":
        # torchrun --master_port 0 hands port 0 itself to the workers, which then wait forever for each other
        raise ValueError(
            "MASTER_PORT is 0, so the processes cannot find each other: launch with `torchrun --standalone` "
            "or give --master_port a free port number"
        )
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))  # the Trainer's ddp_timeout


def _group():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def from_rank0(value: Any) -> Any:
    """Rank 0's `value` on every rank (the value itself when not distributed)."""
    dist = _group()
    if dist is None:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait until every rank gets here (nothing when not distributed)."""
    if (dist := _group()) is not None:
        dist.barrier()


def finish_distributed() -> None:
    """Leave the process group after the last rank is done (entry points call this before exiting)."""
    if (dist := _group()) is not None:
        dist.barrier()
        dist.destroy_process_group()


def distributed_counts(tokens: int, steps: int) -> list[dict]:
    """Every process's (rank, tokens, steps), gathered to all ranks (one entry when not distributed)."""
    import torch.distributed as dist

    mine = {"rank": int(os.environ.get("RANK", "0")), "tokens": tokens, "steps": steps}
    if not (dist.is_available() and dist.is_initialized()):
        return [mine]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, mine)
    return sorted(gathered, key=lambda x: x["rank"])
