"""Ctrl-C (SIGINT) and SIGTERM while any stage of ``reasondistill run`` works: a non-zero exit
(130 / 143), the resume hint on stderr, no traceback, that stage not marked finished, the
earlier stages untouched, and a re-run that finishes the run."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from reasondistill import pipeline
from reasondistill.config import to_dict
from reasondistill.layout import Layout

from .test_e2e_pipeline import tiny_recipe

# runs `reasondistill run` with every stage body of STAGE held for a minute once it starts
HOLD = """
import sys, time
from reasondistill import io
real = io.cached_stage
def held(out_dir, *, stage, body, **kw):
    def slow():
        if stage == sys.argv[1]:
            print("STAGE-STARTED", flush=True)
            time.sleep(60)
        return body()
    return real(out_dir, stage=stage, body=slow, **kw)
io.cached_stage = held
from reasondistill.cli import main
sys.exit(main(sys.argv[2:]))
"""
# the stage names cached_stage is called with (evaluation writes one manifest per model)
STAGES = {"problems": "problems", "generate": "generate", "verify": "verify", "curate": "curate", "train": "train",
          "evaluate": "evaluate"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("signals")
    recipe = tiny_recipe(tiny_model_dir, root / "cache")
    recipe.eval.models = ["student_after"]
    recipe.eval.samples = 0
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(to_dict(recipe)))
    pipeline.run(recipe, root / "run")
    return recipe, path, root / "run"


def manifests(recipe, out):
    layout = Layout(out)
    return {s.name: [m for m in s.manifests(recipe, layout) if m.exists()] for s in pipeline.STAGES}


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("stage", list(STAGES))
def test_signal_in_each_stage_leaves_a_resumable_run(stage, sig, code, finished, tmp_path):
    recipe, path, done = finished
    out = tmp_path / "run"
    shutil.copytree(done, out)
    before = {p.name: p.read_bytes() for p in (out / "problems").glob("*.jsonl")} if stage != "problems" else {}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, STAGES[stage], "run", str(path), "--out", str(out),
                             "--from", stage], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    line = ""
    while time.time() < deadline and "STAGE-STARTED" not in line:
        line = proc.stdout.readline()
        assert line or proc.poll() is None, proc.stderr.read()[-2000:]
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr[-2000:]
    assert "resume" in stderr and "Traceback" not in stderr, stderr[-2000:]
    left = manifests(recipe, out)
    assert left[stage] == [], f"{stage} was marked finished"
    later = pipeline.STAGE_NAMES[pipeline.STAGE_NAMES.index(stage):]
    assert all(left[s] == [] for s in later if s != "report" and s != "pairs")
    if before:
        assert {p.name: p.read_bytes() for p in (out / "problems").glob("*.jsonl")} == before
    if sig == signal.SIGTERM:  # the same command, uninterrupted, finishes the run
        report = pipeline.run(recipe, out)
        assert report["student_after"]["n"] == 8
        assert json.loads((out / "report.json").read_text())["student_after"] == report["student_after"]


def test_sigterm_to_compare_alone_stops_the_entry_it_trains(tmp_path, tiny_model_dir):
    """A scheduler's SIGTERM often reaches the main process only. `compare` trains each entry in a
    child process; the child must stop with it, not train on unseen while the parent waits for it."""
    import psutil

    recipe = tiny_recipe(tiny_model_dir, tmp_path / "cache")
    recipe.eval.models = ["student_after"]
    cfg = to_dict(recipe)
    cfg["compare"] = {"max_steps": 100000, "baseline": False, "entries": [{"name": "sft", "method": "sft"}]}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen([sys.executable, "-m", "reasondistill", "compare", str(path), "--out", str(tmp_path / "run")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline, child = time.time() + 180, None
    while time.time() < deadline and child is None:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        kids = [c for c in psutil.Process(proc.pid).children() if "multiprocessing.spawn" in " ".join(c.cmdline())
                and "resource_tracker" not in " ".join(c.cmdline())]
        child = kids[0] if kids else None
        time.sleep(0.5)
    assert child is not None, "no entry child appeared"
    time.sleep(3)  # into its imports or its training
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 143, stderr[-2000:]
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    assert "resume" in stderr
