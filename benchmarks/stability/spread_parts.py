"""How much of a seed spread is per-problem flips a larger held-out set would average out, and how much
is training noise that no held-out set removes.

Each seed's accuracy is the mean of its greedy passes ``x[s][i]`` on the same problems. Taking a
problem's pass rate over the seeds ``p[i]`` as its chance, the flips alone give the per-seed accuracy a
variance of ``sum p(1-p) / n^2`` (times ``S/(S-1)``, the unbiased form); what the observed variance
has beyond that is the training noise of the accuracy on the whole problem distribution. A small
simulation then gives the expected range (max - min) of five seeds at other held-out sizes.

    python benchmarks/stability/spread_parts.py runs/x/compare/entries/sft/eval runs/x/compare/entries/sft/seed-*/eval
    python benchmarks/stability/spread_parts.py runs/x        # a compare run: every entry with 2+ seeds
"""

from __future__ import annotations

import argparse
import random
import statistics
from pathlib import Path

from reasondistill.compare import greedy_scores


def split(per_seed: list[dict[str, float]]) -> tuple[list[float], float, float, int, int]:
    """Per-seed accuracies, the flip variance per problem, the training variance, the problems the seeds
    disagree on, and the problems every seed answered."""
    ids = sorted(set.intersection(*(set(p) for p in per_seed)))
    x = [[p[i] for i in ids] for p in per_seed]
    s, n = len(x), len(ids)
    acc = [sum(row) / n for row in x]
    rate = [sum(x[k][i] for k in range(s)) / s for i in range(n)]
    flips = sum(p * (1 - p) for p in rate) / n ** 2 * s / (s - 1)
    training = max(0.0, statistics.variance(acc) - flips)
    return acc, flips * n, training, sum(0 < p < 1 for p in rate), n


def expected_range(sd_training: float, flip_var_per_problem: float, n_eval: int, seeds: int = 5,
                   reps: int = 4000) -> float:
    rng = random.Random(0)
    ranges = []
    for _ in range(reps):
        accs = [rng.gauss(0, sd_training) + rng.gauss(0, (flip_var_per_problem / n_eval) ** 0.5)
                for _ in range(seeds)]
        ranges.append(max(accs) - min(accs))
    return statistics.mean(ranges)


def entry_seeds(run: Path) -> dict[str, list[Path]]:
    """``{entry: its seeds' evaluation folders}`` of a compare run folder, for entries with 2+ seeds."""
    found = {}
    for entry in sorted((run / "compare" / "entries").iterdir()):
        dirs = [d for d in [entry / "eval", *sorted(entry.glob("seed-*/eval"))] if d.is_dir()]
        if len(dirs) >= 2:
            found[entry.name] = dirs
    return found


def report(eval_dirs: list[Path]) -> None:
    acc, flip_n, training, disagree, n = split([greedy_scores(d) for d in eval_dirs])
    sd_obs = statistics.stdev(acc)
    print(f"seeds {len(acc)}, per-seed accuracy % {[round(100 * a, 1) for a in acc]}, "
          f"range {100 * (max(acc) - min(acc)):.1f} points")
    print(f"problems the seeds disagree on: {disagree} of {n}")
    print(f"SD of per-seed accuracy {100 * sd_obs:.2f} points = flips {100 * (flip_n / n) ** 0.5:.2f} "
          f"+ training {100 * training ** 0.5:.2f} (in quadrature)")
    for m in sorted({n, 1000, 3000}):
        print(f"expected range of 5 seeds on {m} held-out problems: "
              f"{100 * expected_range(training ** 0.5, flip_n, m):.1f} points")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", help="one evaluation folder per training seed (2 or more), or one "
                                            "compare run folder")
    args = ap.parse_args()
    paths = [Path(p) for p in args.paths]
    if len(paths) == 1 and (paths[0] / "compare" / "entries").is_dir():
        entries = entry_seeds(paths[0])
        if not entries:
            ap.error(f"{paths[0]}: no compare entry has two or more seeds' evaluations")
        for name, dirs in entries.items():
            print(f"== {name}")
            report(dirs)
        return
    if len(paths) < 2:
        ap.error("give at least two seeds' evaluation folders, or one compare run folder")
    report(paths)


if __name__ == "__main__":
    main()
