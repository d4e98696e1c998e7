"""Where a training step's time goes: one SFT step and one offline-KD step of the student on CPU,
profiled by component, with the model-FLOP utilisation of the same steps unprofiled.

It drives the real training path: ``train/sft.py``'s ``train`` and ``train/kd.py``'s ``train``
with the default recipe's ``train`` section (its packing, lean LM head, dtype, Trainer and
optimizer), on the default recipe's program-teacher chain_sum traces; KD reads a top-k logprob
store that the packaged model, as teacher, writes for the same traces (as
``kd_offline_vs_trl_gkd.py`` builds it). Only ``base.fit`` is wrapped, to instrument the trainer
the objective built before it trains: ``torch.profiler.record_function`` scopes opened and closed
by forward pre/post hooks on every ``self_attn`` and ``mlp`` module, the LM head, the whole model
and the packing hooks of its body, and scopes around the data collator, ``compute_loss``, the
backward call, gradient clipping and the optimizer step (Trainer callbacks).

Steps: ``--warmup`` unprofiled, then ``--active`` profiled (``torch.profiler``, CPU activities),
then ``--timed`` unprofiled, which give the step time and MFU free of the profiler's overhead.

Attribution (``attribute``): each profiled op's self time goes to the innermost scope around it
(``forward: other`` is the model's forward outside attention, MLP and head: embeddings, norms,
rotary, residual adds; ``loss`` is ``compute_loss`` outside the model's forward, so the loss and,
where the lean head runs in chunks above its 64 MiB threshold, the head's matmuls fused into it).
Backward is split by component: autograd tags each backward node with the sequence number of the
forward op that made it, so a node's time goes to that op's component (``backward: attention``,
``backward: embeddings, norms, rotary`` for ``forward: other``...); nodes without one (gradients
accumulated into the weights) are ``backward: other``. What no op covers is ``python, untraced``.
The ops of most self time follow the table (``--top-ops``).

    python benchmarks/profile_step.py                       # packaged SmolLM2-135M, --dtype auto
    python benchmarks/profile_step.py --objective sft --active 5 --dtype float32
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).parent))

PREFIX = "rd:"  # the scopes this script opens
UNTRACED = "python, untraced"
OTHER = "other (zero_grad, scheduler, logging, data loader)"
ORDER = ("collate", "packing", "forward: attention", "forward: mlp", "forward: lm_head", "forward: other", "loss",
         "backward: attention", "backward: mlp", "backward: lm_head", "backward: embeddings, norms, rotary",
         "backward: loss", "backward: packing", "backward: other", "grad_clip", "optimizer", OTHER, UNTRACED)
FORWARD_PARTS = {"attention": "forward: attention", "mlp": "forward: mlp", "lm_head": "forward: lm_head",
                 "forward": "forward: other"}
BACKWARD_OF = {"forward: attention": "backward: attention", "forward: mlp": "backward: mlp",
               "forward: lm_head": "backward: lm_head", "forward: other": "backward: embeddings, norms, rotary",
               "loss": "backward: loss", "packing": "backward: packing"}
EVALUATE = "autograd::engine::evaluate_function:"


def _scope(event: Any) -> str | None:
    """The category of the innermost of our scopes around (or being) ``event``, else ``None``."""
    while event is not None:
        if event.name.startswith(PREFIX):
            name = event.name[len(PREFIX):]
            return FORWARD_PARTS.get(name, name)
        event = event.cpu_parent
    return None


def _node(event: Any) -> Any:
    """The autograd node evaluation ``event`` runs inside, else ``None``."""
    while event is not None and not event.name.startswith(PREFIX):
        if event.name.startswith(EVALUATE):
            return event
        event = event.cpu_parent
    return None


def categorised(events: Iterable[Any]) -> list[tuple[str, Any]]:
    """``(category, event)`` for every profiler event (``name``, ``cpu_parent``, ``self_cpu_time_total``,
    ``sequence_nr``, as ``torch.profiler`` gives them); see the module docstring."""
    events = list(events)
    made_by: dict[int, str] = {}  # forward op sequence number -> its category
    for e in events:
        category = _scope(e)
        if e.sequence_nr >= 0 and category != "backward" and not e.name.startswith(EVALUATE):
            made_by.setdefault(e.sequence_nr, category or OTHER)
    out = []
    for e in events:
        category = _scope(e) or OTHER
        if category == "backward":
            node = _node(e)
            made = made_by.get(node.sequence_nr) if node is not None and node.sequence_nr >= 0 else None
            category = BACKWARD_OF.get(made, "backward: other")
        out.append((category, e))
    return out


def attribute(events: Iterable[Any], wall_us: float) -> dict[str, float]:
    """Microseconds of self time per category over profiler ``events`` (:func:`categorised`);
    ``wall_us`` minus the ops' total is ``python, untraced``."""
    out: dict[str, float] = defaultdict(float)
    for category, e in categorised(events):
        out[category] += e.self_cpu_time_total
    out[UNTRACED] = max(0.0, wall_us - sum(out.values()))
    return dict(out)


