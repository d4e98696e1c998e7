"""``reasondistill compare``: several training objectives (or curation choices) on the same task,
data and step budget, each evaluated on the same held-out problems. An entry's own
``train.max_steps`` (or ``epochs``) is its budget instead; the table's steps column shows each.

The data stages run once (problems, teacher traces, verification, curation); each entry
then trains in its own child process, so its wall time and peak memory are its own,
and is evaluated greedily. ``init`` chains entries (``sft+redi`` starts from ``sft``'s
checkpoint). An on-policy entry (gkd, kdrl, grpo, negative-advantage) without ``init`` starts from
an SFT entry on the same data (``train.warm_start: sft``, their default; :mod:`.train.warm_start`):
the compare's own ``sft`` entry, else one it adds and marks in the table. An entry with ``curate``
settings re-curates the shared verified traces with them into its own
``compare/entries/<name>/curate/`` (in its child process: a student-aware policy loads the student
there) and trains on that. An entry with ``loop`` settings runs student-driven
rounds (``reasondistill loop``) in ``compare/entries/<name>/loop/`` instead. Its last student has
the entries' step budget either way: with ``retrain: last`` each round trains
``compare.max_steps / rounds`` steps from the previous round's checkpoint; with ``scratch`` each
round trains ``compare.max_steps`` from ``train.student`` (the earlier rounds' students only pick).
``run:NAME`` model references resolve first.

``compare.train_seeds: N`` trains every entry N times, with ``train.seed + k`` (another data
order each; seed ``k``'s ``init`` is the earlier entry's seed-``k`` checkpoint). A row is the mean
over its seeds, with an interval that counts training-seed variance and held-out sampling
together (:mod:`.seed_stats`), and a verdict against the reference entry (the first, or
``compare.reference``) and against the untrained student: better, worse, or no detectable difference.
Two entries whose seed k shares its data order or parent checkpoint by design are compared seed by
seed (:func:`seeds_paired`).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import resource
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import io, models
from .config import CurateConfig, LoopConfig, Recipe, TrainConfig, build
from .errors import ConfigError
from .layout import EVAL_FILES, Layout
from .records import StageManifest
from .train import OBJECTIVES, objective_config, warm_start

log = logging.getLogger(__name__)


@dataclass
class CompareEntry:
    """One row of the comparison: an objective, its options, and where its student starts."""

    name: str
    method: str = "sft"
    objective: dict[str, Any] = field(default_factory=dict)
    init: str | None = None  # name of an earlier entry whose checkpoint is this entry's student
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields to change for this entry
    curate: dict[str, Any] = field(default_factory=dict)  # CurateConfig fields to change: its own curated data
    loop: dict[str, Any] = field(default_factory=dict)  # LoopConfig fields: student-driven rounds instead of one run
    # name of an earlier entry: train as many student tokens as it did, seed for seed (steps from this
    # entry's own data), so an entry on longer traces can be compared at equal steps and at equal tokens
    match_tokens: str | None = None
    # the seed paper's figure for this entry against the reference entry: {delta: points (its sign is
    # the paper's direction), source: "model, benchmark, arXiv id"}; the row then says whether ours
    # reproduced it, reversed it, or cannot tell
    paper: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.paper:
            delta, source = self.paper.get("delta"), self.paper.get("source", "")
            extra = set(self.paper) - {"delta", "source"}
            if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not isinstance(source, str) or extra:
                raise ConfigError(f"compare.{self.name}.paper must be {{delta: <points vs the reference>, source: "
                                  f"<text>}}, got {self.paper!r}")


def entries(recipe: Recipe) -> list[CompareEntry]:
    """Validate ``compare.entries`` fully (objective options included) before any model loads."""
    raw = recipe.compare.entries
    if not raw:
        raise ConfigError("compare.entries is empty: list the objectives to compare")
    out: list[CompareEntry] = []
    for i, item in enumerate(raw):
        entry = build(CompareEntry, item, f"compare.entries[{i}]")
        if entry.init is not None and entry.init not in {e.name for e in out}:
            raise ConfigError(f"compare.entries[{i}] ({entry.name}): init '{entry.init}' must name an earlier entry")
        if entry.name in {e.name for e in out}:
            raise ConfigError(f"compare.entries[{i}]: duplicate name '{entry.name}'")
        check_match_tokens(recipe, entry, out, i)
        if "seed" in entry.train:
            raise ConfigError(f"compare.entries[{i}] ({entry.name}): train.seed is set per training seed; use "
                              "compare.train_seeds to train every entry with several seeds")
        check_own_budget(recipe, entry, i)
        cfg = train_cfg(recipe, entry, Layout(Path(".")))  # builds and validates the objective's own config
        if entry.init is None and not entry.loop and warm_start.resolve(cfg) == "sft":
            entry = sft_init(recipe, entry, out, i)
        curate_cfg(recipe, entry)
        if entry.loop:
            loop_recipe(recipe, entry, Layout(Path(".")))
        out.append(entry)
    check_token_budget(recipe, out)
    ref = recipe.compare.reference
    if ref is not None and ref not in {e.name for e in out}:
        raise ConfigError(f"compare.reference '{ref}' names no entry (entries: {', '.join(e.name for e in out)})")
    return out


def sft_init(recipe: Recipe, entry: CompareEntry, earlier: list[CompareEntry], i: int) -> CompareEntry:
    """``entry`` (an on-policy objective, ``train.warm_start: sft``) starting from an SFT entry on the
    same data: an earlier one if the compare has it, else one added to ``earlier`` here (named
    ``sft``, or ``sft-for-<entry>`` when taken; the step budget is every entry's)."""
    def same_data(e: dict[str, Any]) -> bool:
        return (e.get("method", "sft") == "sft" and e.get("init") is None and not e.get("loop")
                and (e.get("curate") or {}) == entry.curate)

    found = next((e for e in earlier if same_data(dataclasses.asdict(e))), None)
    if found is None:
        later = next((e for e in recipe.compare.entries[i + 1:] if isinstance(e, dict) and same_data(e)), None)
        if later is not None:
            raise ConfigError(f"compare.entries[{i}] ({entry.name}) starts from SFT on the same data "
                              f"(train.warm_start: sft, the default for {entry.method}); list entry "
                              f"'{later['name']}' before it, or give it init: or train: {{warm_start: none}}")
        taken = {e.name for e in earlier} | {e.get("name") for e in recipe.compare.entries if isinstance(e, dict)}
        name = "sft" if "sft" not in taken else f"sft-for-{entry.name}"
        budget = {k: v for k, v in entry.train.items() if k in OWN_BUDGET}
        found = CompareEntry(name=name, method="sft", train=budget, curate=dict(entry.curate))
        earlier.append(found)
        log.info("compare: %s (%s) starts from SFT on the same traces: entry '%s' added", entry.name, entry.method,
                 name)
    return dataclasses.replace(entry, init=found.name)


def added_entries(recipe: Recipe, todo: list[CompareEntry]) -> dict[str, list[str]]:
    """``{entry compare added: [the entries that start from it]}`` (:func:`sft_init`)."""
    given = {e.get("name") for e in recipe.compare.entries}
    return {e.name: [o.name for o in todo if o.init == e.name] for e in todo if e.name not in given}


OWN_BUDGET = ("max_steps", "epochs")  # an entry's train options that set its own step budget


def check_own_budget(recipe: Recipe, entry: CompareEntry, i: int) -> None:
    """An entry's own ``train.max_steps``/``epochs`` is its budget, in place of ``compare.max_steps``;
    where the budget is computed for it (tokens, seconds, ``match_tokens``, a loop's rounds) it could
    not hold, so it is refused before any work rather than silently replaced."""
    own = [k for k in OWN_BUDGET if k in entry.train]
    computed = [what for what, on in (("compare.max_tokens", recipe.compare.max_tokens > 0),
                                      ("compare.max_seconds", recipe.compare.max_seconds > 0),
                                      ("match_tokens", bool(entry.match_tokens)), ("loop", bool(entry.loop))) if on]
    if own and computed:
        raise ConfigError(f"compare.entries[{i}] ({entry.name}): train.{own[0]} is a budget of its own, but "
                          f"{computed[0]} sets this entry's steps; remove one of them")


def check_token_budget(recipe: Recipe, todo: list[CompareEntry]) -> None:
    """``compare.max_tokens`` excludes ``max_steps`` and needs entries whose tokens per step are known
    before training: refused, before any work, for the others. ``compare.max_seconds`` excludes both
    and loop entries (their rounds each train)."""
    given = [k for k in ("max_steps", "max_tokens", "max_seconds") if getattr(recipe.compare, k) > 0]
    if len(given) > 1:
        raise ConfigError(f"compare.{' and compare.'.join(given)} are {'two' if len(given) == 2 else 'three'} "
                          "budgets; set one of them")
    if recipe.compare.max_seconds > 0:
        for e in todo:
            if e.loop or e.match_tokens:
                raise ConfigError(f"compare.max_seconds: entry '{e.name}' "
                                  f"({'a loop entry' if e.loop else 'match_tokens'}) cannot be given a budget in "
                                  "seconds; use compare.max_steps")
    if recipe.compare.max_tokens <= 0:
        return
    for e in todo:
        if (what := _tokens_unknown(e)) is not None:
            raise ConfigError(f"compare.max_tokens: entry '{e.name}' ({what}) cannot be given a token budget "
                              f"(only {', '.join(_BUDGETED)} on curated traces); use compare.max_steps")


# objectives that train on their curated data as is, counting its tokens: a token budget applies
_BUDGETED = [name for name, row in OBJECTIVES.items() if row.fixed_tokens]


def _tokens_unknown(e: CompareEntry) -> str | None:
    """Why ``e``'s tokens per step are not known before it trains (``None``: they are)."""
    if e.loop:
        return "a loop entry"
    return None if e.method in _BUDGETED else f"method {e.method}"


def check_match_tokens(recipe: Recipe, entry: CompareEntry, earlier: list[CompareEntry], i: int) -> None:
    """``match_tokens`` names an earlier entry, both train on curated traces as they are (their tokens
    are counted), and the compare has no recipe-wide token budget to conflict with."""
    ref = entry.match_tokens
    if ref is None:
        return
    where = f"compare.entries[{i}] ({entry.name}).match_tokens"
    found = next((e for e in earlier if e.name == ref), None)
    if found is None:
        raise ConfigError(f"{where}: '{ref}' must name an earlier entry")
    if recipe.compare.max_tokens > 0:
        raise ConfigError(f"{where}: compare.max_tokens already gives every entry the same tokens; set one of them")
    for e in (entry, found):
        if (what := _tokens_unknown(e)) is not None:
            raise ConfigError(f"{where}: entry '{e.name}' ({what}) has no token count known before training "
                              f"(only {', '.join(_BUDGETED)} on curated traces)")


def steps_for_tokens(recipe: Recipe, train: TrainConfig, data: Path, tokens: int | None = None) -> int:
    """Optimizer steps that train about ``tokens`` (default ``compare.max_tokens``) tokens of ``data``
    (at least one batch, else a :class:`ConfigError`: the budget cannot be met)."""
    from .train.base import mean_example_tokens

    tokens = recipe.compare.max_tokens if tokens is None else tokens
    per_step = train.batch_size * train.grad_accum * mean_example_tokens(train, data)
    steps = round(tokens / per_step)
    if steps < 1:
        raise ConfigError(f"a token budget of {tokens} is less than one optimizer step of "
                          f"{per_step:.0f} tokens ({train.batch_size} x {train.grad_accum} examples of "
                          f"{per_step / train.batch_size / train.grad_accum:.0f} tokens in {data})")
    return steps


PROBE_STEPS = 4  # a seconds budget times this many steps of each entry (the first is not counted)


def steps_for_seconds(recipe: Recipe, sub: Recipe, entry: CompareEntry, layout: Layout) -> int:
    """Optimizer steps of ``entry`` that fit ``compare.max_seconds`` of training wall time: its
    median step time over a short probe run of its own objective, data and start (the first
    step, which pays for warm-up, is not counted). The probe and the steps are kept in
    ``<entry>/budget.json``, so its other training seeds and any rerun train the same steps; a
    budget below one step is refused before the entry trains."""
    from .pipeline import run_stages, select

    seconds = recipe.compare.max_seconds
    folder = layout.entry(entry.name).root
    record = folder / "budget.json"
    found = io.read_json(record) if record.is_file() else None
    if not found or found.get("max_seconds") != seconds:
        probe = entry_layout(layout, entry).override(dirs={"train": folder / "budget-probe"})
        timed = dataclasses.replace(sub, train=dataclasses.replace(sub.train, max_steps=PROBE_STEPS,
                                                                    seed=recipe.train.seed))
        manifest = run_stages(select("train", "train"), timed, probe, None)["train"]
        per_step = manifest.outputs.get("seconds_per_step")
        if not per_step:
            raise ConfigError(f"compare.max_seconds: entry '{entry.name}' ({entry.method}) reported no step "
                              "times; use compare.max_steps")
        found = {"max_seconds": seconds, "seconds_per_step": per_step, "probe_steps": PROBE_STEPS,
                 "steps": int(seconds // per_step)}
        io.write_json(record, found)
    if found["steps"] < 1:
        raise ConfigError(f"compare.max_seconds = {seconds:g} is less than one optimizer step of entry "
                          f"'{entry.name}' ({found['seconds_per_step']:.2f} s per step over a {PROBE_STEPS}-step "
                          "probe)")
    return found["steps"]


CHAIN_ORDER_STRIDE = 1000  # data_seed = seed + this x the entry's depth in its init chain


def chain_depth(recipe: Recipe, entry: CompareEntry) -> int:
    """How many ``init`` links lead from ``entry`` to a student trained from scratch (0: none). An
    entry's implicit SFT start (:func:`sft_init`) is one link; the recipe's own ``init`` names the rest."""
    raw = {item.get("name"): item for item in recipe.compare.entries if isinstance(item, dict)}
    depth, name = 0, entry.init
    while name is not None:  # ends: entries() lets init name only an earlier entry
        depth, name = depth + 1, raw.get(name, {}).get("init")
    return depth


def train_cfg(recipe: Recipe, entry: CompareEntry, layout: Layout, seed: int = 0) -> TrainConfig:
    """The entry's training config for its training seed ``seed`` (0 .. ``compare.train_seeds`` - 1)."""
    data = {**dataclasses.asdict(recipe.train), **entry.train, "method": entry.method, "objective": entry.objective}
    data["seed"] = recipe.train.seed + seed
    if "epochs" in entry.train and "max_steps" not in entry.train:
        data["max_steps"] = -1  # the entry's own epochs, not a step count from the recipe
    elif recipe.compare.max_steps > 0 and "max_steps" not in entry.train:
        data["max_steps"] = recipe.compare.max_steps  # the same step budget for every entry without its own
    if entry.init is not None:  # the chain is its warm start
        data["student"] = str(layout.entry(entry.init, seed).checkpoint)
        data["warm_start"] = "none"
        # a new order per link of the chain: with its parent's, continuing re-reads the traces the parent
        # saw first; siblings (sft+sft, sft+redi) share one, so their paired comparison keeps it fixed
        data["data_seed"] = data["seed"] + CHAIN_ORDER_STRIDE * chain_depth(recipe, entry)
    cfg = build(TrainConfig, data, f"compare.{entry.name}.train")
    objective_config(cfg.method, cfg.objective)  # the objective's own options, before anything loads
    return cfg


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over``'s keys, nested sections merged key by key (``length: {shortest: 1}``
    keeps the other length settings)."""
    return {**base, **{k: _merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
                       for k, v in over.items()}}


def curate_cfg(recipe: Recipe, entry: CompareEntry) -> CurateConfig:
    """The recipe's curation with the entry's ``curate`` changes (validated)."""
    if not entry.curate:
        return recipe.curate
    return build(CurateConfig, _merged(dataclasses.asdict(recipe.curate), entry.curate), f"compare.{entry.name}.curate")


def loop_recipe(recipe: Recipe, entry: CompareEntry, layout: Layout, seed: int = 0) -> Recipe:
    """The recipe a ``loop`` entry runs: its rounds split the step budget (``compare.max_steps``);
    each round evaluates only its own student (the table's teacher and baseline are the compare's)."""
    from . import loop

    cfg = build(LoopConfig, entry.loop, f"compare.{entry.name}.loop")
    train = train_cfg(recipe, entry, layout, seed)
    if recipe.compare.max_steps > 0 and cfg.retrain == "last":
        if recipe.compare.max_steps % cfg.rounds:
            raise ConfigError(f"compare.{entry.name}.loop: with retrain: last the rounds split the step budget; "
                              f"compare.max_steps ({recipe.compare.max_steps}) must be divisible by rounds "
                              f"({cfg.rounds})")
        train = dataclasses.replace(train, max_steps=recipe.compare.max_steps // cfg.rounds)
    sub = dataclasses.replace(recipe, train=train, curate=curate_cfg(recipe, entry), loop=cfg,
                              eval=dataclasses.replace(recipe.eval, models=[]))
    loop.check(sub)
    return sub


def entry_layout(layout: Layout, entry: CompareEntry, seed: int = 0) -> Layout:
    """The shared data stages, the entry's own train and eval folders (per training seed), and its
    own curate (and pairs) folders when it changes curation (shared by its seeds)."""
    return layout.entry(entry.name, seed, own_curation=bool(entry.curate))


def _log_like_parent() -> dict[str, Any]:
    """The parent's root logging (level, format) for a spawned child, which starts without any."""
    root = logging.getLogger()
    fmt = root.handlers[0].formatter if root.handlers else None
    return {"level": root.getEffectiveLevel(), "format": fmt._fmt if fmt else None,
            "datefmt": fmt.datefmt if fmt else None} if root.handlers else {}


def _train_in_child(recipe: Recipe, entry: CompareEntry, layout: Layout, queue, logs: dict[str, Any],
                    seed: int = 0) -> None:
    """:func:`_train_entry` in a spawned child; a budget it finds it cannot meet goes back to the
    parent as a :class:`ConfigError` (one clear line), not as a crashed child. SIGTERM (the parent's
    :func:`_join_or_stop`) unwinds it like Ctrl-C, so temp files go and finished records stay."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        _train_entry(recipe, entry, layout, queue, logs, seed)
    except ConfigError as e:
        queue.put({"config_error": str(e)})
    except KeyboardInterrupt:
        sys.exit(130)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _join_or_stop(proc: Any, grace_s: float = 60.0) -> None:
    """Wait for an entry's child. When this process is interrupted (Ctrl-C, SIGTERM sent to it
    alone), stop the child too instead of leaving it training unseen: SIGTERM, then SIGKILL
    after ``grace_s``; its finished checkpoints and records stay on disk for the re-run."""
    try:
        proc.join()
    except BaseException:
        if proc.is_alive():
            proc.terminate()
            proc.join(grace_s)
            if proc.is_alive():
                proc.kill()
                proc.join()
        raise


def _train_entry(recipe: Recipe, entry: CompareEntry, layout: Layout, queue, logs: dict[str, Any],
                 seed: int = 0) -> None:
    from .evaluate import evaluate_model
    from .pipeline import resolve_references, run_stages, select

    if logs:  # so a loop entry's rounds report their progress like the parent's stages do
        logging.basicConfig(**logs)
    started = time.time()
    own = entry_layout(layout, entry, seed)  # shared data stages, its own train and eval folders (and curation)
    extra: dict[str, Any] = {}
    if entry.loop:
        from . import loop

        sub = resolve_references(loop_recipe(recipe, entry, layout, seed))
        rounds_at = own.loop()
        done_before = rounds_at.loop_json.is_file() and \
            len(io.read_json(rounds_at.loop_json)["rounds"]) == sub.loop.rounds
        rounds = loop.run(sub, rounds_at.root)["rounds"]
        checkpoint = str(rounds_at.root / rounds[-1]["checkpoint"])  # relative to the loop folder
        steps = sub.train.max_steps * (len(rounds) if sub.loop.retrain == "last" else 1)  # the last student's
        trained = StageManifest("train", skipped=done_before, outputs={"steps": steps})
        extra = {"curated": rounds[-1]["train_examples"], "rounds": len(rounds)}
    else:
        sub = dataclasses.replace(recipe, train=train_cfg(recipe, entry, layout, seed), curate=curate_cfg(recipe, entry))
        sub = resolve_references(sub)  # an entry's own objective may name one (e.g. gkd's teacher: run:default)
        # its own curation (and pairs), then training: the slice of the stage table after the shared data
        run_stages(select("curate" if entry.curate else "pairs", "pairs"), sub, own, None, checks=False)
        if recipe.compare.max_tokens > 0 or entry.match_tokens:  # its own data's steps for the tokens
            tokens = matched_tokens(layout, entry, seed) if entry.match_tokens else None
            sub = dataclasses.replace(sub, train=dataclasses.replace(
                sub.train, max_steps=steps_for_tokens(recipe, sub.train, own.path("curated"), tokens)))
        elif recipe.compare.max_seconds > 0:  # its own step time's steps for the seconds
            sub = dataclasses.replace(sub, train=dataclasses.replace(
                sub.train, max_steps=steps_for_seconds(recipe, sub, entry, layout)))
        trained = run_stages(select("train", "train"), sub, own, None)["train"]
        checkpoint = str(own.checkpoint)
    train_wall = time.time() - started
    train_cpu = _cpu_seconds()
    evaluated = StageManifest.of(evaluate_model(sub, checkpoint, entry.name, own))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stats = {"train_wall_seconds": train_wall, "wall_seconds": time.time() - started, "peak_rss_mb": rss,
             "train_cpu_seconds": train_cpu, "cpu_seconds": _cpu_seconds(),
             "steps": trained.outputs.get("steps"), "tokens_trained": trained.outputs.get("tokens_trained"),
             "tokens_sampled": trained.outputs.get("on_policy_tokens"),  # on-policy objectives' student samples
             "parameters": models.parameter_count(checkpoint), **extra}
    stats_path = own.stats_json
    reused = trained.skipped and evaluated.skipped
    if reused and stats_path.exists():
        stats = io.read_json(stats_path)  # both reused: keep the figures measured when they ran
    else:
        io.write_json(stats_path, stats)
    queue.put(stats)


def matched_tokens(layout: Layout, entry: CompareEntry, seed: int) -> int:
    """The student tokens ``entry.match_tokens`` trained with the same training seed (its stats,
    written when it ran: entries run in order)."""
    stats = io.read_json(layout.entry(entry.match_tokens, seed).stats_json)
    tokens = stats.get("tokens_trained")
    if not tokens:
        raise ConfigError(f"compare.{entry.name}.match_tokens: entry '{entry.match_tokens}' recorded no trained "
                          f"tokens for training seed {seed}")
    return int(tokens)


def _cpu_seconds() -> float:
    """CPU seconds (user + system) this process and its finished children have used so far."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def cost(stats: list[dict[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
    """What an entry's student cost, per training seed (means): train wall and CPU seconds, tokens
    trained and the estimated training FLOPs (6 N tokens, N the student's parameters; ``None`` where
    the trainer does not count its tokens), the tokens an on-policy objective sampled from the student
    and their FLOPs (2 N each, a forward pass; ``None`` for objectives that sample nothing), plus the
    shared data stages' cost (``data``)."""
    def mean(key: str) -> float | None:
        values = [s.get(key) for s in stats]
        return None if any(v is None for v in values) else sum(values) / len(values)

    tokens, sampled, n = mean("tokens_trained"), mean("tokens_sampled"), stats[0].get("parameters")
    return {"train_wall_seconds": mean("train_wall_seconds"), "train_cpu_seconds": mean("train_cpu_seconds"),
            "student_tokens_trained": tokens, "student_parameters": n,
            "train_flops": None if tokens is None or n is None else 6 * n * tokens,
            "student_tokens_sampled": sampled,
            "sample_flops": None if sampled is None or n is None else 2 * n * sampled, **data}


def data_cost(layout: Layout) -> dict[str, Any]:
    """The shared generation's cost, from its manifest: teacher tokens generated and wall seconds."""
    m = io.read_manifest(layout.manifest("generate"), "generate") or StageManifest("generate")
    return {"teacher_tokens_generated": m.outputs.get("completion_tokens"), "generate_wall_seconds": m.wall_seconds,
            "teacher_calls": m.calls}


def run(recipe: Recipe, out_dir: str | Path) -> list[dict[str, Any]]:
    """Prepare the data once, then train and evaluate every entry; writes ``compare.json``."""
    from . import pipeline

    todo = entries(recipe)
    layout = Layout(Path(out_dir))
    recipe = pipeline.resolve_references(recipe, layout.root)
    pipeline.run(recipe, layout.root, last="curate")
    if recipe.compare.max_tokens > 0:  # a budget below one step is refused before any training
        steps_for_tokens(recipe, recipe.train, layout.path("curated"))
    if "teacher" in recipe.eval.models:
        evaluate_teacher(recipe, layout)
    baseline_dir = None
    if recipe.compare.baseline:
        evaluate_baseline(recipe, layout)
        baseline_dir = layout.compare_models().eval_dir("student_before")
    rows = []
    scores: dict[str, list[dict[str, float]]] = {}  # entry -> per seed: {problem id: greedy pass}
    ctx = mp.get_context("spawn")  # a fresh interpreter per entry: its own memory peak, no shared state
    n_seeds = recipe.compare.train_seeds
    shared_cost = data_cost(layout)
    added = added_entries(recipe, todo)
    for entry in todo:
        per_seed = []
        for seed in range(n_seeds):
            log.info("compare: %s (%s)%s", entry.name, entry.method,
                     f", training seed {seed + 1} of {n_seeds}" if n_seeds > 1 else "")
            queue = ctx.Queue()
            proc = ctx.Process(target=_train_in_child, args=(recipe, entry, layout, queue, _log_like_parent(), seed))
            proc.start()
            _join_or_stop(proc)
            if proc.exitcode != 0:
                raise RuntimeError(f"compare entry '{entry.name}' (training seed {seed}) failed (exit code "
                                   f"{proc.exitcode}); see the log above")
            got = queue.get()
            if "config_error" in got:
                raise ConfigError(got["config_error"])
            own = layout.entry(entry.name, seed)
            per_seed.append((got, io.read_summary(own.eval_file(entry.name, "summary")),
                             own.eval_dir(entry.name)))
        scores[entry.name] = [greedy_scores(d) for *_, d in per_seed]
        stats = [s for s, *_ in per_seed]
        summaries = [s for _, s, _ in per_seed]
        kept = stats[0]["curated"] if entry.loop else \
            io.read_manifest(entry_layout(layout, entry).manifest("curate")).outputs["counts"]["kept"]
        iv = seed_interval(scores[entry.name])
        # one seed: the Wilson interval of the proportion; several: over seeds and problems, within [0, 1]
        ci = summaries[0].ci95 if n_seeds == 1 else [max(0.0, iv["ci95"][0]), min(1.0, iv["ci95"][1])]
        rows.append({"objective": entry.name, "method": entry.method, "curated": kept, "accuracy": iv["value"],
                     "ci95": ci, "seeds": n_seeds, "per_seed": [s.accuracy for s in summaries],
                     "interval": iv, "tokens_per_answer": sum(s.mean_tokens for s in summaries) / n_seeds,
                     "wall_seconds": round(sum(s["wall_seconds"] for s in stats) / n_seeds, 1),
                     "train_wall_seconds": round(sum(s["train_wall_seconds"] for s in stats) / n_seeds, 1),
                     "peak_rss_mb": round(max(s["peak_rss_mb"] for s in stats), 1), "steps": stats[0]["steps"],
                     "cost": cost(stats, shared_cost), "init": entry.init,
                     **({"seed_noise": seed_noise(scores[entry.name])} if n_seeds > 1 else {}),
                     **({"added_as_warm_start_of": added[entry.name]} if entry.name in added else {})})
    ref = recipe.compare.reference or next(e.name for e in todo if e.name not in added)
    base = [greedy_scores(baseline_dir)] if baseline_dir is not None else None
    papers = {e.name: e.paper for e in todo if e.paper}
    by_name = {e.name: e for e in todo}
    for row in rows:
        if row["objective"] != ref:
            paired = n_seeds > 1 and seeds_paired(by_name[row["objective"]], by_name[ref], by_name)
            row["vs_reference"] = {"reference": ref, **seed_interval(scores[row["objective"]], scores[ref],
                                                                      paired=paired)}
            if row["objective"] in papers:
                row["paper"] = papers[row["objective"]]
                row["reproduction"] = reproduction(row["vs_reference"]["verdict"], row["paper"]["delta"])
        if base is not None:
            row["vs_untrained"] = seed_interval(scores[row["objective"]], base)
            cpu = row["cost"]["train_cpu_seconds"]
            if cpu:  # the gain over the untrained student per CPU-hour of training (GPU-hour on a GPU)
                row["points_per_cpu_hour"] = 100 * row["vs_untrained"]["delta"] / (cpu / 3600)
    io.write_json(layout.compare_json, rows)
    write_plot(layout, rows)
    return rows


def reproduction(verdict: str, paper_delta: float) -> str:
    """``reproduced`` when our difference from the reference is detectable and has the paper's sign,
    ``reversed`` when it is detectable with the other sign, else ``no detectable difference``."""
    if verdict not in ("better", "worse") or paper_delta == 0:
        return "no detectable difference"
    return "reproduced" if (verdict == "better") == (paper_delta > 0) else "reversed"


def write_plot(layout: Layout, rows: list[dict[str, Any]]) -> Path | None:
    """``compare/accuracy_vs_compute.png`` beside ``compare.json`` (none without matplotlib)."""
    from .report.plots import accuracy_vs_compute

    png = accuracy_vs_compute(rows, load_baseline(layout.root))
    if png is None:
        return None
    path = layout.compare_plot()
    with io.atomic_open(path, "wb") as fh:
        fh.write(png)
    return path


def greedy_scores(eval_dir: Path) -> dict[str, float]:
    """``{problem id: 1.0 if the greedy answer passed else 0.0}`` of an evaluation folder."""
    from .records import EvalSample

    return {s.problem_id: float(s.passed) for s in io.read_records(eval_dir / EVAL_FILES["samples"], EvalSample)
            if s.sample_idx == 0}


def lineage(entry: CompareEntry, by_name: dict[str, CompareEntry]) -> list[str]:
    """``entry``'s name and those of the entries its ``init`` chain continues, nearest first."""
    names = [entry.name]
    while by_name[names[-1]].init is not None:  # ends: entries() lets init name only an earlier entry
        names.append(by_name[names[-1]].init)
    return names


def seeds_paired(x: CompareEntry, y: CompareEntry, by_name: dict[str, CompareEntry]) -> bool:
    """Whether seed k of ``x`` and of ``y`` share their cause of seed noise by design, so their
    difference is taken seed by seed (:mod:`.seed_stats`, paired): one continues the other's
    checkpoint or both continue a common one, or both train from scratch on the same curated traces
    (no curate override of their own, no loop) and read them in the same order: the same objective
    with other options, or two objectives that each train one row per trace (``trace_rows``: SFT
    and token KD on the same traces). Decided from the recipe, never from the results."""
    if set(lineage(x, by_name)) & set(lineage(y, by_name)):
        return True
    same_rows = x.method == y.method or (OBJECTIVES[x.method].trace_rows and OBJECTIVES[y.method].trace_rows)
    return x.init is None and y.init is None and not x.loop and not y.loop and same_rows and x.curate == y.curate


def seed_interval(a: list[dict[str, float]], b: list[dict[str, float]] | None = None, *,
                  paired: bool = False) -> dict[str, Any]:
    """The mean over seeds of ``a`` (or of ``a - b``) on the problems every run answered, with its
    interval over training seeds and problems (:mod:`.seed_stats`; ``paired``: seed by seed), a
    verdict for a difference, and ``delta`` (the difference, as the single-seed table called it)."""
    from . import seed_stats

    shared, rows = seed_stats.on_shared(a + (b or []))
    if not shared:
        return {"value": None, "ci95": None, "n_problems": 0, "verdict": "no problems in common"}
    iv = seed_stats.interval(rows[:len(a)], rows[len(a):] if b is not None else None, paired=paired)
    out = iv.to_dict()
    if b is not None:
        out.update(delta=iv.value, n=len(shared), verdict=seed_stats.verdict(iv))
    return out


def seed_noise(per_seed: list[dict[str, float]]) -> dict[str, Any]:
    """How far the entry moves from seed to seed, split into flips and training noise
    (:class:`.seed_stats.SeedNoise`), on the problems every seed answered."""
    from . import seed_stats

    shared, rows = seed_stats.on_shared(per_seed)
    return seed_stats.seed_noise(rows).to_dict() if shared else {}


def evaluate_baseline(recipe: Recipe, layout: Layout) -> dict[str, Any]:
    """The untrained student on the same held-out problems; ``compare/baseline.json``."""
    from .evaluate import evaluate_model

    base = layout.compare_models()
    evaluate_model(recipe, recipe.train.student, "student_before", base)
    summary = io.read_summary(base.eval_file("student_before", "summary"))
    row = {"model": recipe.train.student, "accuracy": summary.accuracy, "ci95": summary.ci95,
           "tokens_per_answer": summary.mean_tokens}
    io.write_json(layout.compare_baseline(), row)
    return row


def evaluate_teacher(recipe: Recipe, layout: Layout) -> dict[str, Any]:
    """The teacher on the same held-out problems (when ``eval.models`` names it), so the table shows
    how far above the untrained student the traces come from; ``compare/teacher.json``."""
    from .backends import BackendPool, label
    from .evaluate import evaluate_teacher as run_teacher

    own = layout.compare_models()
    with BackendPool() as pool:
        run_teacher(recipe, own, pool)
    summary = io.read_summary(own.eval_file("teacher", "summary"))
    row = {"model": label(recipe.teachers()[0]),  # of a teacher list, the first is the one evaluated
           "accuracy": summary.accuracy, "ci95": summary.ci95, "tokens_per_answer": summary.mean_tokens}
    io.write_json(layout.compare_teacher(), row)
    return row


def load_teacher(out_dir: str | Path) -> dict[str, Any] | None:
    path = Layout(Path(out_dir)).compare_teacher()
    return io.read_json(path) if path.exists() else None


def load_baseline(out_dir: str | Path) -> dict[str, Any] | None:
    path = Layout(Path(out_dir)).compare_baseline()
    return io.read_json(path) if path.exists() else None


def _vs(vs: dict[str, Any] | None) -> str:
    """``+0.053 [-0.012, +0.118] no detectable difference`` for a seed-aware difference."""
    if not vs or not vs.get("n"):
        return "-"
    lo, hi = vs["ci95"]
    short = {"better": "better", "worse": "worse", "no detectable difference": "no diff"}.get(vs["verdict"], "")
    return f"{vs['delta']:+.3f} [{lo:+.3f}, {hi:+.3f}] {short}"


def format_table(rows: list[dict[str, Any]], baseline: dict[str, Any] | None = None,
                 teacher: dict[str, Any] | None = None) -> str:
    """The compare table: each row's mean over its training seeds with its interval (training seeds
    and held-out problems), and its difference from the reference entry and from the untrained
    student with a verdict."""
    from .seed_stats import format_noise

    ref = next((r["vs_reference"]["reference"] for r in rows if r.get("vs_reference")), None)
    vs_head = f"vs {ref or 'reference'}"
    head = (f"{'objective':<14} {'seeds':>5} {'accuracy':>8} {'95% CI':>16} {vs_head:>36} "
            f"{'vs untrained':>36} {'tok/answer':>10} {'tokens trained':>14} {'train CPU s':>11} {'pts/CPU-h':>9} "
            f"{'peak MB':>8}")
    lines = [head, "-" * len(head)]
    for label, other in (("(teacher)", teacher), ("(untrained)", baseline)):
        if other:
            lo, hi = other["ci95"]
            lines.append(f"{label:<14} {'-':>5} {other['accuracy']:>8.3f} {f'[{lo:.3f}, {hi:.3f}]':>16} {'-':>36} "
                         f"{'-':>36} {other['tokens_per_answer']:>10.1f} {'-':>14} {'-':>11} {'-':>9} {'-':>8}")
    for r in rows:
        lo, hi = r["ci95"]
        vs_ref = "(reference)" if r["objective"] == ref else _vs(r.get("vs_reference"))
        c = r.get("cost") or {}
        tokens = "n/a" if c.get("student_tokens_trained") is None else f"{c['student_tokens_trained']:.0f}"
        cpu = "n/a" if c.get("train_cpu_seconds") is None else f"{c['train_cpu_seconds']:.0f}"
        pts = "-" if r.get("points_per_cpu_hour") is None else f"{r['points_per_cpu_hour']:+.1f}"
        lines.append(f"{r['objective']:<14} {r.get('seeds', 1):>5} {r['accuracy']:>8.3f} {f'[{lo:.3f}, {hi:.3f}]':>16} "
                     f"{vs_ref:>36} {_vs(r.get('vs_untrained')):>36} {r['tokens_per_answer']:>10.1f} "
                     f"{tokens:>14} {cpu:>11} {pts:>9} {r['peak_rss_mb']:>8.0f}")
    for r in rows:
        if r.get("added_as_warm_start_of"):
            lines.append(f"{r['objective']}: added as the SFT start of {', '.join(r['added_as_warm_start_of'])} "
                         "(train.warm_start: sft, the default of on-policy objectives)")
    for r in rows:
        if r.get("paper"):
            d = r["vs_reference"]
            lines.append(f"{r['objective']} vs {d['reference']}: ours {100 * d['delta']:+.1f} points "
                         f"[{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}], paper {r['paper']['delta']:+.1f} "
                         f"({r['paper'].get('source') or 'the seed paper'}): {r['reproduction']}")
    if any(r.get("seeds", 1) > 1 for r in rows):
        lines.append("intervals: t over training seeds (Welch) and held-out problems (paired); verdict: the "
                     "interval of the difference excludes 0 (better/worse) or not (no diff)")
        paired = [r["objective"] for r in rows if (r.get("vs_reference") or {}).get("seeds_paired")]
        if paired:
            lines.append(f"compared with {ref} seed by seed (same data order or parent checkpoint by design): "
                         + ", ".join(paired))
        noisy = [r for r in rows if (r.get("seed_noise") or {}).get("sd") is not None]
        if noisy:
            lines.append("seed noise, points (SD of one seed's accuracy = flips on these problems + training, in "
                         "quadrature; expected max - min of 5 seeds here / on 1000 problems):")
            lines.extend(f"  {r['objective']}: {format_noise(r['seed_noise'])}" for r in noisy)
    return "\n".join(lines)
