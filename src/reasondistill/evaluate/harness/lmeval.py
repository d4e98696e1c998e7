"""lm-evaluation-harness (``lm_eval``) over a problem set on disk.

The task is a YAML file of our own in a folder handed to lm-eval's ``TaskManager`` as an
include path: ``dataset_path: json`` with ``data_files`` pointing at ``problems.jsonl``, the
prompt as the user turn of the model's chat template, greedy decoding, and lm-eval's own
``exact_match`` over the number after the last ``Answer:``. The harness runs in a child
process with the hub and datasets offline, so nothing can be fetched and a harness crash
cannot take our process with it; the child writes lm-eval's results and per-sample logs as JSON.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from .task import timed_out, ANSWER_REGEX, TASK_NAME, HarnessAdapter, RawSample

NAME = "lm-eval"
DIST = "lm_eval"
TASK_DIR = "lm_eval_task"
RAW_FILE = "lm_eval_output.json"  # lm-eval's results and per-sample logs, as the child got them
METRIC = "exact_match,answer-line"


def task_config(data_file: str | Path, max_new_tokens: int) -> dict[str, Any]:
    """The lm-eval task over ``data_file`` (rows ``{id, question, answer}``)."""
    return {
        "task": TASK_NAME,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(Path(data_file).resolve())}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{question}}",
        "doc_to_target": "{{answer}}",
        "num_fewshot": 0,
        "generation_kwargs": {"until": [], "do_sample": False, "max_gen_toks": int(max_new_tokens)},
        "filter_list": [{"name": "answer-line", "filter": [
            {"function": "regex", "regex_pattern": ANSWER_REGEX, "group_select": -1},
            {"function": "take_first"}]}],
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True,
                         "ignore_case": True, "ignore_punctuation": False,
                         "regexes_to_ignore": [",", "\\$", "\\.$"]}],
        "metadata": {"version": 1.0},
    }


def write_task(data_file: str | Path, out: str | Path, max_new_tokens: int) -> Path:
    """Write the task YAML into ``out/lm_eval_task/`` (the include path); returns that folder."""
    import yaml

    folder = Path(out) / TASK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{TASK_NAME}.yaml").write_text(yaml.safe_dump(task_config(data_file, max_new_tokens),
                                                            sort_keys=False), encoding="utf-8")
    return folder


def run_harness(model_dir: str | Path, task_dir: Path, out: Path, *, device: str,
                dtype: str, batch_size: int, timeout_s: float | None = None) -> Path:
    """Run lm-eval in a child process (offline); returns the JSON file it wrote."""
    spec = {"model_dir": str(Path(model_dir).resolve()), "task_dir": str(task_dir.resolve()),
            "device": device, "dtype": dtype, "batch_size": batch_size, "out": str((out / RAW_FILE).resolve())}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_CACHE": str((out / "hf_datasets_cache").resolve()), "TOKENIZERS_PARALLELISM": "false"}
    try:
        proc = subprocess.run([sys.executable, "-m", __name__, json.dumps(spec)], env=env, capture_output=True,
                              text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise timed_out("lm-eval", e, out / "lm_eval.log") from None
    shutil.rmtree(out / "hf_datasets_cache", ignore_errors=True)  # datasets' copy of problems.jsonl
    (out / "lm_eval.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"lm-eval failed (exit {proc.returncode}): {tail[0][:300]}; full log: {out / 'lm_eval.log'}")
    return out / RAW_FILE


def parse(raw_file: str | Path) -> tuple[float, list[RawSample]]:
    """lm-eval's score and ``(problem_id, generation, extracted, score)`` per sample."""
    data = json.loads(Path(raw_file).read_text(encoding="utf-8"))
    scores = data["results"][TASK_NAME]
    if METRIC not in scores:
        raise ConfigError(f"{raw_file}: lm-eval reported no {METRIC!r} (got {', '.join(sorted(scores))})")
    rows = []
    for s in sorted(data["samples"][TASK_NAME], key=lambda s: s["doc_id"]):
        if s.get("filter") not in (None, "answer-line"):
            continue
        extracted = s["filtered_resps"][0] if s.get("filtered_resps") else None
        rows.append((str(s["doc"]["id"]), s["resps"][0][0], None if extracted == "[invalid]" else extracted,
                     float(s["exact_match"])))
    return float(scores[METRIC]), rows


def evaluate_lm(model: Any, task_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """lm-eval's ``simple_evaluate`` on our task: ``model`` is ``"hf"`` (with ``model_args``) or an
    ``lm_eval.api.model.LM``; returns the JSON-safe part of its output (scores, per-sample logs)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    results = lm_eval.simple_evaluate(model=model, tasks=[TASK_NAME], num_fewshot=0, log_samples=True,
                                      apply_chat_template=True,
                                      task_manager=TaskManager(include_path=str(task_dir), include_defaults=False),
                                      **kwargs)
    keep = {"results": results["results"], "samples": results["samples"], "versions": results.get("versions"),
            "config": {k: v for k, v in results.get("config", {}).items() if isinstance(v, (str, int, float, bool))}}
    return json.loads(json.dumps(keep, default=str))


def _child(spec: dict[str, Any]) -> None:
    """In the child process: the HF model through lm-eval; its output to ``spec['out']``."""
    out = evaluate_lm("hf", spec["task_dir"], batch_size=spec["batch_size"],
                      model_args={"pretrained": spec["model_dir"], "dtype": spec["dtype"], "device": spec["device"],
                                  "trust_remote_code": False})
    Path(spec["out"]).write_text(json.dumps(out), encoding="utf-8")


def version() -> str:
    """lm-eval's exact version, or how to install it."""
    try:
        return importlib.metadata.version(DIST)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError("--harness lm-eval: lm-eval is not installed; "
                          "install it with: pip install 'reasondistill[harness]'") from None


ADAPTER = HarnessAdapter(name=NAME, metric=METRIC, write_task=write_task, run=run_harness, parse=parse,
                         version=version)

if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))

