"""More held-out problems for a finished run: the recipe's task drawn with another ``problems.seed``
(a disjoint reasoning-gym item stream), minus every prompt the run already trains or evaluates on
(short chain_sum prompts recur across streams). A seed spread measured on 300 problems carries their
per-problem flips; scoring the same checkpoints on 1000 more says how much of it is training noise.

    python benchmarks/stability/more_heldout.py runs/spread-curation --seed 2 --n 1000 --out runs/heldout1000/eval.jsonl
    reasondistill evaluate --recipe curation --model runs/spread-curation/compare/entries/all-correct/seed-1/train/model \\
        --problems runs/heldout1000/eval.jsonl --out runs/heldout1000/curation-seed-1
    python benchmarks/stability/spread_parts.py runs/heldout1000/curation-seed-*
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from reasondistill import io
from reasondistill.config import load_recipe
from reasondistill.problems.reasoning_gym import load


def run_prompts(run: Path) -> set[str]:
    return {json.loads(line)["prompt"] for name in ("train.jsonl", "eval.jsonl")
            for line in (run / "problems" / name).open()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a finished run or compare folder (recipe.yaml, problems/)")
    ap.add_argument("--seed", type=int, required=True, help="problems.seed of the new stream (not the run's)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    recipe = load_recipe(args.run / "recipe.yaml")
    if recipe.problems.source != "reasoning_gym":
        ap.error(f"{args.run}: problems.source is {recipe.problems.source!r}; only reasoning-gym tasks draw new streams")
    if args.seed == recipe.problems.seed:
        ap.error(f"--seed {args.seed} is the run's own problems.seed: its held-out problems are already scored")
    seen = run_prompts(args.run)
    cfg = dataclasses.replace(recipe.problems, seed=args.seed, n_train=0, n_eval=args.n + len(seen))
    drawn = load(cfg).eval
    fresh = [p for p in drawn if p.prompt not in seen][:args.n]
    if len(fresh) < args.n:
        raise SystemExit(f"only {len(fresh)} prompts not in {args.run} among {len(drawn)} drawn")
    io.write_jsonl(args.out, fresh)
    print(f"{args.out}: {len(fresh)} problems; {sum(p.prompt in seen for p in drawn)} of {len(drawn)} drawn "
          f"were the run's own prompts")


if __name__ == "__main__":
    main()
