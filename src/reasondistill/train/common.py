"""What every trainer shares: precision choice, the common ``TrainingArguments`` keywords,
and the LoRA config. Objectives add only their own keywords on top."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import models
from ..config import TrainConfig


def precision(cfg: TrainConfig) -> tuple[str, bool]:
    """``(device, use_bf16)``. Weights stay fp32; bf16 runs as autocast (mixed precision), which
    trains stably, where :func:`mixed_dtype` picks it. fp16 autocast goes through
    :func:`training_kwargs` so this pair keeps its meaning for every trainer."""
    device = models.pick_device(cfg.device)
    return device, mixed_dtype(cfg.dtype, device)[0] == "bfloat16"


def mixed_dtype(dtype: str, device: str) -> tuple[str, str]:
    """``(autocast dtype, note)`` for training: ``train.dtype`` resolved by :mod:`reasondistill.device`
    (``auto``: bf16 where native, fp16 on CUDA without bf16, else fp32). fp16 needs CUDA (its loss
    scaler does), so fp16 elsewhere trains in fp32."""
    from .. import device as dev

    name, note = dev.resolve_dtype(dtype, device)
    if name == "float16" and not device.startswith("cuda"):
        return "float32", f"float16 mixed precision needs CUDA; training in float32 on {device}"
    return name, note


def training_kwargs(cfg: TrainConfig, out_dir: Path, use_bf16: bool, device: str) -> dict[str, Any]:
    """Keywords for ``TrainingArguments`` (or a TRL config subclass) common to all objectives."""
    return dict(
        output_dir=str(Path(out_dir) / "trainer"),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of total steps
        logging_steps=cfg.logging_steps,
        gradient_checkpointing=cfg.gradient_checkpointing,
        save_strategy="no",
        report_to=[],
        bf16=use_bf16,
        fp16=not use_bf16 and mixed_dtype(cfg.dtype, device)[0] == "float16",
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=0,
        use_cpu=device == "cpu",
    )


def lora_config(cfg: TrainConfig):
    """PEFT LoRA config for ``cfg.lora``, else ``None``."""
    if not cfg.lora:
        return None
    from peft import LoraConfig
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")


def finish(out_dir: Path, model, tokenizer, result, history: list[dict[str, Any]], *, n_examples: int,
           config: Any, inputs: dict[str, str], started: float, method: str,
           outputs: dict[str, Any] | None = None) -> dict:
    """Save ``out_dir/model`` (safetensors), ``loss.jsonl`` and, last, the stage manifest."""
    from .. import io
    from .sft import MODEL_DIR, save_checkpoint

    path = save_checkpoint(model, tokenizer, Path(out_dir) / MODEL_DIR)
    io.write_jsonl(Path(out_dir) / "loss.jsonl", history)
    losses = [h["loss"] for h in history]
    base = {"files": ["loss.jsonl"], "model_dir": str(path), "method": method, "n_examples": n_examples,
            "steps": result.global_step, "train_loss": result.training_loss,
            "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
            **dtype_record(config.get("train", config))}
    return io.write_manifest(out_dir, stage="train", config=config, inputs=inputs,
                             outputs={**base, **(outputs or {})}, started=started, extra={"method": method})


def dtype_record(train: dict[str, Any]) -> dict[str, str]:
    """``dtype`` (the autocast dtype; weights are fp32) and ``dtype_note`` (why) for a train
    manifest, from the ``TrainConfig`` fields ``dtype`` and ``device`` as recorded in its config."""
    name, note = mixed_dtype(train["dtype"], models.pick_device(train["device"]))
    return {"dtype": name, "dtype_note": note}


def encode_pair(tokenizer, prompt: list[dict[str, str]], completion: list[dict[str, str]], *, path: Any,
                line: int, what: str = "") -> tuple[list[int], list[int]]:
    """Token ids of the rendered prompt and of prompt + completion under the chat template.

    The prompt must be a prefix of the whole (else completion positions are ambiguous); the
    error names the file, line and, via ``what``, the record."""
    from ..errors import InputError

    prompt_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full_text = tokenizer.apply_chat_template(prompt + completion, tokenize=False)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full_text, add_special_tokens=False)["input_ids"]
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise InputError(f"{what}the chat template's prompt tokens are not a prefix of prompt + completion",
                         file=path, line=line, field="prompt")
    return prompt_ids, full_ids


def completion_logits(model, input_ids, attention_mask, positions):
    """Logits ``[N, V]`` at the ``positions`` (``[B, T]`` bool) whose next token is trained, and nowhere else.

    The LM head is the costliest layer of a small student (SmolLM2-135M: 49k-row vocabulary, a
    fifth of the weights) and chat prompts are most of each sequence, so projecting only the
    completion positions roughly halves a training step on CPU. The selection goes through the
    model's own ``forward`` (``logits_to_keep`` as a boolean mask), so DDP, PEFT and logit
    soft-capping behave as usual; a model whose forward lacks it gets full logits, then indexed.
    """
    try:
        out = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=positions, use_cache=False)
    except TypeError as e:  # no logits_to_keep on this architecture; any other TypeError is real
        if "logits_to_keep" not in str(e):
            raise
        out = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    logits = out.logits
    if logits.dim() == 3 and logits.shape[:2] == positions.shape:
        return logits[positions]
    return logits.reshape(-1, logits.shape[-1])


def sum_to_mean(loss_sum, n_local, num_items_in_batch, trainer):
    """Token-mean of a summed loss over the whole optimizer step (every micro-batch of gradient
    accumulation, and every rank when ``average_tokens_across_devices``), as ``Trainer`` expects
    when it passes ``num_items_in_batch``; the local token count otherwise."""
    import torch

    if num_items_in_batch is None:
        return loss_sum / max(int(n_local), 1)
    loss = loss_sum / torch.as_tensor(num_items_in_batch, device=loss_sum.device).clamp(min=1)
    if trainer.args.average_tokens_across_devices:
        loss = loss * trainer.accelerator.num_processes  # DDP averages gradients across ranks
    return loss


def pad_batch(features: list[dict[str, Any]], pad: dict[str, float | int]) -> dict[str, Any]:
    """Right-pad each field named in ``pad`` (with its fill value) to the longest ``input_ids``
    of the batch, stack, and add the ``attention_mask``."""
    import torch

    width = max(len(f["input_ids"]) for f in features)
    batch = {}
    for name, value in pad.items():
        rows = []
        for f in features:
            x = f[name]
            rows.append(torch.cat([x, x.new_full((width - len(x), *x.shape[1:]), value)]))
        batch[name] = torch.stack(rows)
    lengths = torch.tensor([len(f["input_ids"]) for f in features])
    batch["attention_mask"] = (torch.arange(width)[None, :] < lengths[:, None]).long()
    return batch
