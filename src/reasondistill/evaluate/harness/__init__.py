"""Run a model through an external evaluation harness over a problem set on disk, and grade
the harness's own generations with our verifier as well.

``HARNESSES`` maps a harness name to its adapter (``task.HarnessAdapter``); adding one is a
file plus a row. :func:`run` exports the model to a self-contained folder when it is not one
yet, writes the problems and the harness's task definition, runs the harness offline, and
writes ``result.json`` with the harness's exact version and both scores side by side.
"""

from __future__ import annotations

import time
from pathlib import Path

from ... import device, models, registry
from ...config import EvalConfig, PromptConfig, VerifyConfig
from ...errors import ConfigError
from ...records import Problem
from .export import export, is_self_contained
from .task import DATA_FILE, HarnessResult, regrade, write_dataset, write_result

HARNESSES = {
    "lm-eval": "reasondistill.evaluate.harness.lmeval:ADAPTER",
    "lighteval": "reasondistill.evaluate.harness.lighteval:ADAPTER",  # from its own venv (see its docstring)
}

__all__ = ["HARNESSES", "run", "export"]


def run(harness: str, model: str | Path, problems: list[Problem], out: str | Path, *,
        eval_cfg: EvalConfig | None = None, verify_cfg: VerifyConfig | None = None,
        prompt_cfg: PromptConfig | None = None) -> HarnessResult:
    """Evaluate ``model`` (an exported folder, model folder, run folder, ``.gguf`` or packaged
    name) on the first ``eval_cfg.n`` of ``problems`` with ``harness``; writes into ``out``."""
    adapter = registry.lookup(HARNESSES, harness, "harness")
    version = adapter.version()
    eval_cfg = eval_cfg or EvalConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    problems = problems[: eval_cfg.n] if eval_cfg.n else problems
    if not problems:
        raise ConfigError("no problems to evaluate")
    start = time.perf_counter()
    exported = not is_self_contained(model)
    model_dir = Path(export(model, out / "model").path) if exported else Path(model)
    task_prefix = models.task_prefixes(model_dir).get(eval_cfg.task)
    data = write_dataset(problems, out / DATA_FILE, prompt_cfg, task_prefix)
    task_dir = adapter.write_task(data, out, eval_cfg.max_new_tokens)
    where = device.pick_device(eval_cfg.device)
    raw = adapter.run(model_dir, task_dir, out, device=where, dtype=device.resolve_dtype(eval_cfg.dtype, where)[0],
                      batch_size=eval_cfg.batch_size)
    score, rows = adapter.parse(raw)
    both, ours = regrade({p.id: p for p in problems}, rows, Path(model).name or str(model), verify_cfg)
    return write_result(out, harness=adapter.name, version=version, model=str(model_dir), metric=adapter.metric,
                        harness_score=score, both=both, ours=ours, max_new_tokens=eval_cfg.max_new_tokens,
                        files=[DATA_FILE, task_dir.name, raw.name, *(["model"] if exported else [])],
                        wall_seconds=time.perf_counter() - start)
