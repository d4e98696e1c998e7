"""Preference pairs from verified traces: a correct trace (chosen) against an incorrect one
(rejected) for the same problem, for REDI, DPO and SimPO.

Inputs are the curate stage's ``train.jsonl`` (correct) and ``negatives.jsonl`` (incorrect),
both :class:`TrainExample` with ``meta.problem_id`` and ``meta.trace_id``. The output is TRL's
conversational preference format, one :class:`PreferenceExample` per line.

Per problem, at most ``max_pairs_per_problem`` pairs are drawn from every (chosen, rejected)
combination in a seeded shuffle, preferring traces not yet used (so two pairs use two different
correct and two different incorrect traces when there are enough) and unhinted chosen traces.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError, InputError
from typing import Any

from ..io import cached_stage, iter_jsonl, write_jsonl
from ..layout import Layout
from ..records import PreferenceExample, TrainExample, from_dict
from .tailored_pairs import tailored_pairs


DEFAULT_PAIRS_PER_PROBLEM = 2

def _by_problem(path: str | Path) -> dict[str, list[tuple[int, TrainExample]]]:
    """``{problem_id: [(line, example), ...]}`` in file order; bad rows are InputErrors naming the line."""
    out: dict[str, list[tuple[int, TrainExample]]] = defaultdict(list)
    for lineno, obj in iter_jsonl(path, allow_empty=True):
        try:
            ex = from_dict(TrainExample, obj)
        except TypeError as e:
            raise InputError(f"not a valid TrainExample record ({e})", file=path, line=lineno) from None
        for key in ("problem_id", "trace_id"):
            if not isinstance(ex.meta.get(key), str):
                raise InputError(f"meta.{key} is missing (re-run curate)", file=path, line=lineno, field="meta")
        if not ex.completion or not ex.completion[-1].get("content", "").strip():
            raise InputError("empty completion", file=path, line=lineno, field="completion")
        out[ex.meta["problem_id"]].append((lineno, ex))
    return out


def _pick(chosen: list[TrainExample], rejected: list[TrainExample], k: int,
          rng: random.Random) -> list[tuple[TrainExample, TrainExample]]:
    combos = [(c, r) for c in chosen for r in rejected]
    rng.shuffle(combos)
    picked: list[tuple[TrainExample, TrainExample]] = []
    used_c: set[str] = set()
    used_r: set[str] = set()
    while combos and len(picked) < k:
        # min() keeps the shuffled order among ties
        best = min(combos, key=lambda cr: (cr[0].meta["trace_id"] in used_c, cr[1].meta["trace_id"] in used_r,
                                           bool(cr[0].meta.get("hinted"))))
        combos.remove(best)
        picked.append(best)
        used_c.add(best[0].meta["trace_id"])
        used_r.add(best[1].meta["trace_id"])
    return picked


def build_pairs(train_path: str | Path, negatives_path: str | Path, out_path: str | Path, *,
                max_pairs_per_problem: int = DEFAULT_PAIRS_PER_PROBLEM, seed: int = 0,
                extra: Sequence[PreferenceExample] = ()) -> dict[str, int]:
    """Write ``out_path`` (JSONL of :class:`PreferenceExample`) atomically; return counts. ``extra``
    pairs (tailored learning's) follow the ones built here."""
    if max_pairs_per_problem < 1:
        raise ConfigError("max_pairs_per_problem must be >= 1")
    positives = _by_problem(train_path)
    negatives = _by_problem(negatives_path)
    pairs: list[PreferenceExample] = []
    skipped_no_negative = 0
    for pid, pos in positives.items():
        neg = negatives.get(pid, [])
        if not neg:
            skipped_no_negative += 1
            continue
        prompt = pos[0][1].prompt
        for lineno, ex in neg:
            if ex.prompt != prompt:
                raise InputError(f"prompt differs from the correct traces' prompt for problem {pid!r} in "
                                 f"{train_path}; build both files with the same curate run",
                                 file=negatives_path, line=lineno, field="prompt")
        rng = random.Random(f"{seed}:{pid}")  # per problem: adding a problem never reshuffles the others
        for c, r in _pick([e for _, e in pos], [e for _, e in neg], max_pairs_per_problem, rng):
            pairs.append(PreferenceExample(
                prompt=prompt, chosen=c.completion, rejected=r.completion,
                meta={"problem_id": pid, "chosen_trace_id": c.meta["trace_id"],
                      "rejected_trace_id": r.meta["trace_id"]}))
    pairs += extra
    counts = {
        "problems": len(positives),
        "pairs": len(pairs),
        "problems_with_pairs": len({p.meta["problem_id"] for p in pairs}),
        "skipped_no_negative": skipped_no_negative,
        "negatives": sum(map(len, negatives.values())),
        "negatives_without_positive": sum(len(v) for k, v in negatives.items() if k not in positives),
    }
    if extra:
        counts["tailored_pairs"] = len(extra)
    if not pairs:
        if not counts["negatives"]:
            raise ConfigError(
                f"no negatives available in {negatives_path}: REDI/DPO/SimPO need incorrect traces; generate "
                "more samples per problem (generate.samples), sample at a higher temperature, or use a weaker "
                "teacher, or train with SFT instead")
        raise ConfigError(
            f"no problem has both a correct trace in {train_path} and an incorrect one in {negatives_path} "
            f"({counts['negatives']} negatives, all for problems without a kept correct trace); REDI/DPO/SimPO "
            "need both; generate more samples per problem or train with SFT instead")
    write_jsonl(out_path, pairs)
    return counts


def run(recipe: Any, layout: Layout) -> dict:
    """The pairs step over a run folder (run only for objectives that train on pairs): curated
    correct traces against the negatives, seeded by ``train.seed``."""
    out = layout.pairs
    config: dict[str, Any] = {"max_pairs_per_problem": DEFAULT_PAIRS_PER_PROBLEM, "seed": recipe.train.seed}
    inputs = [layout.curated, layout.negatives]
    tailored = recipe.generate.tailored  # plus (student wrong, teacher corrected) pairs
    if tailored:
        config["tailored"] = True
        inputs.append(layout.student_traces)

    def body() -> dict:
        extra = tailored_pairs(layout.curated, layout.student_traces) if tailored else []
        counts = build_pairs(layout.curated, layout.negatives, out, seed=recipe.train.seed, extra=extra)
        return {"files": [out.name], "counts": counts}

    return cached_stage(out.parent, stage="pairs", config=config, inputs=inputs, body=body)
