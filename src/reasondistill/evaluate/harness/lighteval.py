"""lighteval over a problem set on disk, run from its own Python environment.

lighteval 0.13.0 pins ``latex2sympy2_extended==1.0.6`` while math-verify, which our verifier
uses, pins 1.11.0, so pip cannot install it beside reasondistill. It runs instead from a
separate environment (``REASONDISTILL_LIGHTEVAL_PYTHON``: a venv made with
``--system-site-packages`` so it reuses our torch and transformers; see the README), in a child
process with the hub and datasets offline. Only the child imports lighteval; this side writes
the custom task module and reads back what the child wrote.

The task is a custom task module: the problems as a local ``test.jsonl`` dataset folder, the
prompt as the user turn of the model's chat template, greedy decoding, and lighteval's own
``expr_gold_metric`` (its answer extraction and math equivalence) against the gold answer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ...errors import ConfigError, ServiceError
from .task import timed_out, TASK_NAME, HarnessAdapter, RawSample

NAME = "lighteval"
PYTHON_ENV = "REASONDISTILL_LIGHTEVAL_PYTHON"
TASK_DIR = "lighteval_task"
TASK_MODULE = "reasondistill_task.py"
RAW_FILE = "lighteval_output.json"
METRIC = "extractive_match"

# the custom task module lighteval imports; {data_dir} and {max_new_tokens} are filled in as JSON
_MODULE = '''"""reasondistill's problem set as a lighteval custom task (written by reasondistill)."""
from lighteval.metrics.metrics import Metrics
from lighteval.tasks.lighteval_task import LightevalTaskConfig
from lighteval.tasks.requests import Doc


def prompt(line, task_name=None):
    # lighteval numbers docs itself (Doc.id), so the problem id travels in `specific`
    return Doc(task_name=task_name, query=line["question"], choices=[line["answer"]], gold_index=0,
               specific={"problem_id": line["id"]})


TASKS_TABLE = [LightevalTaskConfig(
    name={name}, prompt_function=prompt, hf_repo={data_dir}, hf_subset="default", hf_avail_splits=["test"],
    evaluation_splits=["test"], few_shots_split=None, few_shots_select=None, generation_size={max_new_tokens},
    stop_sequence=[], metrics=[Metrics.expr_gold_metric], version=0)]
