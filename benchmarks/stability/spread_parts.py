"""How much of a seed spread is per-problem flips a larger held-out set would average out, and how much
is training noise that no held-out set removes.

Each seed's accuracy is the mean of its greedy passes ``x[s][i]`` on the same problems. Taking a
problem's pass rate over the seeds ``p[i]`` as its chance, the flips alone give the per-seed accuracy a
variance of ``sum p(1-p) / n^2`` (times ``S/(S-1)``, the unbiased form); what the observed variance
has beyond that is the training noise of the accuracy on the whole problem distribution. Both taken as
normal give the expected range (max - min) of five seeds at other held-out sizes. The arithmetic is
``reasondistill.seed_stats.seed_noise``, which ``compare`` also reports per entry (``seed_noise``).

    python benchmarks/stability/spread_parts.py runs/x/compare/entries/sft/eval runs/x/compare/entries/sft/seed-*/eval
    python benchmarks/stability/spread_parts.py runs/x        # a compare run: every entry with 2+ seeds
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reasondistill.compare import greedy_scores
from reasondistill.seed_stats import on_shared, seed_noise


def entry_seeds(run: Path) -> dict[str, list[Path]]:
    """``{entry: its seeds' evaluation folders}`` of a compare run folder, for entries with 2+ seeds."""
    found = {}
    for entry in sorted((run / "compare" / "entries").iterdir()):
        dirs = [d for d in [entry / "eval", *sorted(entry.glob("seed-*/eval"))] if d.is_dir()]
        if len(dirs) >= 2:
            found[entry.name] = dirs
    return found


def report(eval_dirs: list[Path]) -> None:
    ids, per_seed = on_shared([greedy_scores(d) for d in eval_dirs])
    if not ids:
        raise SystemExit("the evaluations share no problem")
    acc = [sum(row) / len(ids) for row in per_seed]
    noise = seed_noise(per_seed)
    print(f"seeds {len(acc)}, per-seed accuracy % {[round(100 * a, 1) for a in acc]}, "
          f"range {100 * (max(acc) - min(acc)):.1f} points")
    print(f"problems the seeds disagree on: {noise.n_disagree} of {noise.n_problems}")
    print(f"SD of per-seed accuracy {100 * noise.sd:.2f} points = flips {100 * noise.sd_flips:.2f} "
          f"+ training {100 * noise.sd_training:.2f} (in quadrature)")
    for m in sorted({noise.n_problems, 1000, 3000}):
        print(f"expected range of 5 seeds on {m} held-out problems: {100 * noise.expected_spread(5, m):.1f} points")


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
