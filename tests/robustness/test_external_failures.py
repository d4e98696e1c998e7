"""External engines and servers failing: keys echoed back, bad URLs and files, dead addresses,
servers that refuse every request, replicas that die, prompts longer than the model's context.

Each case goes through the CLI and asserts the exit code, one error line naming the option, URL
or file, and no traceback; keys are checked for in every byte written and every line printed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from .conftest import error_line, problem_rows, run, snapshot, write_jsonl

KEY = "sk-Zq8vR2mXw7LpT4n"  # 18 characters, as in the report
ENV = "RD_TEST_API_KEY"
MESSAGE_CUT = 200  # the backend's snippet length
PREFIX = "invalid key: Bearer "


def openai_teacher(url: str, *extra: str) -> list[str]:
    return ["teacher.backend=openai", "teacher.model=fake-model", f"teacher.options.base_url={url}",
            "teacher.options.backoff_s=0.01", "teacher.options.max_retries=1", "generate.samples=1",
            "generate.rationalize=false", *extra]


def fragments(secret: str, n: int = 6) -> list[str]:
    """Every ``n``-character piece of ``secret``: none of them may be written or printed."""
    return [secret[i:i + n] for i in range(len(secret) - n + 1)]


def assert_no_key(*texts: str, folder: Path | None = None, secret: str = KEY) -> None:
    blobs = list(texts)
    if folder is not None and folder.exists():
        blobs += [b.decode("utf-8", "replace") for b in snapshot(folder).values()]
    for blob in blobs:
        leaked = [f for f in fragments(secret) if f in blob]
        assert not leaked, f"key fragments {leaked} in {blob[:400]!r}"


# --- 1. keys echoed back by a server -------------------------------------------------------------


@pytest.fixture()
def keyed(fake_openai, monkeypatch):
    """The fake server, the key in the environment, and a 401 echoing it for problem p0 only (p1
    succeeds, so the stage finishes and writes its error row)."""
    monkeypatch.setenv(ENV, KEY)
    fake_openai.fault("401-echo", match="What is 0 + 2?", times=None)
    return fake_openai


def echo_generate(cli, server, tmp_path: Path) -> tuple[int, str, str, Path]:
    problems = write_jsonl(tmp_path / "problems.jsonl", problem_rows(2))
    out = tmp_path / "gen"
    rc, stdout, err = cli("generate", "--problems", problems, "--out", out, f"generate.cache_dir={tmp_path / 'c'}",
                          *openai_teacher(server.url, f"teacher.options.api_key_env={ENV}"))
    return rc, stdout, err, out


# the key starts at filler + len(PREFIX): these fillers put it wholly before, across, and after the cut
FILLERS = range(MESSAGE_CUT - len(PREFIX) - len(KEY) - 4, MESSAGE_CUT - len(PREFIX) + 4)


@pytest.mark.parametrize("raw", [False, True], ids=["json", "text"])
@pytest.mark.parametrize("filler", FILLERS)
def test_a_key_straddling_the_snippet_cut_is_masked_everywhere(cli, keyed, tmp_path, caplog, filler, raw):
    keyed.echo_template = "x" * filler + "invalid key: {auth}"
    keyed.echo_raw = raw
    rc, out, err, folder = echo_generate(cli, keyed, tmp_path)
    assert rc == 0, err
    row = next(json.loads(line) for line in (folder / "traces.jsonl").read_text().splitlines()
               if json.loads(line)["problem_id"] == "p0")
    assert row["finish_reason"] == "error" and "HTTP 401" in row["meta"]["error"]
    assert "api_key_env" in row["meta"]["error"]  # the option to check
    assert_no_key(out, err, caplog.text, folder=folder)


@pytest.mark.parametrize("raw", [False, True], ids=["json", "text"])
@pytest.mark.parametrize("split", range(1, len(KEY)))
def test_a_key_broken_over_lines_by_the_server_is_masked(cli, keyed, tmp_path, caplog, split, raw):
    """Servers that wrap long lines cut the key in two (a JSON ``\\n`` escape, or a real newline in
    a text body): the known key still matches across the break, wherever the snippet is cut."""
    keyed.echo_template = "y" * (150 + split) + "key rejected: " + KEY[:split] + "\r\n  " + KEY[split:] + " (docs)"
    keyed.echo_raw = raw
    rc, out, err, folder = echo_generate(cli, keyed, tmp_path)
    assert rc == 0, err
    assert_no_key(out, err, caplog.text, folder=folder)


@pytest.mark.parametrize("filler", range(150, 200, 3))
def test_an_unknown_bearer_value_is_masked_before_the_cut(cli, keyed, tmp_path, caplog, filler):
    """A credential we were never given (a proxy's, another user's) is masked by its label."""
    other = "sk-Qv7Pz3Ww9Ty5Rk2Lm8"
    keyed.echo_template = "z" * filler + f"Authorization: Bearer {other} rejected"
    rc, out, err, folder = echo_generate(cli, keyed, tmp_path)
    assert rc == 0, err
    assert_no_key(out, err, caplog.text, folder=folder, secret=other)


def test_the_echoed_key_is_masked_on_stderr_of_a_real_process(fake_openai, tmp_path, monkeypatch):
    """The warnings a real process prints (log handlers on stderr) carry no part of the key either."""
    monkeypatch.setenv(ENV, KEY)
    straddle = MESSAGE_CUT - len(PREFIX) - len(KEY) // 2
    fake_openai.echo_template = "x" * straddle + "invalid key: {auth}"
    fake_openai.fault("401-echo", times=None)  # every request: the stage fails, naming the cause
    problems = write_jsonl(tmp_path / "problems.jsonl", problem_rows(2))
    proc = run("generate", "--problems", problems, "--out", tmp_path / "gen", f"generate.cache_dir={tmp_path / 'c'}",
               *openai_teacher(fake_openai.url, f"teacher.options.api_key_env={ENV}"), timeout=120)
    assert proc.returncode == 1, proc.stderr
    line = error_line(proc.stderr)
    assert "2 of 2 teacher requests failed" in line and "HTTP 401" in line and fake_openai.url in line
    assert_no_key(proc.stdout, proc.stderr, folder=tmp_path / "gen")


# --- 2. bad URLs and files are input errors ------------------------------------------------------


@pytest.mark.parametrize("url, needle", [
    ("http://127.0.0.1:99999/v1", "Port out of range"),
    ("http://127.0.0.1:0/v1", "port 0 is not in 1..65535"),
    ("http://:8000/v1", "has no host name"),
    ("ftp://127.0.0.1:8000/v1", "must start with http:// or https://"),
    ("http://[::1/v1", "not a valid URL"),
])
def test_a_bad_base_url_is_refused_with_the_recipe(cli, tmp_path, url, needle):
    problems = write_jsonl(tmp_path / "problems.jsonl", problem_rows(1))
    rc, _, err = cli("generate", "--problems", problems, "--out", tmp_path / "gen", *openai_teacher(url))
    assert rc == 2
    line = error_line(err)
    assert "teacher.options.base_url" in line and needle in line
    assert not (tmp_path / "gen").exists()


@pytest.mark.parametrize("address, needle", [("127.0.0.1:99999", "Port out of range"),
                                             ("127.0.0.1", "has no port"), ("ray://:10001", "has no host")])
def test_a_bad_ray_address_is_refused_with_the_recipe(cli, tmp_path, address, needle):
    problems = write_jsonl(tmp_path / "problems.jsonl", problem_rows(1))
    rc, _, err = cli("generate", "--problems", problems, "--out", tmp_path / "gen", "teacher.backend=dummy",
                     "generate.executor=ray", f"generate.ray.address={address}")
    assert rc == 2
    line = error_line(err)
    assert "generate.ray.address" in line and needle in line


@pytest.mark.parametrize("content", [b"not a gguf at all", b"", b"PK\x03\x04zip"], ids=["text", "empty", "zip"])
def test_a_gguf_without_the_magic_bytes_is_an_input_error_naming_the_file(cli, tmp_path, content):
    problems = write_jsonl(tmp_path / "problems.jsonl", problem_rows(1))
    bad = tmp_path / "model.gguf"
    bad.write_bytes(content)
    rc, _, err = cli("evaluate", "--model", bad, "--problems", problems, "--out", tmp_path / "ev")
    assert rc == 2
    line = error_line(err)
    assert str(bad) in line and "not a GGUF file" in line


@pytest.mark.parametrize("content", [b"not a gguf at all", b""], ids=["text", "empty"])
def test_a_llamacpp_teacher_gguf_without_the_magic_bytes_is_an_input_error(cli, tmp_path, monkeypatch, content):
    from tests import fake_llama_cpp

    fake_llama_cpp.install(monkeypatch)
    problems = write_jsonl(tmp_path / "problems.jsonl", problem_rows(1))
    bad = tmp_path / "teacher.gguf"
    bad.write_bytes(content)
    rc, _, err = cli("generate", "--problems", problems, "--out", tmp_path / "gen", "teacher.backend=llamacpp",
                     f"teacher.model={bad}")
    assert rc == 2
    line = error_line(err)
    assert str(bad) in line and "not a GGUF file" in line
    assert not (tmp_path / "gen").exists()


# --- 3. a dead Ray address fails in bounded time -------------------------------------------------


def test_a_dead_ray_address_fails_fast_naming_the_option(tmp_path):
    pytest.importorskip("ray")
    problems = write_jsonl(tmp_path / "problems.jsonl", problem_rows(1))
    started = time.monotonic()
    proc = run("generate", "--problems", problems, "--out", tmp_path / "gen", "teacher.backend=dummy",
               "generate.executor=ray", "generate.ray.address=127.0.0.1:1", "generate.ray.connect_timeout_s=5",
               timeout=60)
    wall = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    line = error_line(proc.stderr)
    assert "generate.ray.address=127.0.0.1:1" in line and "connect_timeout_s" in line
    assert wall < 30, wall


def test_a_listener_that_is_not_ray_times_out_naming_the_option(tmp_path):
    """Something answers TCP but never speaks Ray: the handshake is given up after connect_timeout_s."""
    pytest.importorskip("ray")
    import socket

    problems = write_jsonl(tmp_path / "problems.jsonl", problem_rows(1))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        started = time.monotonic()
        proc = run("generate", "--problems", problems, "--out", tmp_path / "gen", "teacher.backend=dummy",
                   "generate.executor=ray", f"generate.ray.address=127.0.0.1:{port}",
                   "generate.ray.connect_timeout_s=3", timeout=90)
        wall = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    line = error_line(proc.stderr)
    assert f"generate.ray.address=127.0.0.1:{port}" in line and "connect_timeout_s=3" in line
    assert wall < 45, wall


def test_a_server_that_never_accepts_fails_after_the_connect_timeout(cli, tmp_path):
    """A host that takes no connections (a full accept queue, a firewall dropping SYNs): every
    request gives up after teacher.options.connect_timeout_s, not the 120 s request limit."""
    import socket

    problems = write_jsonl(tmp_path / "problems.jsonl", problem_rows(2))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        queued = []
        for _ in range(4):  # fill the accept queue: later SYNs are dropped, connects hang
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            queued.append(c)
        url = f"http://127.0.0.1:{port}/v1"
        started = time.monotonic()
        rc, _, err = cli("generate", "--problems", problems, "--out", tmp_path / "gen",
                         f"generate.cache_dir={tmp_path / 'c'}",
                         *openai_teacher(url, "teacher.options.connect_timeout_s=0.5", "teacher.options.max_retries=0"))
        wall = time.monotonic() - started
        for c in queued:
            c.close()
    assert rc == 1, err
    line = error_line(err)
    assert f"cannot reach {url}" in line and "teacher.options.connect_timeout_s" in line
    assert wall < 20, wall


# --- 4. runs that produce nothing usable fail, partial failures are counted ----------------------


def test_a_server_refusing_every_request_fails_the_run_naming_status_and_url(cli, fake_openai, tmp_path, caplog):
    fake_openai.api_key = "the-right-one"  # we send none: every request is a 401
    out = tmp_path / "run"
    rc, _, err = cli("run", "--out", out, "--until", "curate", "problems.source=reasoning_gym",
                     "problems.task=chain_sum", "problems.n_train=5", "problems.n_eval=2",
                     f"generate.cache_dir={tmp_path / 'c'}", *openai_teacher(fake_openai.url))
    assert rc == 1, err
    line = error_line(err)
    assert "5 of 5 teacher requests failed" in line and "HTTP 401" in line
    assert fake_openai.url in line and "teacher.options.api_key_env" in line
    assert not (out / "generate" / "traces.jsonl").exists() and not (out / "curate").exists()


@pytest.mark.parametrize("until", ["curate", "train"])
def test_a_curation_that_keeps_nothing_fails_with_why_each_trace_was_dropped(cli, tmp_path, until):
    """Every answer wrong (a dummy teacher at accuracy 0, no hints): nothing to train on, named."""
    out = tmp_path / "run"
    rc, _, err = cli("run", "--out", out, "--until", until, "problems.source=reasoning_gym", "problems.task=chain_sum",
                     "problems.n_train=4", "problems.n_eval=2", "teacher.backend=dummy",
                     "teacher.options.accuracy=0.0", "generate.rationalize=false", f"generate.cache_dir={tmp_path / 'c'}")
    assert rc == 2, err
    line = error_line(err)
    assert "curation kept none of 4 traces (dropped: incorrect (kept as negatives): 4)" in line and "train.method sft" in line
    assert str(out / "curate" / "rejected.jsonl") in line
    assert (out / "curate" / "rejected.jsonl").is_file() and not (out / "train").exists()


def test_a_run_with_some_failed_rows_ends_with_their_count_and_cause(cli, fake_openai, tmp_path):
    fake_openai.fault("503", times=1)  # one request fails, with no retry left
    out = tmp_path / "run"
    rc, stdout, err = cli("run", "--out", out, "--until", "curate", "problems.source=reasoning_gym",
                          "problems.task=chain_sum", "problems.n_train=5", "problems.n_eval=2",
                          f"generate.cache_dir={tmp_path / 'c'}", *openai_teacher(fake_openai.url),
                          "teacher.options.max_retries=0")
    assert rc == 0, err
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("  generate: 1 of 5 teacher requests failed: HTTP 503 from " + fake_openai.url), stdout
    assert last.endswith("run the same command to retry them")


def test_a_server_where_nothing_listens_fails_naming_the_url(cli, tmp_path):
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    problems = write_jsonl(tmp_path / "problems.jsonl", problem_rows(3))
    rc, out, err = cli("generate", "--problems", problems, "--out", tmp_path / "gen",
                       f"generate.cache_dir={tmp_path / 'c'}", *openai_teacher(url))
    assert rc == 1 and out == ""
    line = error_line(err)
    assert "3 of 3 teacher requests failed" in line and f"cannot reach {url}" in line
    assert "teacher.options.base_url" in line
    assert not (tmp_path / "gen" / "traces.jsonl").exists()


def test_partial_failures_are_counted_in_the_final_line_and_retried(cli, fake_openai, tmp_path, caplog):
    problems = write_jsonl(tmp_path / "problems.jsonl", problem_rows(4))
    fake_openai.fault("500", match="What is 1 + 2?", times=None)
    argv = ["generate", "--problems", problems, "--out", tmp_path / "gen", f"generate.cache_dir={tmp_path / 'c'}",
            *openai_teacher(fake_openai.url)]
    rc, out, err = cli(*argv)
    assert rc == 0, err
    final = json.loads(out.strip().splitlines()[-1])
    assert final["n_errors"] == 1 and final["n_traces"] == 4
    assert final["errors"].startswith("1 of 4 teacher requests failed: HTTP 500 from " + fake_openai.url)
    assert "1 of 4 teacher requests failed" in caplog.text
    manifest = json.loads((tmp_path / "gen" / "manifest.json").read_text())
    assert manifest["outputs"]["n_errors"] == 1 and "HTTP 500" in manifest["outputs"]["errors"]
    fake_openai.clear()
    rc, out, err = cli(*argv)  # the finished rows come from the cache, the failed one is asked again
    final = json.loads(out.strip().splitlines()[-1])
    assert rc == 0 and (final["teacher_calls"], final["cached_teacher_calls"], final["n_errors"]) == (1, 3, 0)
    assert "errors" not in final


def test_training_against_a_served_teacher_where_nothing_listens_fails_naming_the_url(cli, tiny_model_dir, tmp_path):
    """KD scoring through a dead server: exit 1 (the server failed, not the recipe), the URL named."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    data = write_jsonl(tmp_path / "train.jsonl", [
        {"prompt": [{"role": "user", "content": f"What is {i} + 2?"}],
         "completion": [{"role": "assistant", "content": f"{i} + 2 = {i + 2}.\nAnswer: {i + 2}"}],
         "meta": {"problem_id": f"p{i}", "trace_id": f"p{i}/t/s0"}} for i in range(2)])
    teacher = ("{backend: openai, model: fake-model, options: {base_url: '%s', endpoint: completions, "
               "max_retries: 0}}" % url)
    rc, _, err = cli("train", "kd", "--data", data, "--out", tmp_path / "out", f"train.student={tiny_model_dir}",
                     "train.max_steps=1", "train.batch_size=2", "train.device=cpu", "train.dtype=float32",
                     "train.objective.top_k=2", f"train.objective.teacher={teacher}")
    assert rc == 1, err
    line = error_line(err)
    assert f"cannot reach {url}" in line and "teacher.options.base_url" in line