'''


VERSION_TIMEOUT_S = 120


def python() -> str:
    """The interpreter that has lighteval: ``$REASONDISTILL_LIGHTEVAL_PYTHON``, else this one."""
    return os.environ.get(PYTHON_ENV) or sys.executable


def version() -> str:
    """lighteval's exact version in its environment."""
    code = "import importlib.metadata as m; print(m.version('lighteval'))"
    try:  # a broken interpreter at REASONDISTILL_LIGHTEVAL_PYTHON must not hang the command
        proc = subprocess.run([python(), "-c", code], capture_output=True, text=True, timeout=VERSION_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ServiceError(f"--harness lighteval: {python()} did not say lighteval's version within "
                           f"{VERSION_TIMEOUT_S} s (check {PYTHON_ENV})") from None
    if proc.returncode != 0:
        raise ConfigError(f"--harness lighteval: lighteval is not installed for {python()}; it cannot be installed "
                          f"beside reasondistill (it pins latex2sympy2_extended==1.0.6, math-verify pins 1.11.0), so "
                          f"install it in its own venv and point {PYTHON_ENV} at that venv's python (README)")
    return proc.stdout.strip()


def write_task(data_file: str | Path, out: str | Path, max_new_tokens: int) -> Path:
    """Write ``out/lighteval_task/``: the custom task module, ``data/test.jsonl``, and the
    generation length the model is run with (``generation.json``)."""
    folder = Path(out) / TASK_DIR
    (folder / "data").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data_file, folder / "data" / "test.jsonl")
    fill = {"{name}": json.dumps(TASK_NAME), "{data_dir}": json.dumps(str((folder / "data").resolve())),
            "{max_new_tokens}": str(int(max_new_tokens))}
    module = _MODULE
    for key, value in fill.items():
        module = module.replace(key, value)
    (folder / TASK_MODULE).write_text(module, encoding="utf-8")
    (folder / "generation.json").write_text(json.dumps({"max_new_tokens": int(max_new_tokens)}), encoding="utf-8")
    return folder


def run_harness(model_dir: str | Path, task_dir: Path, out: Path, *, device: str, dtype: str, batch_size: int,
                timeout_s: float | None = None) -> Path:
    """Run lighteval in a child process of its own interpreter (offline); returns the JSON it wrote."""
    generation = json.loads((task_dir / "generation.json").read_text(encoding="utf-8"))
    spec = {"model_dir": str(Path(model_dir).resolve()), "task_module": str((task_dir / TASK_MODULE).resolve()),
            "device": device, "dtype": dtype, "batch_size": batch_size, "max_new_tokens": generation["max_new_tokens"],
            "out": str((out / RAW_FILE).resolve()), "details_dir": str((out / "lighteval_details").resolve())}
    src = str(Path(__file__).resolve().parents[3])  # so the child finds this module whatever its site-packages
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_CACHE": str((out / "hf_datasets_cache").resolve()), "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    try:
        proc = subprocess.run([python(), "-m", __name__, json.dumps(spec)], env=env, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise timed_out("lighteval", e, out / "lighteval.log") from None
    shutil.rmtree(out / "hf_datasets_cache", ignore_errors=True)
    (out / "lighteval.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"lighteval failed (exit {proc.returncode}): {tail[0][:300]}; "
                          f"full log: {out / 'lighteval.log'}")
    return out / RAW_FILE


def parse(raw_file: str | Path) -> tuple[float, list[RawSample]]:
    """lighteval's score and ``(problem_id, generation, None, score)`` per sample (lighteval
    does not report what it extracted)."""
    data = json.loads(Path(raw_file).read_text(encoding="utf-8"))
    task = next((k for k in data["results"] if k.startswith(TASK_NAME)), None)
    if task is None or METRIC not in data["results"][task]:
        raise ConfigError(f"{raw_file}: lighteval reported no {METRIC!r} for {TASK_NAME}")
    order = {pid: i for i, pid in enumerate(data.get("order", []))}
    rows = sorted(((str(s["id"]), s["text"], None, float(s["metric"][METRIC])) for s in data["samples"]),
                  key=lambda r: order.get(r[0], len(order)))
    return float(data["results"][task][METRIC]), rows


def _child(spec: dict[str, Any]) -> None:
    """In lighteval's interpreter: its Pipeline on our task; scores and per-sample details to ``spec['out']``."""
    import importlib.metadata

    from lighteval.logging.evaluation_tracker import EvaluationTracker
    from lighteval.models.model_input import GenerationParameters
    from lighteval.models.transformers.transformers_model import TransformersModelConfig
    from lighteval.pipeline import ParallelismManager, Pipeline, PipelineParameters
    from lighteval.tasks.registry import Registry

    # lighteval imports every built-in task module to build its registry, and one of them
    # (tiny_benchmarks) downloads a file at import time, which fails offline: register ours only
    Registry.load_all_task_configs = staticmethod(
        lambda custom_tasks=None, load_multilingual=False: Registry._extract_configs(
            Registry.create_custom_tasks_module(custom_tasks)))
    tracker = EvaluationTracker(output_dir=spec["details_dir"], save_details=False)
    params = PipelineParameters(launcher_type=ParallelismManager.ACCELERATE, custom_tasks_directory=spec["task_module"])
    model = TransformersModelConfig(model_name=spec["model_dir"], dtype=spec["dtype"], device=spec["device"],
                                    batch_size=spec["batch_size"], trust_remote_code=False,
                                    generation_parameters=GenerationParameters(
                                        temperature=0.0, max_new_tokens=spec["max_new_tokens"]))
    pipeline = Pipeline(tasks=f"{TASK_NAME}|0", pipeline_parameters=params, evaluation_tracker=tracker,
                        model_config=model)
    pipeline.evaluate()
    results = pipeline.get_results()
    samples = []
    for details in pipeline.get_details().values():
        for d in details:
            text = d.model_response.text[0] if d.model_response.text else ""
            samples.append({"id": (d.doc.specific or {}).get("problem_id"), "query": d.doc.query, "text": text,
                            "metric": d.metric})
    with open(Path(spec["task_module"]).parent / "data" / "test.jsonl", encoding="utf-8") as f:
        order = [json.loads(line)["id"] for line in f if line.strip()]  # the problem set's own order
    out = {"version": importlib.metadata.version("lighteval"), "results": results["results"], "samples": samples,
           "order": order}
    Path(spec["out"]).write_text(json.dumps(out, default=str), encoding="utf-8")


ADAPTER = HarnessAdapter(name=NAME, metric=METRIC, write_task=write_task, run=run_harness, parse=parse,
                         version=version)

if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))

