"""The trainer base every objective builds on, so an objective file holds only what is its own
(its data shaping, its loss, its trainer subclass) and a new objective is one file plus one row
of ``OBJECTIVES``.

Shared here, each once: the label ``IGNORE`` value, reading curated examples, the one
prompt/completion encoder (the chat template must render the prompt as a token prefix of the
whole conversation, else completion positions are ambiguous and the run stops), the one padder,
``TrainingArguments`` construction, precision and LoRA, the student/teacher loading and the
vocabulary preflight against a live teacher, the train-merge-clean step, and the save-run step
(checkpoint, loss log, manifest outputs) behind ``io.cached_stage``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import io, models
from ..config import TrainConfig
from ..errors import ConfigError, InputError
from ..layout import FILES
from ..scoring import completion_logits, encode  # noqa: F401  (completion_logits: the objectives' import point)
from ..records import TrainExample
from . import averaging, checkpoints

log = logging.getLogger(__name__)

IGNORE = -100  # label of a position that is not trained (the prompt, padding); torch's cross-entropy default
MODEL_DIR = FILES["checkpoint"][1]  # the checkpoint folder inside a train stage's out_dir
LOSS_LOG = FILES["loss_log"][1]
TOKEN_LOG_KEYS = ("num_input_tokens_seen", "train_tokens_per_second", "train_runtime")  # the token counter logs these
TRACKER_LOGS = FILES["tracker_logs"][1]  # trackers' event files (train.report_to), kept beside the checkpoint


# ---------------------------------------------------------------------------
# data


def load_examples(path: str | Path) -> list[TrainExample]:
    """Curated ``TrainExample`` JSONL; an empty completion is an :class:`InputError` at its line
    (it would train the student to stop at once)."""
    examples = io.read_records(path, TrainExample)
    for i, ex in enumerate(examples, 1):
        if not ex.completion or not ex.completion[-1].get("content", "").strip():
            raise InputError("empty completion", file=path, line=i, field="completion")
    return examples


def encode_pair(tokenizer, prompt: list[dict[str, str]], completion: list[dict[str, str]], *, path: Any,
                line: int | None, what: str = "") -> tuple[list[int], list[int]]:
    """``(prompt_ids, full_ids)``: the rendered prompt (with the generation prompt) and prompt +
    completion, under the chat template.

    Every objective trains and scores ``full_ids[len(prompt_ids):]`` as the completion, so the
    prompt must be a token prefix of the whole. A template that renders the prompt differently
    once an answer follows (one that drops earlier reasoning, say) cannot be split that way: an
    :class:`InputError` names the file, the line and, via ``what``, the record."""
    try:
        return encode(tokenizer, prompt, completion)
    except ValueError as e:
        raise InputError(f"{what}{e}", file=path, line=line, field="prompt") from None


def supervised(prompt_ids: list[int], full_ids: list[int], max_length: int) -> dict[str, Any] | None:
    """``{"input_ids", "labels"}`` tensors cut to ``max_length``, prompt positions ``IGNORE``; ``None``
    when the prompt alone fills ``max_length`` (nothing would be trained)."""
    import torch

    n_prompt = len(prompt_ids)
    if n_prompt >= max_length:
        return None
    seq = torch.tensor(full_ids[:max_length], dtype=torch.long)
    labels = seq.clone()
    labels[:n_prompt] = IGNORE
    return {"input_ids": seq, "labels": labels}


def pad_batch(features: list[dict[str, Any]], pad: dict[str, float | int], *, left: bool = False) -> dict[str, Any]:
    """Pad each field named in ``pad`` (with its fill value) to the longest ``input_ids`` of the
    batch, stack, and add the ``attention_mask``. Right padding for training; ``left=True`` puts
    the padding first, as ``generate`` wants its prompts. Fields may have trailing dimensions."""
    import torch

    lengths = [len(f["input_ids"]) for f in features]
    width = max(lengths)
    batch = {}
    for name, value in pad.items():
        rows = []
        for f in features:
            x = f[name]
            fill = x.new_full((width - len(x), *x.shape[1:]), value)
            rows.append(torch.cat([fill, x] if left else [x, fill]))
        batch[name] = torch.stack(rows)
    device = features[0]["input_ids"].device
    pos = torch.arange(width, device=device)[None, :]
    n = torch.tensor(lengths, device=device)[:, None]
    batch["attention_mask"] = (pos >= width - n if left else pos < n).long()
    return batch


# ---------------------------------------------------------------------------
# loss helpers


def next_token_targets(labels):
    """``targets[b, p]``: the label of the token the logits at ``p`` predict (``IGNORE`` past the end)."""
    targets = labels.new_full(labels.shape, IGNORE)
    targets[:, :-1] = labels[:, 1:]
    return targets


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


class LoggedParts:
    """Mixin (before ``Trainer``) for a loss with named parts: ``record`` them in ``compute_loss``
    and each training log row gets their mean since the previous row (``kd_loss``, ``label_loss``...)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parts: dict[str, list[Any]] = {}

    def record(self, **parts: Any) -> None:
        """Keep each part (tensors detached, read only when logged: no device sync per step)."""
        for name, value in parts.items():
            self._parts.setdefault(name, []).append(value.detach() if hasattr(value, "detach") else value)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            for name, values in self._parts.items():
                if values:
                    logs[name] = float(sum(values)) / len(values)
                values.clear()
        super().log(logs, start_time)


