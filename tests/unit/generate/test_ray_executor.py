"""``generate.executor: ray`` against the fake OpenAI server on a local 2-CPU Ray cluster the
tests start themselves: the same traces and cache as a local run (either resumes the other
with zero teacher calls), and a replica SIGKILLed mid-batch leaves every row present once."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time

import pytest

from reasondistill import io
from reasondistill.config import GenerateConfig, RayConfig, BackendConfig
from reasondistill.errors import ConfigError
from reasondistill.records import Problem, Trace

from tests.helpers import recipe, stage_layout

N = 8  # problems; 2 samples each


def write_problems(path):
    io.write_jsonl(path, [Problem(f"p{i}", "t", f"What is {i} + 1?", str(i + 1)) for i in range(N)])
    return path


def teacher(server) -> BackendConfig:
    return BackendConfig(backend="openai", model="fake-model", batch_size=2,
                         options={"base_url": server.url, "backoff_s": 0.01})


def generate_cfg(cache, executor: str = "local") -> GenerateConfig:
    return GenerateConfig(samples=2, temperature=0.0, max_new_tokens=32, cache_dir=str(cache), executor=executor,
                          ray=RayConfig(num_workers=2, num_cpus=1, max_retries=2))


def run(server, problems, out, gen):
    from reasondistill import generate

    return generate.run(recipe(teacher=teacher(server), generate=gen), stage_layout(out, "generate",
                                                                                    train_problems=problems))


def traces(out) -> list[dict]:
    return [dataclasses.asdict(t) for t in io.read_records(out / "traces.jsonl", Trace)]


def cache_keys(cache) -> list[str]:
    keys = []
    for f in cache.glob("*.jsonl"):
        keys += [json.loads(line)["key"] for line in f.read_text().splitlines() if '"key"' in line]
    return keys


# ---- fast: configuration ----

def test_executor_and_ray_options_are_checked():
    with pytest.raises(ConfigError, match="generate.executor"):
        GenerateConfig(executor="dask")
    with pytest.raises(ConfigError, match="num_workers"):
        RayConfig(num_workers=0)
    with pytest.raises(ConfigError, match="max_retries"):
        RayConfig(max_retries=-1)


def test_executor_is_not_part_of_the_stage_identity(tmp_path, fake_openai):
    """Where samples are drawn changes none of them: a finished local stage is reused as is
    when only the executor changes (no Ray needed: the stage never runs)."""
    problems = write_problems(tmp_path / "problems.jsonl")
    first = run(fake_openai, problems, tmp_path / "out", generate_cfg(tmp_path / "cache"))
    again = run(fake_openai, problems, tmp_path / "out", generate_cfg(tmp_path / "cache", "ray"))
    assert first["this_run"] == {"skipped": False} and again["this_run"] == {"skipped": True}


# ---- slow: a real local Ray cluster ----

@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_run_matches_local_and_shares_the_cache(tmp_path, fake_openai, ray_cluster):
    problems = write_problems(tmp_path / "problems.jsonl")
    local = run(fake_openai, problems, tmp_path / "local", generate_cfg(tmp_path / "cache-local"))
    on_ray = run(fake_openai, problems, tmp_path / "ray", generate_cfg(tmp_path / "cache-ray", "ray"))
    assert local["outputs"]["teacher_calls"] == on_ray["outputs"]["teacher_calls"] == 2 * N
    assert traces(tmp_path / "ray") == traces(tmp_path / "local")
    assert sorted(cache_keys(tmp_path / "cache-ray")) == sorted(cache_keys(tmp_path / "cache-local"))
    assert on_ray["outputs"]["teacher_identity"] == local["outputs"]["teacher_identity"]
    assert (local["outputs"]["executor"], on_ray["outputs"]["executor"]) == ("local", "ray")

    # each resumes the other: a local run over the Ray cache, a Ray run over the local cache
    n_calls = len(fake_openai.log)
    again_local = run(fake_openai, problems, tmp_path / "local2", generate_cfg(tmp_path / "cache-ray"))
    again_ray = run(fake_openai, problems, tmp_path / "ray2", generate_cfg(tmp_path / "cache-local", "ray"))
    for m in (again_local, again_ray):
        assert (m["outputs"]["teacher_calls"], m["outputs"]["cached_teacher_calls"]) == (0, 2 * N)
    assert len(fake_openai.log) == n_calls
    assert traces(tmp_path / "ray2") == traces(tmp_path / "local")


def _replica_holding(client: tuple[str, int]) -> int:
    """The pid of the Ray worker whose socket sent the request from ``client``."""
    import psutil

    for proc in psutil.Process().children(recursive=True):
        try:
            if any(c.laddr and (c.laddr.ip, c.laddr.port) == tuple(client) for c in proc.net_connections("tcp")):
                return proc.pid
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    raise AssertionError(f"no worker process holds a connection from {client}")


@pytest.mark.slow
def test_a_replica_killed_mid_batch_loses_and_duplicates_nothing(tmp_path, fake_openai, ray_cluster):
    problems = write_problems(tmp_path / "problems.jsonl")
    fake_openai.hang_s = 60.0
    fake_openai.fault("hang", match="What is 5 + 1?", times=1)  # that batch stays in flight until killed
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(
        run(fake_openai, problems, tmp_path / "ray", generate_cfg(tmp_path / "cache", "ray"))))
    worker.start()
    deadline = time.monotonic() + 60
    while not (hung := [r for r in fake_openai.log if r.fault == "hang"]):
        assert time.monotonic() < deadline and worker.is_alive(), "the hung request never arrived"
        time.sleep(0.1)
    victim = _replica_holding(hung[0].client)
    os.kill(victim, signal.SIGKILL)
    worker.join(timeout=120)
    assert not worker.is_alive() and result, "the run did not complete after a replica died"

    rows = traces(tmp_path / "ray")
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == 2 * N
    assert {(r["problem_id"], r["sample_idx"]) for r in rows} == {(f"p{i}", s) for i in range(N) for s in range(2)}
    assert all(r["finish_reason"] == "stop" for r in rows)
    keys = cache_keys(tmp_path / "cache")
    assert len(keys) == len(set(keys)) == 2 * N
    # the killed batch was sent again by the restarted replica, and answered this time
    assert len(fake_openai.requests_for("What is 5 + 1?")) >= 3  # 2 samples, one of them twice
    assert result["outputs"]["n_errors"] == 0
