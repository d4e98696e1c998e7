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


# --- a student on any backend (eval.student_backend): evaluated the way a teacher on it would be


def test_gguf_student_on_llamacpp(tmp_path, problems, monkeypatch):
    """A GGUF student runs on llama.cpp (here its fake engine), hashed as a file and never dequantized."""
    from reasondistill.evaluate.settings import file_sha256
    from tests import fake_llama_cpp

    fake_llama_cpp.install(monkeypatch)
    gguf = tmp_path / "toy.gguf"
    gguf.write_bytes(b"GGUF toy")
    s = run(tmp_path, problems, gguf, "eval.student_backend=llamacpp", "eval.student_options={n_ctx: 512}",
            "eval.max_new_tokens=32")
    m = s["settings"]["model"]
    assert m["name"] == "toy.gguf" and m["backend"] == "llamacpp" and m["spec"] == str(gguf)
    assert m["identity"].startswith("llamacpp:toy.gguf:") and m["weights_sha256"] == file_sha256(gguf)
    texts = [json.loads(line)["text"] for line in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert texts == [fake_llama_cpp.SCRIPT.decode()] * 3
    assert fake_llama_cpp.Llama.instances[0].kwargs["n_ctx"] == 512  # the student's own backend options


def test_served_student_on_the_openai_backend(tmp_path, problems, fake_openai):
    """A student a server serves is evaluated as a student (its own name, no weights here), and a
    finished evaluation of it is recognised without a request."""
    args = ("eval.student_backend=openai", "eval.max_new_tokens=64",
            f"eval.student_options={{base_url: '{fake_openai.url}', concurrency: 2}}")
    s = run(tmp_path, problems, "served-student", *args)
    m = s["settings"]["model"]
    assert s["n"] == 3 and s["accuracy"] == 1.0  # the fake server works the sums out
    assert m["name"] == "served-student" and m["backend"] == "openai" and m["served_model"] == "served-student"
    assert m["base_url"] == fake_openai.url and m["weights_sha256"] is None and m["spec"] is None
    assert m["identity"] == f"openai:chat:served-student@{fake_openai.url}"
    asked = len(fake_openai.log)
    run(tmp_path, problems, "served-student", *args)
    assert len(fake_openai.log) == asked


@pytest.mark.parametrize("override, named", [
    ("eval.student_backend=llamacp", r"unknown backend \(eval.student_backend\) 'llamacp'.*did you mean 'llamacpp'"),
    ("eval.student_options={bogus: 1}", "unknown recipe key 'eval.student_options.bogus'"),
])
def test_a_bad_student_backend_is_refused_before_any_load(tmp_path, problems, tiny_model_dir, capsys, override,
                                                         named):
    import re

    rc = cli.main(["evaluate", "--model", str(tiny_model_dir), "--problems", str(problems),
                   "--out", str(tmp_path / "out"), override])
    err = capsys.readouterr().err
    assert rc == 2 and re.search(named, err), err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