def test_evaluate_of_a_teacher_refusing_everything_fails(cli, fake_openai, tmp_path):
    fake_openai.api_key = "the-right-one"
    problems = write_jsonl(tmp_path / "eval.jsonl", problem_rows(3))
    rc, _, err = cli("evaluate", "--model", "fake-model", "--base-url", fake_openai.url, "--problems", problems,
                     "--out", tmp_path / "ev", f"generate.cache_dir={tmp_path / 'c'}",
                     "teacher.options.max_retries=0", "eval.samples=0")
    assert rc == 1, err
    line = error_line(err)
    assert "evaluate teacher: 3 of 3 requests failed" in line and "HTTP 401" in line and fake_openai.url in line
    assert not (tmp_path / "ev" / "summary.json").exists()


def test_evaluate_counts_partial_failures_and_retries_them(cli, fake_openai, tmp_path):
    problems = write_jsonl(tmp_path / "eval.jsonl", problem_rows(3))
    fake_openai.fault("503", match="What is 2 + 2?", times=None)
    argv = ["evaluate", "--model", "fake-model", "--base-url", fake_openai.url, "--problems", problems,
            "--out", tmp_path / "ev", f"generate.cache_dir={tmp_path / 'c'}", "teacher.options.max_retries=0",
            "eval.samples=0"]
    rc, out, err = cli(*argv)
    assert rc == 0, err
    final = json.loads(out.strip().splitlines()[-1])
    assert final["n_errors"] == 1 and "HTTP 503" in final["errors"]
    assert json.loads((tmp_path / "ev" / "summary.json").read_text())["n_errors"] == 1
    fake_openai.clear()
    rc, out, _ = cli(*argv)
    final = json.loads(out.strip().splitlines()[-1])
    assert rc == 0 and final["n_errors"] == 0 and final["accuracy"] == 1.0


