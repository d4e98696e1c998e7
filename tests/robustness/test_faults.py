"""Faults: kill -9, SIGTERM and SIGINT at seeded random points of generate, evaluate and training,
a full disk at the write layer, and two runs sharing one sample cache.

Every case then resumes (or completes) and must give the same bytes as an uninterrupted run, with
no duplicate samples; the figures (what was cached at the fault, what the resumed run paid for,
rows lost) are collected by the ``figures`` fixture and printed with ``-s``.

Kill points are drawn from cache progress (so most land after several batches were cached, and
some mid-batch) or, for training, from the trainer's step counter.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from .conftest import Child, error_line, problem_rows, run, snapshot, temp_leftovers, write_jsonl

SEED = 8
DELAY = 0.008  # seconds per dummy sample: a batch of 16 takes ~0.13 s
BATCH = 16  # the dummy teacher's batch size
TEACHER = ["teacher.backend=dummy", f"teacher.options={{accuracy: 0.5, delay_s: {DELAY}}}"]
GENERATE = [*TEACHER, "generate.samples=4", "generate.rationalize=true"]
EVALUATE = [*TEACHER, "eval.samples=2"]
TRAIN_STEPS = 12
TRAIN = ["train.max_steps=%d" % TRAIN_STEPS, "train.batch_size=4", "train.logging_steps=1", "train.dtype=float32",
         "train.device=cpu", "train.max_length=64"]
RESUME_HINT = "run the same command to resume"


# --- inputs and the uninterrupted references ---------------------------------------------------


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fault-inputs")
    data = root / "curated.jsonl"
    write_jsonl(data, [{"prompt": [{"role": "user", "content": f"What is {i} + 2?"}],
                        "completion": [{"role": "assistant", "content": f"{i} + 2 = {i + 2}.\nAnswer: {i + 2}"}]}
                       for i in range(48)])
    return {"train": write_jsonl(root / "train.jsonl", problem_rows(32)),  # 4 samples each: ~8 batches
            "eval": write_jsonl(root / "eval.jsonl", problem_rows(40, start=100)),  # greedy + 2 sampled: 8
            "curated": data}


def argv_for(stage: str, inputs: dict[str, Path], out: Path, cache: Path, student: Path | None = None,
             fast: bool = False) -> list:
    """The command line of ``stage``; ``fast`` drops the dummy teacher's delay (outputs are the same)."""
    slow = [] if not fast else ["teacher.options={accuracy: 0.5}"]
    if stage == "generate":
        return ["generate", "--problems", inputs["train"], "--out", out, f"generate.cache_dir={cache}", *GENERATE,
                *slow]
    if stage == "evaluate":
        return ["evaluate", "--model", "teacher", "--problems", inputs["eval"], "--out", out,
                f"generate.cache_dir={cache}", *EVALUATE, *slow]
    return ["train", "sft", "--data", inputs["curated"], "--out", out, f"train.student={student}", *TRAIN]


OUTPUTS = {"generate": ["traces.jsonl"], "evaluate": ["samples.jsonl", "audit.jsonl", "summary.json"],
           "train": ["model/model.safetensors", "loss.jsonl"]}


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    """Uninterrupted runs of each stage, computed on first use: output bytes, samples, wall time."""
    refs: dict[str, dict] = {}

    def get(stage: str, student: Path | None = None) -> dict:
        if stage not in refs:
            root = tmp_path_factory.mktemp(f"reference-{stage}")
            started = time.time()
            done = run(*argv_for(stage, inputs, root / "out", root / "cache", student))
            assert done.returncode == 0, done.stderr[-3000:]
            manifest = json.loads((root / "out" / "manifest.json").read_text())
            outputs = manifest["outputs"]
            refs[stage] = {"bytes": {f: (root / "out" / f).read_bytes() for f in OUTPUTS[stage]},
                           "samples": outputs.get("teacher_calls", outputs.get("calls")),
                           "wall": round(time.time() - started, 2), "cache": root / "cache"}
        return refs[stage]

    return get


# --- cache and output inspection ---------------------------------------------------------------


def cache_file(cache: Path) -> Path | None:
    files = list(cache.glob("*.jsonl")) if cache.exists() else []
    assert len(files) <= 1, files
    return files[0] if files else None


def cache_lines(cache: Path) -> int:
    """Sample lines appended so far (the header line not counted); cheap enough to poll."""
    path = cache_file(cache)
    return max(path.read_bytes().count(b"\n") - 1, 0) if path else 0