# ---------------------------------------------------------------------------
# models and trainer arguments


def precision(cfg: TrainConfig) -> tuple[str, bool]:
    """``(device, use_bf16)``. Weights stay fp32; bf16 runs as autocast (mixed precision), which
    trains stably, where :func:`mixed_dtype` picks it. fp16 autocast goes through
    :func:`training_args` so this pair keeps its meaning for every trainer."""
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


def dtype_record(train: dict[str, Any]) -> dict[str, str]:
    """``dtype`` (the autocast dtype; weights are fp32) and ``dtype_note`` (why) for a train
    manifest, from the ``TrainConfig`` fields ``dtype`` and ``device`` as recorded in its config."""
    name, note = mixed_dtype(train["dtype"], models.pick_device(train["device"]))
    return {"dtype": name, "dtype_note": note}


def training_args(cfg: TrainConfig, out_dir: str | Path, use_bf16: bool, device: str, cls: type | None = None,
                  **extra: Any):
    """``cls`` (``TrainingArguments``, or a TRL config subclass such as ``GRPOConfig``) with the
    keywords every objective shares (:func:`training_kwargs`), then the objective's own ``extra``
    (which win)."""
    if cls is None:
        from transformers import TrainingArguments as cls
    return cls(**{**training_kwargs(cfg, out_dir, use_bf16, device), **extra})


