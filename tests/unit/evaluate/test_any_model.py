"""`reasondistill evaluate --model` on every kind of model: an HF folder, a .gguf file, a served model."""

import json

import pytest

from reasondistill import cli, models

PROBLEMS = [{"id": f"q{i}", "source": "test", "prompt": f"What is {i} + {i}?", "answer": str(2 * i)}
            for i in range(1, 4)]


@pytest.fixture()
def problems(tmp_path):
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    return path


def run(tmp_path, problems, model, *overrides):
    out = tmp_path / "out"
    rc = cli.main(["evaluate", "--model", str(model), "--problems", str(problems), "--out", str(out),
                   f"generate.cache_dir={tmp_path / 'cache'}", "eval.max_new_tokens=4", "eval.device=cpu",
                   "eval.dtype=float32", *overrides])
    assert rc == 0
    return json.loads((out / "summary.json").read_text())


def test_hf_folder(tmp_path, problems, tiny_model_dir):
    s = run(tmp_path, problems, tiny_model_dir)
    m = s["settings"]["model"]
    assert s["n"] == 3 and m["backend"] == "transformers" and m["spec"] == str(tiny_model_dir)
    assert len(m["weights_sha256"]) == 64 and len(m["chat_template_sha256"]) == 64
    assert s["settings"]["runtime"] == {"device": "cpu", "dtype": "float32"}
    assert s["tokens"]["max"] <= 4  # eval.max_new_tokens


def test_gguf_file(tmp_path, problems):
    gguf = models.packaged_gguf("smollm2-135m-instruct")
    s = run(tmp_path, problems, gguf)
    m = s["settings"]["model"]
    assert s["n"] == 3 and m["spec"] == str(gguf) and m["identity"].startswith(gguf.stem)
    from reasondistill.evaluate.settings import file_sha256
    assert m["weights_sha256"] == file_sha256(gguf)  # the GGUF file's own hash, not the dequantized copy's


def test_served_model_through_the_openai_backend(tmp_path, problems, fake_openai):
    s = run(tmp_path, problems, "teacher", "teacher.backend=openai", "teacher.model=served-model",
            "eval.max_new_tokens=64", f"teacher.options={{base_url: '{fake_openai.url}', concurrency: 2}}")
    m = s["settings"]["model"]
    texts = [json.loads(line)["text"] for line in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert s["n"] == 3 and s["accuracy"] == 1.0, texts  # the fake server works the sums out
    assert m["backend"] == "openai" and m["served_model"] == "served-model" and m["base_url"] == fake_openai.url
    assert m["weights_sha256"] is None and s["settings"]["runtime"]["device"] == "remote"
    assert len([r for r in fake_openai.log if r.path.endswith("/chat/completions")]) == 3


def test_served_model_by_base_url_flag(tmp_path, problems, fake_openai):
    s = run(tmp_path, problems, "served-model", "--base-url", fake_openai.url, "eval.max_new_tokens=64")
    m = s["settings"]["model"]
    assert s["accuracy"] == 1.0 and m["backend"] == "openai"
    assert m["served_model"] == "served-model" and m["base_url"] == fake_openai.url
