"""``reasondistill evaluate --compare A B``: two scores side by side, only when they were measured alike.

Each side is an evaluation folder (or its ``summary.json``). Both scores are shown with their
intervals, and the difference B - A with a paired bootstrap interval over the problems both
answered (from ``samples.jsonl``; without it, an unpaired normal interval). The comparison is
refused (:class:`SettingsDiffer`) when any recorded setting other than the model itself differs
(:func:`.settings.differences`), naming each one with both values, unless those settings are
allowed to differ (``--allow-different KEY|GROUP ...``) or the check is overridden (``--force``).

Each side may also be several evaluations of one recipe trained with different seeds
(``--compare A1 A2 A3 vs B1 B2 B3``): every folder is checked against the first, each side is the
mean over its seeds, and B - A gets the interval over training seeds and problems of
:mod:`reasondistill.seed_stats` with a verdict (better, worse, no detectable difference).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import io, metrics
from ..errors import ConfigError, InputError
from ..layout import EVAL_FILES
from ..records import EvalSample, EvalSummary
from . import settings

MISSING = "<missing>"


class SettingsDiffer(ConfigError):
    """Two scores were measured under different settings; the message lists them."""


@dataclass(frozen=True, slots=True)
class ScoredEval:
    """One side of a comparison: where it was read from, its summary and (when present) samples."""

    path: Path
    summary: EvalSummary
    samples: list[EvalSample] | None

    @property
    def settings(self) -> dict[str, Any]:
        return self.summary.extra.get("settings") or {}


def load(path: str | Path) -> ScoredEval:
    """An evaluation folder or a ``summary.json`` (``samples.jsonl`` beside it is used if present)."""
    path = Path(path)
    summary_path = path / EVAL_FILES["summary"] if path.is_dir() else path
    if not summary_path.is_file():
        raise InputError(f"no {EVAL_FILES['summary']} here (give an evaluation folder or its summary.json)",
                         file=path)
    summary = io.read_summary(summary_path)
    samples_path = summary_path.with_name(EVAL_FILES["samples"])
    samples = io.read_records(samples_path, EvalSample) if samples_path.is_file() else None
    return ScoredEval(summary_path.parent, summary, samples)


def _show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) or value == MISSING else repr(value)


def check(a: ScoredEval, b: ScoredEval, *, allow: list[str] | tuple[str, ...] = (),
          force: bool = False) -> list[tuple[str, Any, Any]]:
    """The settings that differ (and are not allowed to); raises :class:`SettingsDiffer` naming
    them unless ``force``. An ``allow`` name that is no recorded setting is an error (a typo would
    otherwise silently allow nothing)."""
    known = settings.known_keys(a.settings, b.settings)
    unknown = [x for x in allow if x not in known]
    if unknown:
        groups = sorted(k for k in known if "." not in k)
        raise ConfigError(f"--allow-different: no recorded setting named {', '.join(unknown)} "
                          f"(settings are dotted keys such as sampling.temperature, or groups: {', '.join(groups)})")
    bare = [f"{side} ({e.path})" for side, e in (("A", a), ("B", b)) if not e.settings]
    if bare and not force:
        raise SettingsDiffer(f"refusing to compare: {' and '.join(bare)} record(s) no settings (evaluated before "
                             "settings were recorded), so nothing says they were measured alike; re-run that "
                             "evaluation, or pass --force to compare anyway")
    diffs = settings.differences(a.settings, b.settings, allow)
    if diffs and not force:
        lines = [f"  {key}: A = {_show(va)}, B = {_show(vb)}" for key, va, vb in diffs]
        raise SettingsDiffer(
            f"refusing to compare {a.path} (A) with {b.path} (B): {len(diffs)} setting(s) differ besides the "
            "model:\n" + "\n".join(lines) + "\nre-evaluate one of them under the other's settings, or pass "
            "--allow-different " + " ".join(k for k, *_ in diffs) +
            " (or --force) to compare anyway")
    return diffs


def difference(a: ScoredEval, b: ScoredEval) -> dict[str, Any]:
    """Greedy accuracy of B minus A: paired bootstrap over shared problems when both have samples,
    else an unpaired normal interval from the two accuracies."""
    if a.samples is not None and b.samples is not None:
        d = metrics.paired_bootstrap(b.samples, a.samples)
        return {**d, "paired": True}
    pa, pb = float(a.summary.accuracy), float(b.summary.accuracy)
    na, nb = int(a.summary.n or 0), int(b.summary.n or 0)
    delta = pb - pa
    if not na or not nb:
        return {"value": delta, "ci95": None, "n": min(na, nb), "method": "unpaired", "paired": False}
    half = 1.96 * math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
    return {"value": delta, "ci95": [delta - half, delta + half], "n": min(na, nb),
            "method": "unpaired normal (no samples.jsonl on one side)", "paired": False}


def compare(path_a: str | Path, path_b: str | Path, *, allow: list[str] | tuple[str, ...] = (),
            force: bool = False) -> dict[str, Any]:
    """Both scores and B - A, after the settings check (see the module docstring)."""
    a, b = load(path_a), load(path_b)
    diffs = check(a, b, allow=allow, force=force)

    def side(e: ScoredEval) -> dict[str, Any]:
        return {"path": str(e.path), "model": e.summary.model or None, "accuracy": e.summary.accuracy,
                "ci95": e.summary.ci95, "n": e.summary.n,
                "identity": (e.settings.get("model") or {}).get("identity")}

    return {"a": side(a), "b": side(b), "difference": difference(a, b),
            "settings_differ": [{"setting": k, "a": va, "b": vb} for k, va, vb in diffs],
            "allowed": list(allow), "forced": bool(force and diffs)}


def compare_seeds(paths_a: list[str | Path], paths_b: list[str | Path], *, allow: list[str] | tuple[str, ...] = (),
                  force: bool = False, paired: bool = False) -> dict[str, Any]:
    """Each side the mean over its seed evaluations, and B - A with the seed-aware interval and a
    verdict (see the module docstring); ``paired``: seed i of A against seed i of B. Every folder's
    settings are checked against A's first."""
    from .. import seed_stats

    if paired and (len(paths_a) != len(paths_b) or len(paths_a) < 2):
        raise ConfigError(f"--paired-seeds needs as many seeds on each side, at least 2 (got {len(paths_a)} vs "
                          f"{len(paths_b)})")
    a, b = [load(p) for p in paths_a], [load(p) for p in paths_b]
    first = a[0]
    diffs: dict[str, tuple[Any, Any]] = {}
    for other in a[1:] + b:
        for key, va, vb in check(first, other, allow=allow, force=force):
            diffs.setdefault(key, (va, vb))
    if missing := [str(e.path) for e in a + b if e.samples is None]:
        raise InputError(f"a comparison over seeds needs each evaluation's {EVAL_FILES['samples']} (per-problem "
                         "answers); missing in: " + ", ".join(missing), file=missing[0])
    scores = [{s.problem_id: float(s.passed) for s in e.samples if s.sample_idx == 0} for e in a + b]
    shared, rows = seed_stats.on_shared(scores)
    if not shared:
        raise InputError("the evaluations share no problem", file=first.path)
    ra, rb = rows[: len(a)], rows[len(a):]

    def side(evals: list[ScoredEval], arm: list[list[float]]) -> dict[str, Any]:
        iv = seed_stats.interval(arm)
        return {"paths": [str(e.path) for e in evals], "model": evals[0].summary.model or None,
                "accuracy": iv.value, "ci95": [iv.lo, iv.hi], "n": len(shared), "per_seed": list(iv.per_seed[0]),
                "seeds": len(evals), **({"seed_noise": seed_stats.seed_noise(arm).to_dict()} if len(arm) > 1 else {})}

    iv = seed_stats.interval(rb, ra, paired=paired)
    difference = {**iv.to_dict(), "n": len(shared), "verdict": seed_stats.verdict(iv)}
    return {"a": side(a, ra), "b": side(b, rb), "difference": difference,
            "settings_differ": [{"setting": k, "a": va, "b": vb} for k, (va, vb) in diffs.items()],
            "allowed": list(allow), "forced": bool(force and diffs)}