def read_cache(cache: Path) -> tuple[Counter, int, int]:
    """``(key counts, corrupt lines, header lines)``: every complete line must be a record."""
    keys: Counter = Counter()
    corrupt = headers = 0
    path = cache_file(cache)
    for line in (path.read_bytes().split(b"\n") if path else []):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            corrupt += 1
            continue
        if "key" in obj:
            keys[obj["key"]] += 1
        else:
            headers += 1
    return keys, corrupt, headers


def steps_done(stderr: str) -> int:
    """The trainer's last reported optimizer step (its progress bar on stderr)."""
    found = re.findall(rf"(\d+)/{TRAIN_STEPS} \[", stderr)
    return int(found[-1]) if found else 0


def assert_same_outputs(stage: str, out: Path, ref: dict) -> None:
    for name, data in ref["bytes"].items():
        assert (out / name).read_bytes() == data, f"{name} differs from the uninterrupted run"


def unique_rows(stage: str, out: Path) -> tuple[int, int]:
    """``(rows, distinct ids)`` of the stage's record output."""
    if stage == "train":
        rows = (out / "loss.jsonl").read_text().splitlines()
        return len(rows), len(set(rows))
    name = "traces.jsonl" if stage == "generate" else "samples.jsonl"
    rows = [json.loads(x) for x in (out / name).read_text().splitlines()]
    ids = {r["id"] if "id" in r else (r["problem_id"], r["sample_idx"]) for r in rows}
    return len(rows), len(ids)


# --- one interrupted run, then the resume -------------------------------------------------------


