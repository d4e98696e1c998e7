"""A real OpenAI-compatible server: ``transformers serve`` with the packaged SmolLM2-135M-Instruct
(a local folder, hub off) on 127.0.0.1, driven through the ``openai`` backend. Greedy answers
match the in-process transformers backend token for token; the whole pipeline and
``reasondistill run`` finish with that server as the teacher. Slow (``-m slow``): on 2 shared CPU
cores the server takes ~20 s to start and each test 2-6 minutes; skipped without the ``serve``
extra."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from reasondistill import generate, io, pipeline
from reasondistill.backends.base import Request, SamplingParams
from reasondistill.config import Recipe, build
from reasondistill.records import Problem
from tests.helpers import stage_layout
from tests.transformers_serve import TransformersServe, serve_available

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(serve_available() is not None, reason=str(serve_available()))]


@pytest.fixture(scope="module")
def served(smollm2_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with TransformersServe(smollm2_dir, log) as server:
        yield server


def teacher(served, smollm2_dir, **options):
    return {"backend": "openai", "model": str(smollm2_dir), "batch_size": 4,
            "options": {"base_url": served.base_url, "timeout_s": 120, "concurrency": 2, **options}}


def test_greedy_answers_match_the_in_process_backend(served, smollm2_dir, tmp_path):
    """Generate through the server (chat endpoint, server-side chat template) and in process:
    the same greedy text; the completions endpoint answers too."""
    from reasondistill.backends.openai import OpenAIBackend
    from reasondistill.backends.transformers import TransformersBackend

    problems = tmp_path / "problems.jsonl"
    io.write_jsonl(problems, [Problem(f"p{i}", "t", f"What is {3 + i} + {4 + 2 * i}?", str(7 + 3 * i))
                              for i in range(3)])
    rec = build(Recipe, {"teacher": teacher(served, smollm2_dir),
                         "generate": {"samples": 1, "temperature": 0.0, "max_new_tokens": 24, "rationalize": False,
                                      "cache_dir": str(tmp_path / "cache")}})
    m = generate.run(rec, stage_layout(tmp_path / "gen", "generate", train_problems=problems))
    assert m["outputs"]["n_errors"] == 0 and m["outputs"]["teacher_calls"] == 3
    traces = [o for _, o in io.iter_jsonl(tmp_path / "gen" / "traces.jsonl")]
    assert all(t["raw"].strip() and t["usage"]["completion_tokens"] > 0 and t["usage"]["prompt_tokens"] > 0
               for t in traces)

    local = TransformersBackend(str(smollm2_dir), dtype="float32", device="cpu", batch_size=1)
    probs = io.read_records(problems, Problem)
    reqs = [Request(p, ({"role": "user", "content": p.prompt},), 0) for p in probs]
    greedy = SamplingParams(temperature=0.0, max_new_tokens=24)
    here = [local.complete([r], greedy)[0] for r in reqs]
    remote = OpenAIBackend(str(smollm2_dir), base_url=served.base_url, concurrency=3).complete(reqs, greedy)
    assert [c.text for c in remote] == [c.text for c in here]
    assert [c.completion_tokens for c in remote] == [c.completion_tokens for c in here]
    assert [c.finish_reason for c in remote] == [c.finish_reason for c in here]

    plain = OpenAIBackend(str(smollm2_dir), base_url=served.base_url, endpoint="completions")
    out = plain.complete(reqs[:1], SamplingParams(temperature=0.0, max_new_tokens=5))[0]
    assert out.finish_reason == "length" and out.completion_tokens == 5 and out.text


def tiny_recipe(served, smollm2_dir, tiny_model_dir, cache) -> dict:
    return {
        "name": "served-teacher",
        "problems": {"task": "chain_sum", "task_config": {"min_terms": 2, "max_terms": 2, "max_digits": 1},
                     "n_train": 6, "n_eval": 4},
        "teacher": teacher(served, smollm2_dir),
        "generate": {"samples": 1, "temperature": 0.7, "max_new_tokens": 48, "rationalize": True,
                     "prompt": {"few_shot": 3}, "cache_dir": str(cache)},
        "train": {"student": str(tiny_model_dir), "max_steps": 1, "batch_size": 4, "max_length": 256,
                  "dtype": "float32", "device": "cpu"},
        "eval": {"models": ["teacher", "student_after"], "max_new_tokens": 16, "batch_size": 8,
                 "dtype": "float32", "device": "cpu"},
    }


def test_pipeline_with_a_served_teacher(served, smollm2_dir, tiny_model_dir, tmp_path):
    """generate -> verify -> curate -> train -> evaluate -> report, the teacher behind the server."""
    recipe = build(Recipe, tiny_recipe(served, smollm2_dir, tiny_model_dir, tmp_path / "cache"))
    out = tmp_path / "run"
    report = pipeline.run(recipe, out)
    gen = json.loads((out / "generate" / "manifest.json").read_text())
    assert gen["outputs"]["n_errors"] == 0 and gen["outputs"]["teacher_calls"] >= 6
    assert gen["outputs"]["teacher_identity"].startswith("openai:chat:")
    train = json.loads((out / "train" / "manifest.json").read_text())
    assert train["outputs"]["steps"] == 1
    assert report["teacher"]["n"] == 4 and report["student_after"]["n"] == 4
    assert (out / "report.md").exists()
    again = pipeline.run(recipe, out)  # unchanged re-run: nothing asked of the server
    assert again["teacher_calls"] == 0


def test_cli_run_with_a_served_teacher(served, smollm2_dir, tiny_model_dir, tmp_path):
    """`reasondistill run recipe.yaml` in a fresh interpreter, teacher = the server, API key from
    an environment variable that no file of the run or the cache contains afterwards."""
    key = "sk-served-0d9e8c7b6a"
    data = tiny_recipe(served, smollm2_dir, tiny_model_dir, tmp_path / "cache")
    data["teacher"]["options"]["api_key_env"] = "RD_SERVE_KEY"  # transformers serve ignores the header
    data["eval"]["models"] = ["student_after"]
    recipe_path = tmp_path / "served.yaml"
    recipe_path.write_text(yaml.safe_dump(data))
    env = {**os.environ, "RD_SERVE_KEY": key, "PYTHONPATH": os.path.join(REPO, "src"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "reasondistill", "run", str(recipe_path), "--out",
                           str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["student_after"]["n"] == 4
    gen = json.loads((tmp_path / "run" / "generate" / "manifest.json").read_text())
    assert gen["outputs"]["n_errors"] == 0 and gen["outputs"]["teacher_calls"] >= 6
    assert key not in proc.stdout and key not in proc.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