def training_kwargs(cfg: TrainConfig, out_dir: str | Path, use_bf16: bool, device: str) -> dict[str, Any]:
    """The ``TrainingArguments`` keywords every objective shares."""
    return dict(
        output_dir=str(Path(out_dir) / checkpoints.SCRATCH),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of total steps
        logging_steps=cfg.logging_steps,
        gradient_checkpointing=cfg.gradient_checkpointing,
        save_strategy="no",  # checkpoints.Checkpoints decides when (fraction, steps or minutes) and rotates
        report_to=list(cfg.report_to),
        bf16=use_bf16,
        fp16=not use_bf16 and mixed_dtype(cfg.dtype, device)[0] == "float16",
        seed=cfg.seed,
        data_seed=cfg.seed if cfg.data_seed is None else cfg.data_seed,
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


def with_lora(model, cfg: TrainConfig):
    """``model`` with LoRA adapters when ``cfg.lora`` (for our own ``Trainer`` subclasses; TRL
    trainers take ``lora_config`` instead)."""
    if not cfg.lora:
        return model
    from peft import get_peft_model

    if cfg.gradient_checkpointing:
        model.enable_input_require_grads()  # else checkpointed LoRA layers get no gradient
    return get_peft_model(model, lora_config(cfg))


def student_tokenizer(cfg: TrainConfig):
    """``(ModelRef, tokenizer)`` of ``cfg.student``; no weights load."""
    ref = models.resolve(cfg.student)
    return ref, models.load_tokenizer(ref.path, trust_remote_code=cfg.trust_remote_code)


def mean_example_tokens(cfg: TrainConfig, path: str | Path) -> float:
    """Mean tokens per curated example as training feeds them (prompt + completion under the chat
    template, cut to ``max_length``): what converts a token budget into optimizer steps."""
    _, tok = student_tokenizer(cfg)
    examples = load_examples(path)
    lengths = [len(encode_pair(tok, ex.prompt, ex.completion, path=path, line=i)[1][:cfg.max_length])
               for i, ex in enumerate(examples, 1)]
    return sum(lengths) / len(lengths)


def load_student(cfg: TrainConfig, path: str) -> tuple[Any, str, bool]:
    """``(model, device, use_bf16)``: the student's fp32 weights in training mode on ``cfg``'s device."""
    device, use_bf16 = precision(cfg)
    model = models.load_model(path, dtype="float32", device=device, trust_remote_code=cfg.trust_remote_code)
    return model.train(), device, use_bf16


def speedups(model, cfg: TrainConfig) -> dict[str, bool]:
    """Apply ``train.packing`` (:mod:`.packing`) and ``train.compile`` (:func:`compile_layers`) to a
    loaded student, before LoRA; returns ``{"packed", "compiled"}`` for the manifest."""
    from . import packing

    return {"packed": packing.enable(model, cfg.packing), "compiled": cfg.compile and compile_layers(model) > 0}


def compile_layers(model) -> int:
    """``torch.compile`` (inductor, dynamic shapes: each batch has its own length) every decoder
    layer in place: the layers are alike, so one compilation serves them all, and the module tree,
    state dict and checkpoint stay as they are. Returns how many layers were compiled."""
    from .packing import body

    layers = getattr(body(model), "layers", None) or []
    for layer in layers:
        layer.compile(backend="inductor", dynamic=True)
    return len(layers)


def log_report(report):
    """Log a preflight report's warnings (the run goes on; they also land in the manifest)."""
    for warning in report.warnings:
        log.warning("preflight: %s", warning)
    return report


def teacher_preflight(cfg: TrainConfig, teacher: str, *, section: str, example: Any = None):
    """Resolve student and ``teacher`` and run the vocabulary preflight on their tokenizers and
    configs, before any weights load. Returns ``(student_ref, teacher_ref, student_tokenizer,
    report)``; a teacher that cannot teach token by token is a :class:`ConfigError` naming
    ``section`` (``gkd.teacher``) and suggesting sequence-level distillation."""
    from transformers import AutoConfig

    from .preflight import preflight

    remote = cfg.trust_remote_code
    s_ref, t_ref = models.resolve(cfg.student), models.resolve(teacher)
    s_tok = models.load_tokenizer(s_ref.path, trust_remote_code=remote)
    t_tok = models.load_tokenizer(t_ref.path, trust_remote_code=remote)
    s_conf = AutoConfig.from_pretrained(s_ref.path, trust_remote_code=remote)
    t_conf = AutoConfig.from_pretrained(t_ref.path, trust_remote_code=remote)
    try:
        report = preflight(s_tok, t_tok, student_model=s_conf, teacher_model=t_conf, example=example)
    except ConfigError as e:
        raise ConfigError(f"{section} = {teacher!r} cannot teach student {cfg.student!r} token by token: {e}") \
            from None
    log.info("%s", report.format())
    return s_ref, t_ref, s_tok, report


def trainer(cls: type, cfg: TrainConfig, model, tokenizer, out_dir: str | Path, *, device: str, use_bf16: bool,
            **kwargs: Any):
    """One of our own ``Trainer`` subclasses around ``model`` (LoRA-wrapped when ``cfg.lora``),
    with the shared arguments; ``kwargs`` are the dataset, collator and the subclass's own."""
    # counting the tokens each step trains on (not padding) gives every run its compute: 6 N tokens
    args = training_args(cfg, out_dir, use_bf16, device, remove_unused_columns=False, disable_tqdm=False,
                         include_num_input_tokens_seen="non_padding")
    return cls(model=with_lora(model, cfg), args=args, processing_class=tokenizer, **kwargs)


def keep_tracker_logs(scratch: Path, logs: Path) -> None:
    """Move the event files a tracker wrote under the trainer's scratch folder (TensorBoard:
    ``runs/<time>_<host>/``, one per training run) into ``logs`` before the scratch folder goes."""
    written = scratch / "runs"  # transformers' default logging folder under output_dir
    if not written.is_dir():
        return
    logs.mkdir(parents=True, exist_ok=True)
    for run in written.iterdir():
        target = logs / run.name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        shutil.move(str(run), str(target))


def fit(trainer, cfg: TrainConfig, out_dir: str | Path) -> tuple[Any, Any, list[dict[str, Any]]]:
    """Train. Returns ``(model, train_output, log_history)``: the model in eval mode with any LoRA
    merged into plain weights, and only the training log rows.

    Inside :func:`cached_run` the run saves checkpoints as ``cfg`` says and resumes from the
    newest complete one of the same config and inputs (:mod:`.checkpoints`); the scratch folder
    then stays until the run's manifest is written. Called alone, it trains from the start and
    removes the scratch folder. ``cfg.init_optimizer`` / ``cfg.carry_optimizer`` load / save the
    optimizer's state (``out_dir/optimizer.pt``); ``cfg.average_last`` returns the mean of the
    run's last weights (:mod:`.averaging`)."""
    run = checkpoints.current()
    if cfg.init_optimizer:  # first: a bad file fails before the progress bar starts
        trainer.callback_handler.callbacks.insert(0, checkpoints.carried_optimizer_callback(cfg.init_optimizer))
    average = None
    if cfg.average_last:  # before the checkpoint callback: its mean is in a checkpoint before that is marked complete
        averaging.check(trainer)
        average = averaging.callback(cfg, trainer)
        trainer.add_callback(average)
    start = None
    if run is not None:
        trainer.add_callback(checkpoints.checkpoint_callback(cfg, trainer))
        start = checkpoints.resume_point(trainer, run)
        if start is not None and average is not None:
            average.resume(start)
    timer = step_timer()
    trainer.add_callback(timer)
    result = trainer.train(resume_from_checkpoint=start)
    if average is not None:
        result.metrics["averaged_steps"] = average.apply(trainer.model)
    if timer.seconds_per_step() is not None:
        result.metrics["seconds_per_step"] = timer.seconds_per_step()
    tokens = tokens_seen(trainer)
    if tokens is not None:
        result.metrics["num_input_tokens_seen"] = tokens
    if cfg.carry_optimizer:
        checkpoints.save_optimizer_state(trainer, Path(out_dir) / checkpoints.OPTIMIZER)
    gathered = full_state_dict(trainer)
    trained = trainer.model.merge_and_unload() if cfg.lora else trainer.model
    if gathered is not None:  # sharded weights: save_checkpoint writes the gathered copy instead
        trained._gathered_state_dict = gathered
    if trainer.args.process_index == 0:  # launched on many processes: one writer (see train/launch)
        scratch = Path(out_dir) / checkpoints.SCRATCH
        keep_tracker_logs(scratch, Path(out_dir) / TRACKER_LOGS)
        if run is None:
            shutil.rmtree(scratch, ignore_errors=True)
    # keys sorted (a resumed run's earlier rows come back from the checkpoint's trainer_state.json sorted),
    # and without the token counter's throughput (a timing): a resumed run's log is the same
    history = [dict(sorted((k, v) for k, v in h.items() if k not in TOKEN_LOG_KEYS))
               for h in trainer.state.log_history if "loss" in h]
    return trained.eval(), result, history


def full_state_dict(trainer) -> dict[str, Any] | None:
    """``None`` unless the weights are sharded over processes (``--launch fsdp|zero3``, and
    ZeRO-2 alike for uniformity); then the whole state dict, gathered by every rank together
    (a collective: all ranks must call it) and kept on rank 0."""
    if not (getattr(trainer, "is_fsdp_enabled", False) or getattr(trainer, "is_deepspeed_enabled", False)):
        return None
    return trainer.accelerator.get_state_dict(trainer.model_wrapped)


# ---------------------------------------------------------------------------
# saving a run


def save_checkpoint(model, tokenizer, path: str | Path) -> Path:
    """Save as an HF folder with safetensors, atomically (temp folder, then rename): an interrupted
    save never leaves a half-written checkpoint where evaluation looks."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    # under FSDP/ZeRO the live weights are shards; fit() gathered the whole state dict
    model.save_pretrained(tmp, safe_serialization=True, state_dict=getattr(model, "_gathered_state_dict", None))
    tokenizer.save_pretrained(tmp)
    (tmp / models.CHECKPOINT_NOTE).write_text(json.dumps({"saved_at": time.time()}))
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path


def first_last(history: list[dict[str, Any]], key: str, name: str | None = None) -> dict[str, Any]:
    """``{"first_<name>": ..., "last_<name>": ...}`` of a logged ``key`` (``None`` when never logged)."""
    values = [h[key] for h in history if h.get(key) is not None]
    name = name or key
    return {f"first_{name}": values[0] if values else None, f"last_{name}": values[-1] if values else None}


def finish(out_dir: str | Path, model, tokenizer, result, history: list[dict[str, Any]], *, method: str,
           outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The save-run step: ``out_dir/model`` (safetensors, atomically) and ``loss.jsonl``; returns the
    manifest's ``outputs`` (the objective's own ``outputs`` after the shared keys). ``model_dir`` is
    relative to ``out_dir`` (:func:`checkpoint_path` reads it back), so a moved run still finds it."""
    out_dir = Path(out_dir)
    save_checkpoint(model, tokenizer, out_dir / MODEL_DIR)
    io.write_jsonl(out_dir / LOSS_LOG, history)
    return {"files": [LOSS_LOG], "model_dir": MODEL_DIR, "method": method, "steps": result.global_step,
            "train_loss": result.training_loss, **_tokens_trained(result), **_step_seconds(result),
            **_averaged(result), **first_last(history, "loss"),
            **(outputs or {})}


def step_timer():
    """A callback that times every optimizer step (wall seconds, begin to end): its
    ``seconds_per_step()`` is the median after the first step, which pays for allocation and
    warm-up. A compute budget in seconds converts to steps with it (``compare.max_seconds``)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.started: float | None = None
            self.times: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if self.started is not None:
                self.times.append(time.perf_counter() - self.started)

        def seconds_per_step(self) -> float | None:
            later = sorted(self.times[1:] or self.times)
            return None if not later else later[len(later) // 2]

    return StepTimer()


def tokens_seen(trainer: Any) -> int | None:
    """The non-padding tokens a trainer trained on, where it counts them: ours through the Trainer's
    counter, TRL's GRPOTrainer in the same state field, TRL's DPOTrainer in its own total (not kept
    across a resume: a resumed DPO run counts from its resume point); ``None`` elsewhere (SimPO's
    CPOTrainer counts nothing)."""
    counted = getattr(trainer.args, "include_num_input_tokens_seen", "no") not in ("no", False)
    if counted or trainer.state.num_input_tokens_seen:
        return int(trainer.state.num_input_tokens_seen)
    total = getattr(trainer, "_total_train_tokens", None)
    return int(total) if total else None


def _tokens_trained(result: Any) -> dict[str, int]:
    """``{"tokens_trained": n}`` where the trainer counted them (:func:`tokens_seen`), else nothing."""
    n = (getattr(result, "metrics", None) or {}).get("num_input_tokens_seen")
    return {} if n is None else {"tokens_trained": n}


def _averaged(result: Any) -> dict[str, int]:
    """``{"averaged_steps": n}`` where the saved weights are a tail mean (``train.average_last``)."""
    n = (getattr(result, "metrics", None) or {}).get("averaged_steps")
    return {} if n is None else {"averaged_steps": int(n)}


def _step_seconds(result: Any) -> dict[str, float]:
    """``{"seconds_per_step": s}`` (median, :func:`step_timer`) where the run was timed."""
    s = (getattr(result, "metrics", None) or {}).get("seconds_per_step")
    return {} if s is None else {"seconds_per_step": round(float(s), 4)}


def checkpoint_path(out_dir: str | Path, outputs: dict[str, Any]) -> Path:
    """The checkpoint a train folder's manifest ``outputs`` name, inside ``out_dir``. ``model_dir``
    is relative to the train folder; older manifests recorded the path as it was typed then (maybe
    relative to another working directory), whose last part is the same folder name."""
    return Path(out_dir) / Path(outputs.get("model_dir") or MODEL_DIR).name


def started_from(train_cfg: dict) -> list[Path]:
    """The weight files of the checkpoint ``train_cfg`` (a ``TrainConfig`` as a dict) starts from when
    that is a finished training of ours (an on-policy objective's SFT pass, :mod:`.warm_start`; a
    compare entry's ``init``), else nothing: they join the run's hashed inputs. Its config names the
    checkpoint by a path that stays the same when that training reruns on changed traces; the
    weights do not, so the run after it retrains too instead of being reused stale. They are
    declared later inputs (:func:`io.later_input`): a run finished before they were hashed is
    still reused while its start has not been retrained since."""
    student = Path(str(train_cfg.get("student", "")))
    manifest = student.parent / io.MANIFEST
    if not manifest.is_file() or (io.read_json(manifest) or {}).get("stage") != "train":
        return []
    files = sorted(student.glob("*.safetensors"))
    io.later_input(files)
    return files


TrainResult = tuple[Any, Any, Any, list[dict[str, Any]], dict[str, Any]]  # (model, tokenizer, result, history, info)


def cached_run(out_dir: str | Path, method: str, config: Any, inputs: list[Any], train: Callable[[], TrainResult]
               ) -> dict:
    """An objective's whole ``run``: skipped when ``out_dir`` holds a finished run of the same config
    and inputs; else ``train()`` (which returns ``(model, tokenizer, train_output, history, info)``),
    :func:`finish` with ``info`` as the objective's outputs, and the manifest. ``train()`` runs
    resumable (:mod:`.checkpoints`): a killed run continues from its newest checkpoint, and the
    checkpoints go once the manifest is written. The checkpoint settings are not part of the
    identity (:data:`.checkpoints.NOT_IDENTITY`)."""
    config = checkpoints.identity_config(config)
    inputs = [*inputs, *started_from(config.get("train", config))]

    def body() -> dict[str, Any]:
        with checkpoints.resumable(out_dir, config, inputs, writer=True) as run:
            model, tok, result, history, info = train()
        train_cfg = config.get("train", config)  # a TrainConfig as a dict, alone or beside the objective's
        numerics = dtype_record(train_cfg) if "dtype" in train_cfg else {}
        outputs = finish(out_dir, model, tok, result, history, method=method,
                         outputs={**numerics, **info, "resumed_from_step": run.resumed_step})
        if (Path(out_dir) / checkpoints.OPTIMIZER).is_file() and train_cfg.get("carry_optimizer"):
            outputs["files"] = [*outputs["files"], checkpoints.OPTIMIZER]  # hashed: a next run starts from it
        return outputs

    from .launch import rank

    if rank() > 0:  # under `--launch`: train alongside rank 0, which alone writes checkpoint, log and manifest
        done = io.completed_manifest(out_dir, config, io.hash_inputs(inputs, out_dir))
        if done is not None:  # every rank sees the same finished run and skips it
            return {**done, "this_run": {"skipped": True}}
        with checkpoints.resumable(out_dir, config, inputs, writer=False):
            _, _, result, history, _ = train()
        return {"outputs": {"method": method, "steps": result.global_step, "train_loss": result.training_loss},
                "this_run": {"skipped": False, "rank": rank()}}
    manifest = io.cached_stage(out_dir, stage="train", config=config, inputs=inputs, body=body,
                               extra={"method": method})
    checkpoints.clean(out_dir)  # the run is saved and its manifest written
    return manifest