def interrupt_and_resume(stage, how, point, inputs, reference, tmp, figures, test, student=None):
    """Start ``stage``, deliver ``how`` (SIGKILL/SIGTERM/SIGINT) at ``point``, check the wreck, resume,
    check the result, and record the figures.

    ``point`` is ``(samples cached, extra seconds)`` for generate/evaluate, or the optimizer step
    after which to strike for training."""
    ref = reference(stage, student)
    out, cache = tmp / "out", tmp / "cache"
    argv = argv_for(stage, inputs, out, cache, student)
    child = Child(*argv)
    deadline = time.time() + 240
    if stage == "train":
        while child.alive() and steps_done(child.stderr) < point and time.time() < deadline:
            time.sleep(0.02)
    else:
        at, extra = point
        while child.alive() and cache_lines(cache) < at and time.time() < deadline:
            time.sleep(0.002)
        time.sleep(extra)
    assert child.alive(), f"{stage} finished before the {how.name} at {point}: " + child.stderr[-1500:]
    struck = time.time()
    child.proc.send_signal(how)
    rc = child.finish()
    expected = {signal.SIGKILL: -signal.SIGKILL, signal.SIGTERM: 143, signal.SIGINT: 130}[how]
    assert rc == expected, child.stderr[-3000:]
    if how != signal.SIGKILL:
        assert RESUME_HINT in child.stderr and "Traceback" not in child.stderr, child.stderr[-3000:]
    if out.exists():
        assert not (out / "manifest.json").exists() and not temp_leftovers(out)
    for name in OUTPUTS[stage]:
        assert not (out / name).exists(), f"{name} written by an unfinished {stage}"
    record = {"test": test, "stage": stage, "signal": how.name, "point": point}
    if stage == "train":
        record["steps_done_at_signal"] = steps_done(child.stderr)
    else:
        keys, corrupt, _ = read_cache(cache)
        record.update(cached_at_signal=len(keys), batches_cached=len(keys) // BATCH, cut_lines=corrupt)
        path = cache_file(cache)
        if path is not None and keys:
            in_flight = (struck - path.stat().st_mtime) / DELAY
            record["in_flight_est"] = min(BATCH, max(0, round(in_flight)))

    done = run(*argv)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert_same_outputs(stage, out, ref)
    rows, distinct = unique_rows(stage, out)
    assert rows == distinct, "duplicate rows after resume"
    manifest = json.loads((out / "manifest.json").read_text())["outputs"]
    if stage != "train":
        paid = manifest.get("teacher_calls", manifest.get("calls"))
        assert paid == ref["samples"] - record["cached_at_signal"], "a cached sample was paid for again"
        keys, corrupt, headers = read_cache(cache)
        assert headers == 1 and len(keys) == sum(keys.values()) == ref["samples"], "duplicate or lost samples"
        record.update(samples_total=ref["samples"], resumed_paid=paid,
                      redone_samples=record.get("in_flight_est", "startup"))
    else:
        resumed = manifest["resumed_from_step"]  # the newest checkpoint (train.checkpoint_every: 10% of the steps)
        record.update(steps_total=TRAIN_STEPS, resumed_from=resumed,
                      redone_steps=max(record["steps_done_at_signal"] - resumed, 0))
        assert not (out / "model.tmp").exists()
    record.update(rows_lost=0, duplicates=rows - distinct, wall_interrupted=round(child.wall, 2),
                  wall_signal_to_done=round(time.time() - struck, 2), wall_uninterrupted=ref["wall"])
    figures.add(**record)


def sample_points(seed: int, total: int, n: int) -> list[tuple[int, float]]:
    """``n`` seeded kill points spread over a run of ``total`` samples: a cache level to wait for
    (the first point: none, so it strikes before the first batch is cached; then one random level
    in each of the other equal strata, up to three batches before the end, so a loaded machine still
    strikes before the run finishes) and a delay that lands inside the next batch."""
    rng = random.Random(seed)
    width = (total - 3 * BATCH) / n
    return [(0 if i == 0 else int(width * i + rng.random() * width), round(rng.uniform(0, BATCH * DELAY * 0.9), 3))
            for i in range(n)]


# --- kill -9 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["generate", "evaluate"])
def test_kill_9_at_random_points_then_resume(stage, inputs, reference, tmp_path, figures):
    total = reference(stage)["samples"]
    points = sample_points(SEED, total, 10)
    assert sum(at >= 2 * BATCH for at, _ in points) >= 5  # most points after several cached batches
    for i, point in enumerate(points):
        interrupt_and_resume(stage, signal.SIGKILL, point, inputs, reference, tmp_path / f"k{i}", figures,
                             f"kill -9 {stage}")


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("stage", ["generate", "evaluate"])
def test_sigterm_and_sigint_print_the_hint_and_resume(stage, how, inputs, reference, tmp_path, figures):
    total = reference(stage)["samples"]
    for i, (at, extra) in enumerate(sample_points(SEED + how, total, 2)):
        point = (max(at, 1), extra)  # after main() is running: a signal during interpreter start-up is Python's
        interrupt_and_resume(stage, how, point, inputs, reference, tmp_path / f"s{i}", figures,
                             f"{how.name} {stage}")


def test_sigterm_during_training_then_resume(inputs, reference, tmp_path, figures, tiny_model_dir):
    step = random.Random(SEED).randrange(1, TRAIN_STEPS - 2)
    interrupt_and_resume("train", signal.SIGTERM, step, inputs, reference, tmp_path, figures,
                         "SIGTERM train", student=tiny_model_dir)


@pytest.mark.slow
@pytest.mark.parametrize("how,n", [(signal.SIGKILL, 10), (signal.SIGTERM, 5), (signal.SIGINT, 5)],
                         ids=["SIGKILL", "SIGTERM", "SIGINT"])
def test_training_interrupted_at_random_steps_then_resume(how, n, inputs, reference, tmp_path, figures,
                                                          tiny_model_dir):
    rng = random.Random(SEED * 100 + how)
    for i in range(n):  # a signal other than SIGKILL waits for the first step: main() is running by then
        step = rng.randrange(0 if how == signal.SIGKILL else 1, TRAIN_STEPS - 1)
        interrupt_and_resume("train", how, step, inputs, reference, tmp_path / f"t{i}",
                             figures, f"{how.name} train", student=tiny_model_dir)


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("stage", ["generate", "evaluate"])
def test_signals_at_ten_random_points(stage, how, inputs, reference, tmp_path, figures):
    total = reference(stage)["samples"]
    for i, (at, extra) in enumerate(sample_points(SEED * 7 + how, total, 10)):
        point = (max(at, 1), extra)
        interrupt_and_resume(stage, how, point, inputs, reference, tmp_path / f"s{i}", figures,
                             f"{how.name} {stage} (x10)")


# --- a full disk -----------------------------------------------------------------------------------


class DiskFull:
    """``os.fsync`` that fails with ENOSPC on its ``at``-th call, first dropping the last bytes of the
    file (the tail of that write never reached the disk), as a full disk does at the write layer."""

    def __init__(self, at: int | None) -> None:
        self.at, self.calls, self.real = at, 0, os.fsync

    def __call__(self, fd: int) -> None:
        self.calls += 1
        if self.calls == self.at:
            size = os.fstat(fd).st_size
            os.ftruncate(fd, max(size - 7, 0))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.real(fd)


@pytest.mark.parametrize("stage", ["generate", "evaluate"])
def test_disk_full_fails_clearly_and_keeps_every_finished_record(stage, cli, inputs, reference, tmp_path, figures,
                                                                monkeypatch):
    ref = reference(stage)
    real_fsync = os.fsync
    # how many fsyncs an uninterrupted run makes: cache appends, then the outputs and the manifest
    counter = DiskFull(None)
    monkeypatch.setattr(os, "fsync", counter)
    assert cli(*argv_for(stage, inputs, tmp_path / "count", tmp_path / "count-cache", fast=True))[0] == 0
    n = counter.calls
    monkeypatch.setattr(os, "fsync", real_fsync)
    outputs = len(OUTPUTS[stage]) + 1
    for at in sorted({1, 2, n // 2, n - outputs, *range(n - outputs + 1, n + 1)}):  # every output write
        case = tmp_path / f"at{at}"
        out, cache = case / "out", case / "cache"
        # an earlier, finished run in the same folder (fewer samples): it must survive the fault intact
        earlier = [*argv_for(stage, inputs, out, case / "old-cache", fast=True)]
        earlier += ["generate.samples=2"] if stage == "generate" else ["eval.samples=1"]
        assert cli(*earlier)[0] == 0
        old = snapshot(out)
        monkeypatch.setattr(os, "fsync", DiskFull(at))
        rc, _, err = cli(*argv_for(stage, inputs, out, cache, fast=True))
        monkeypatch.setattr(os, "fsync", real_fsync)
        assert rc == 1, err
        line = error_line(err)
        assert "no space left on device" in line and "run the same command again" in line
        where = "cache" if at <= n - outputs else "output"
        assert str(cache_file(cache) if where == "cache" else out) in line
        assert not temp_leftovers(out)
        now = snapshot(out)
        assert now.keys() == old.keys()
        for name, data in now.items():  # each file is the old one or a complete new one
            if data != old[name]:
                assert name in OUTPUTS[stage] and data == ref["bytes"][name], name
        assert now["manifest.json"] == old["manifest.json"]  # the stage is not marked done
        keys, cut, _ = read_cache(cache)
        assert cut <= 1 and sum(keys.values()) == len(keys)
        rc, _, err = cli(*argv_for(stage, inputs, out, cache, fast=True))
        assert rc == 0, err
        assert_same_outputs(stage, out, ref)
        paid = json.loads((out / "manifest.json").read_text())["outputs"]
        paid = paid.get("teacher_calls", paid.get("calls"))
        assert paid == ref["samples"] - len(keys)
        figures.add(test=f"disk full {stage}", fsync_call=at, of=n, where=where, cached_before_fault=len(keys),
                    cut_lines=cut, resumed_paid=paid, samples_total=ref["samples"], rows_lost=0,
                    replaced_by_complete_new=sorted(k for k in old if now[k] != old[k]))


# --- two runs, one cache ---------------------------------------------------------------------------


@pytest.mark.parametrize("trial", range(3))
def test_two_runs_sharing_a_cache_lose_and_duplicate_nothing(trial, tmp_path, figures):
    rng = random.Random(SEED + trial)
    first, overlap = 30, rng.choice([10, 20, 30])
    a = write_jsonl(tmp_path / "a.jsonl", problem_rows(first))
    b = write_jsonl(tmp_path / "b.jsonl", problem_rows(first, start=first - overlap))
    shared = tmp_path / "shared"
    alone = {}
    for name, probs in (("a", a), ("b", b)):  # each run alone, for the expected bytes and keys
        done = run("generate", "--problems", probs, "--out", tmp_path / f"alone-{name}",
                   f"generate.cache_dir={tmp_path}/alone-cache-{name}", *GENERATE)
        assert done.returncode == 0, done.stderr
        alone[name] = set(read_cache(tmp_path / f"alone-cache-{name}")[0])
    children = {name: Child("generate", "--problems", probs, "--out", tmp_path / f"run-{name}",
                            f"generate.cache_dir={shared}", *GENERATE) for name, probs in (("a", a), ("b", b))}
    for name, child in children.items():
        assert child.finish() == 0, child.stderr
    for name in children:
        assert ((tmp_path / f"run-{name}" / "traces.jsonl").read_bytes()
                == (tmp_path / f"alone-{name}" / "traces.jsonl").read_bytes())
    keys, corrupt, headers = read_cache(shared)
    expected = alone["a"] | alone["b"]
    lost, extra = expected - set(keys), set(keys) - expected
    duplicates = sum(keys.values()) - len(keys)
    assert (lost, extra, duplicates, corrupt, headers) == (set(), set(), 0, 0, 1)
    paid = {n: json.loads(c.stdout)["teacher_calls"] for n, c in children.items()}
    figures.add(test="two runs, one cache", trial=trial, shared_samples=len(alone["a"] & alone["b"]),
                samples_union=len(expected), paid_a=paid["a"], paid_b=paid["b"],
                paid_twice=paid["a"] + paid["b"] - len(expected), lines_written=sum(keys.values()),
                duplicates=duplicates, lost=len(lost), cut_lines=corrupt)