# --- 6. env sees the openai backend --------------------------------------------------------------


def test_env_reports_the_openai_backend_by_its_http_client(cli, monkeypatch):
    import importlib.util

    rc, out, _ = cli("env", "--json")
    assert rc == 0 and json.loads(out)["backends"]["openai"] is True
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "httpx2" else real(name, *a))
    rc, out, _ = cli("env", "--json")
    assert rc == 0 and json.loads(out)["backends"]["openai"] is False


# --- 7. prompts longer than the model's context ---------------------------------------------------


@pytest.fixture(scope="module")
def short_context_model(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model with a 64-position context."""
    import shutil

    out = tmp_path_factory.mktemp("ctx64") / "model"
    shutil.copytree(tiny_model_dir, out)
    config = json.loads((out / "config.json").read_text())
    config["max_position_embeddings"] = 64
    (out / "config.json").write_text(json.dumps(config))
    return out


def long_problems(path: Path) -> Path:
    rows = problem_rows(3)
    rows[1]["prompt"] = "Think about this. " * 120 + rows[1]["prompt"]  # ~700 tokens
    return write_jsonl(path, rows)


def test_evaluate_warns_and_counts_prompts_longer_than_the_context(cli, short_context_model, tmp_path, caplog):
    problems = long_problems(tmp_path / "eval.jsonl")
    rc, out, err = cli("evaluate", "--model", short_context_model, "--problems", problems, "--out", tmp_path / "ev",
                       f"generate.cache_dir={tmp_path / 'c'}", "eval.samples=0", "eval.max_new_tokens=4",
                       "eval.device=cpu", "eval.dtype=float32")
    assert rc == 0, err
    assert json.loads(out.strip().splitlines()[-1])["n_over_context"] == 1
    assert json.loads((tmp_path / "ev" / "summary.json").read_text())["n_over_context"] == 1
    warned = [r.getMessage() for r in caplog.records if "longer than the model's context of 64" in r.getMessage()]
    assert warned and "p1 (" in warned[0] and "p0" not in warned[0]


def test_generate_counts_prompts_longer_than_the_teacher_context(cli, short_context_model, tmp_path, caplog):
    problems = long_problems(tmp_path / "train.jsonl")
    rc, out, err = cli("generate", "--problems", problems, "--out", tmp_path / "gen",
                       f"generate.cache_dir={tmp_path / 'c'}", "teacher.backend=transformers",
                       f"teacher.model={short_context_model}", "teacher.device=cpu", "teacher.dtype=float32",
                       "generate.samples=1", "generate.rationalize=false", "generate.max_new_tokens=4")
    assert rc == 0, err
    assert json.loads(out.strip().splitlines()[-1])["n_over_context"] == 1
    assert "p1 (" in caplog.text and "longer than the model's context of 64 tokens" in caplog.text


# --- 5. a Ray replica that dies with no retries left ---------------------------------------------


@pytest.mark.slow
def test_a_replica_dying_with_no_retries_left_is_an_environment_failure_and_resumes(cli, fake_openai, tmp_path):
    """``generate.ray.max_retries=0`` and a replica SIGKILLed mid-batch: exit 1 naming the option
    (not "unexpected ActorDiedError"); the batches already returned stay cached and the same
    command, with retries, finishes paying only for the rest."""
    import os
    import signal
    import threading

    ray = pytest.importorskip("ray")
    pytest.importorskip("psutil")
    from tests.unit.generate.test_ray_executor import _replica_holding

    problems = write_jsonl(tmp_path / "problems.jsonl", problem_rows(8))
    fake_openai.hang_s = 60.0
    fake_openai.fault("hang", match="What is 5 + 2?", times=1)
    argv = ["generate", "--problems", problems, "--out", tmp_path / "gen", f"generate.cache_dir={tmp_path / 'c'}",
            *openai_teacher(fake_openai.url, "teacher.batch_size=2"), "generate.executor=ray",
            "generate.ray.num_workers=2", "generate.ray.num_cpus=1"]
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        result: dict = {}
        worker = threading.Thread(target=lambda: result.update(
            zip(("rc", "out", "err"), cli(*argv, "generate.ray.max_retries=0"))))
        worker.start()
        deadline = time.monotonic() + 60
        while not (hung := [r for r in fake_openai.log if r.fault == "hang"]):
            assert time.monotonic() < deadline and worker.is_alive(), "the hung request never arrived"
            time.sleep(0.1)
        time.sleep(0.5)  # let the other replica's batches land in the cache
        os.kill(_replica_holding(hung[0].client), signal.SIGKILL)
        worker.join(timeout=120)
        assert not worker.is_alive()
        assert result["rc"] == 1, result["err"]
        line = error_line(result["err"])
        assert "Ray replica died" in line and "generate.ray.max_retries=0" in line
        assert "error: unexpected" not in result["err"] and "this is a bug" not in result["err"]
        assert not (tmp_path / "gen" / "traces.jsonl").exists()
        before = len(fake_openai.log)
        rc, out, err = cli(*argv)
        assert rc == 0, err
        final = json.loads(out.strip().splitlines()[-1])
        assert final["n_traces"] == 8 and final["n_errors"] == 0
        assert final["cached_teacher_calls"] > 0 and final["teacher_calls"] == 8 - final["cached_teacher_calls"]
        assert len(fake_openai.log) - before == final["teacher_calls"]
    finally:
        ray.shutdown()


# --- 3. a harness child past its limit ---------------------------------------------------------------


@pytest.mark.parametrize("module", ["lmeval", "lighteval"])
def test_a_harness_child_past_its_time_limit_is_an_environment_failure(tmp_path, monkeypatch, module):
    """``subprocess.run(timeout=...)`` kills the child and raises TimeoutExpired: a ServiceError naming
    the log with what the child printed, not an unexpected exception."""
    import importlib
    import subprocess

    from reasondistill.errors import ServiceError

    harness = importlib.import_module(f"reasondistill.evaluate.harness.{module}")

    def too_slow(cmd, **kwargs):
        raise subprocess.TimeoutExpired(cmd, kwargs.get("timeout"), output="loading model\n", stderr=b"step 1\n")

    monkeypatch.setattr(harness.subprocess, "run", too_slow)
    task = tmp_path / "task"
    task.mkdir()
    (task / "generation.json").write_text('{"max_new_tokens": 8}')
    with pytest.raises(ServiceError, match=r"did not finish within 5 s and was stopped; its output: "):
        harness.run_harness(tmp_path / "model", task, tmp_path, device="cpu", dtype="float32", batch_size=1,
                            timeout_s=5)
    log = next(tmp_path.glob("*.log")).read_text()
    assert "loading model" in log and "step 1" in log