def format_result(result: dict[str, Any]) -> str:
    """The comparison as a few lines for a terminal."""
    from ..seed_stats import format_noise

    def pct(x: Any) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    lines = []
    for label in ("a", "b"):
        s = result[label]
        ci = s.get("ci95") or [None, None]
        where = s["path"] if "path" in s else f"{s['seeds']} seeds: {', '.join(s['paths'])}"
        per_seed = f", per seed {', '.join(pct(x) for x in s['per_seed'])}" if "per_seed" in s else ""
        lines.append(f"{label.upper()}  {where}  ({s.get('model')}): accuracy {pct(s['accuracy'])} "
                     f"[{pct(ci[0])}, {pct(ci[1])}], n = {s.get('n')}{per_seed}")
    for label in ("a", "b"):
        if noise := result[label].get("seed_noise"):
            lines.append(f"{label.upper()} seed noise, points: {format_noise(noise)} (SD of one seed's accuracy = "
                         "flips + training; expected max - min of 5 seeds here / on 1000 problems)")
    d = result["difference"]
    ci = d.get("ci95")
    if "verdict" in d:
        how = f"{d['method']}; {d['n']} shared problems; {d['verdict']}"
    else:
        how = (f"paired bootstrap over {d['n']} shared problems; B won {d['wins']}, lost {d['losses']}"
               if d.get("paired") else d.get("method", ""))
    value = "n/a" if d.get("value") is None else f"{100 * d['value']:+.1f} pts"
    interval = "" if not ci else f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"
    lines.append(f"B - A: {value}{interval} ({how})")
    if result["settings_differ"]:
        lines.append(("compared anyway (--force); " if result["forced"] else "") + "settings that differ: " +
                     "; ".join(f"{x['setting']}: A = {_show(x['a'])}, B = {_show(x['b'])}"
                               for x in result["settings_differ"]))
    else:
        allowed = f" and {', '.join(result['allowed'])} (allowed)" if result["allowed"] else ""
        lines.append(f"settings: the same except the model{allowed}")
    return "\n".join(lines)