def top_ops(events: Iterable[Any], n: int) -> list[tuple[str, str, float, int]]:
    """The ``n`` (category, op) pairs of most self time: ``(category, op, microseconds, calls)``."""
    us: dict[tuple[str, str], float] = defaultdict(float)
    calls: dict[tuple[str, str], int] = defaultdict(int)
    for category, e in categorised(events):
        us[category, e.name] += e.self_cpu_time_total
        calls[category, e.name] += 1
    return [(c, op, t, calls[c, op]) for (c, op), t in sorted(us.items(), key=lambda kv: -kv[1])[:n]]


def table(us: dict[str, float], steps: int) -> list[str]:
    """Rows ``component, ms per step, share of the step``, in step order, with forward and backward totals."""
    total = sum(us.values())
    names = [n for n in ORDER if n in us] + sorted(n for n in us if n not in ORDER)
    rows = [f"{'component':50s} {'ms/step':>9s} {'share':>7s}"]
    for name in names:
        rows.append(f"{name:50s} {us[name] / 1e3 / steps:9.1f} {100 * us[name] / total:6.1f}%")
    for part in ("forward: ", "backward: "):
        s = sum(v for k, v in us.items() if k.startswith(part))
        rows.append(f"{part.strip(': ') + ' (total)':50s} {s / 1e3 / steps:9.1f} {100 * s / total:6.1f}%")
    rows.append(f"{'step':50s} {total / 1e3 / steps:9.1f} {100.0:6.1f}%")
    return rows


# ---------------------------------------------------------------------------
# instrumenting the trainer an objective built


class Scope:
    """A ``record_function`` scope opened and closed from two call sites (hooks, callbacks)."""

    def __init__(self, name: str) -> None:
        self.name, self.open = PREFIX + name, []

    def enter(self, *_: Any) -> None:
        from torch.profiler import record_function

        rf = record_function(self.name)
        rf.__enter__()
        self.open.append(rf)

    def exit(self, *_: Any) -> None:
        if self.open:
            self.open.pop().__exit__(None, None, None)

    def wrap(self, fn):
        def scoped(*args: Any, **kwargs: Any):
            self.enter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.exit()
        return scoped


def hook_modules(model) -> int:
    """Scopes on every attention and MLP module, the LM head, the whole model and (where it packs)
    the body's packing hooks. Returns the number of attention modules found."""
    from reasondistill.train import packing

    def scoped(module, scope: Scope, *, prepend: bool = False) -> None:
        module.register_forward_pre_hook(scope.enter, prepend=prepend)
        module.register_forward_hook(scope.exit, prepend=prepend)

    n_attn = 0
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "self_attn":
            scoped(module, Scope("attention"))
            n_attn += 1
        elif leaf == "mlp":
            scoped(module, Scope("mlp"))
    scoped(model.get_output_embeddings(), Scope("lm_head"))
    scoped(model, Scope("forward"), prepend=True)
    inner = packing.body(model)
    if inner is not None and inner._forward_pre_hooks:  # train.packing installed its hooks: time them
        pack, unpack = Scope("packing"), Scope("packing")
        inner.register_forward_pre_hook(pack.enter, prepend=True)
        inner.register_forward_pre_hook(pack.exit)
        inner.register_forward_hook(unpack.enter, prepend=True)
        inner.register_forward_hook(unpack.exit)
    return n_attn


@dataclasses.dataclass
class Window:
    """What the profiling callback saw: the profiled window and the unprofiled timed one."""

    profiled_s: float = 0.0
    profiled_tokens: int = 0
    timed_s: float = 0.0
    timed_tokens: int = 0
    us: dict[str, float] = dataclasses.field(default_factory=dict)
    top: list[tuple[str, str, float, int]] = dataclasses.field(default_factory=list)
    n_attention: int = 0


def profiler_callback(window: Window, warmup: int, active: int, timed: int, top: int):
    """A Trainer callback: the optimizer-step scope, and the profiler on from the end of step
    ``warmup`` to the end of step ``warmup + active``; then ``timed`` more steps timed unprofiled.
    ``top``: how many of the most costly ops to keep."""
    from torch.profiler import ProfilerActivity, profile
    from transformers import TrainerCallback

    optimizer = Scope("optimizer")

    class Profile(TrainerCallback):
        prof = None
        t0 = tokens0 = 0

        def on_pre_optimizer_step(self, args, state, control, **kw):
            optimizer.enter()

        def on_optimizer_step(self, args, state, control, **kw):
            optimizer.exit()

        def on_step_end(self, args, state, control, **kw):
            now, seen = time.perf_counter(), int(state.num_input_tokens_seen)
            if state.global_step == warmup:
                self.prof = profile(activities=[ProfilerActivity.CPU])
                self.prof.start()
            elif state.global_step == warmup + active:
                self.prof.stop()
                window.profiled_s, window.profiled_tokens = now - self.t0, seen - self.tokens0
                events = self.prof.events()
                window.us = attribute(events, 1e6 * window.profiled_s)
                window.top = top_ops(events, top)
            elif state.global_step == warmup + active + timed:
                window.timed_s, window.timed_tokens = now - self.t0, seen - self.tokens0
            self.t0, self.tokens0 = time.perf_counter(), int(state.num_input_tokens_seen)

    return Profile()


def instrumented_fit(window: Window, warmup: int, active: int, timed: int, top: int):
    """``base.fit`` that first instruments the trainer (module hooks, collator, loss, backward,
    gradient clipping, optimizer step, profiler callback)."""
    from reasondistill.train import base

    fit = base.fit

    def run(trainer, cfg, out_dir):
        window.n_attention = hook_modules(trainer.model)
        trainer.data_collator = Scope("collate").wrap(trainer.data_collator)
        trainer.compute_loss = Scope("loss").wrap(trainer.compute_loss)
        trainer.accelerator.backward = Scope("backward").wrap(trainer.accelerator.backward)
        trainer._clip_grad_norm = Scope("grad_clip").wrap(trainer._clip_grad_norm)
        trainer.add_callback(profiler_callback(window, warmup, active, timed, top))
        return fit(trainer, cfg, out_dir)

    return run


def profiled(train, args) -> Window:
    """Run ``train()`` (an objective's ``train`` call) with ``base.fit`` instrumented."""
    from reasondistill.train import base

    window = Window()
    fit = base.fit
    base.fit = instrumented_fit(window, args.warmup, args.active, args.timed, args.top_ops)
    try:
        train()
    finally:
        base.fit = fit
    return window


# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    import torch
    from kd_offline_vs_trl_gkd import build_store
    from mfu import matmul_ceiling, model_shapes, utilisation
    from packing import cpu_flags
    from sft_vs_trl import curated_examples

    from reasondistill import models
    from reasondistill.config import load_recipe
    from reasondistill.device import resolve_dtype
    from reasondistill.logprobs import LogprobReader
    from reasondistill.train import kd, sft
    from reasondistill.train.kd_config import KDConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--student", default="smollm2-135m-instruct")
    ap.add_argument("--objective", choices=("sft", "kd", "both"), default="both")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=None, help="default: the default recipe's train.max_length")
    ap.add_argument("--dtype", default="auto",
                    help="auto (the recipes' choice: bf16 autocast where native, else float32; honours "
                         "ATEN_CPU_CAPABILITY), bfloat16 or float32")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--warmup", type=int, default=2, help="unprofiled steps first")
    ap.add_argument("--active", type=int, default=3, help="profiled steps")
    ap.add_argument("--timed", type=int, default=3, help="unprofiled steps after, for the step time and MFU")
    ap.add_argument("--top-k", type=int, default=20, help="KD: teacher ids per token in the store")
    ap.add_argument("--kd-loss", default=KDConfig.loss)
    ap.add_argument("--top-ops", type=int, default=12, help="also list this many ops of most self time")
    args = ap.parse_args(argv)
    if min(args.warmup, args.active, args.timed) < 1:
        raise SystemExit("--warmup, --active and --timed must each be >= 1")
    dtype = resolve_dtype(args.dtype, args.device)[0]
    steps = args.warmup + args.active + args.timed

    recipe_train = load_recipe("default").train
    cfg = dataclasses.replace(recipe_train, student=args.student, max_steps=steps, batch_size=args.batch_size,
                              max_length=args.max_length or recipe_train.max_length, logging_steps=steps,
                              dtype=dtype, device=args.device, checkpoint_every=0.0)
    work = Path(tempfile.mkdtemp(prefix="profile-step-"))
    examples = curated_examples(steps * args.batch_size, work)
    path = models.resolve(args.student).path
    hidden, inter, vocab, n_params = model_shapes(path)
    ceiling = matmul_ceiling(hidden, inter, vocab, dtype=dtype, device=models.pick_device(args.device))

    print(f"student={args.student} device={args.device} dtype={dtype} cpu_flags=[{cpu_flags()}] "
          f"threads={torch.get_num_threads()} torch={torch.__version__} load_average={os.getloadavg()[0]:.1f}")
    print(f"batch={args.batch_size} max_length={cfg.max_length} packing={cfg.packing} compile={cfg.compile} "
          f"steps: {args.warmup} warm-up, {args.active} profiled, {args.timed} timed")
    runs = []
    if args.objective in ("sft", "both"):
        runs.append(("SFT (train/sft.py)", lambda: sft.train(cfg, examples, work / "sft")))
    if args.objective in ("kd", "both"):
        teacher = models.load_model(path, dtype="auto", device=models.pick_device(args.device))
        build_store(teacher, models.load_tokenizer(path), examples, args.top_k, work / "logprobs", cfg.max_length)
        del teacher
        kd_cfg = KDConfig(loss=args.kd_loss, top_k=args.top_k)
        runs.append((f"offline KD (train/kd.py, {args.kd_loss}, top-{args.top_k} store)",
                     lambda: kd.train(cfg, kd_cfg, examples, LogprobReader(work / "logprobs"), work / "kd")))
    for title, train in runs:
        w = profiled(train, args)
        print(f"\n{title}: {w.n_attention} attention modules hooked; profiled {args.active} steps in "
              f"{w.profiled_s:.2f} s ({w.profiled_tokens} tokens), unprofiled {args.timed} steps in {w.timed_s:.2f} s "
              f"({w.timed_tokens} tokens; profiler overhead {100 * (w.profiled_s / args.active) / (w.timed_s / args.timed) - 100:+.0f}%)")
        print("\n".join(table(w.us, args.active)))
        if w.top:
            print(f"\nthe {len(w.top)} ops of most self time (ms per step, calls per step, component):")
            for category, op, us, calls in w.top:
                print(f"  {us / 1e3 / args.active:9.1f} ms {calls / args.active:7.0f}x  {op[:60]:60s} {category}")
        print(utilisation(n_params, w.timed_tokens, w.timed_s, ceiling))


if __name__ == "__main__":
    main()
