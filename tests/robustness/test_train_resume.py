"""Training resumes: a run interrupted after step k continues from its newest checkpoint and ends
with the weights of an uninterrupted run, for every objective.

The interruption is deterministic: a ``Killed`` (a ``BaseException``, so no handler of the CLI
turns it into a clean exit, as none runs on a kill -9) raised at the start of step k + 1, after
step k's checkpoint (if one was due) is on disk. One test kills a real ``reasondistill train``
subprocess with SIGKILL once a checkpoint appears. The figures (kill step, the step resumed
from, steps redone, max abs weight difference) go to the ``figures`` fixture.
"""

from __future__ import annotations

import json
import random
import re
import signal
import time
from pathlib import Path

import pytest

from reasondistill.train import base, checkpoints

from .conftest import Child, error_line, run, write_jsonl

STEPS = 8
BATCH = 2
INTERVAL = 2  # train.checkpoint_steps: exact (the default fraction may skip a save that costs too much)
TOLERANCE = 1e-4
COMMON = [f"train.max_steps={STEPS}", f"train.batch_size={BATCH}", "train.logging_steps=1", "train.dtype=float32",
          "train.device=cpu", "train.max_length=64", "train.learning_rate=1e-2", "train.warmup_ratio=0.25",
          f"train.checkpoint_steps={INTERVAL}"]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models train several times faster on one thread than on two contended ones."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Killed(BaseException):
    """The test's kill: not an ``Exception``, so nothing on the way up handles it."""


def kill_at(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """Make the next training raise :class:`Killed` as step ``step + 1`` begins."""
    make = checkpoints.checkpoint_callback

    def patched(cfg, trainer):
        callback = make(cfg, trainer)
        own_begin = callback.on_step_begin

        def on_step_begin(args, state, control, **kw):
            if state.global_step == step:
                raise Killed(step)
            return own_begin(args, state, control, **kw)

        callback.on_step_begin = on_step_begin
        return callback

    monkeypatch.setattr(checkpoints, "checkpoint_callback", patched)


def weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file
    return load_file(str(model_dir / "model.safetensors"))


def max_diff(a: Path, b: Path) -> float:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    return max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)


# --- data for every objective ----------------------------------------------------------------------


def messages(i: int) -> list[dict]:
    return [{"role": "user", "content": f"What is {i} + 2?"}]


def answer(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


@pytest.fixture(scope="module")
def data(tiny_model_dir, tmp_path_factory) -> dict[str, Path]:
    """Curated examples (with a teacher logprob store for KD), preference pairs and problems, 8 each."""
    from reasondistill.backends.base import Request, SamplingParams
    from reasondistill.backends.transformers import TransformersBackend
    from reasondistill.logprobs import LogprobWriter
    from reasondistill.records import Problem
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("resume-data")
    n = 8
    curated = [{"prompt": messages(i), "completion": answer(f"{i} plus 2 is {i + 2}.\nAnswer: {i + 2}"),
                "meta": {"problem_id": f"p{i}"}} for i in range(n)]
    pairs = [{"prompt": messages(i), "chosen": answer(f"Answer: {i + 2}"), "rejected": answer(f"Answer: {i + 3}"),
              "meta": {"problem_id": f"p{i}"}} for i in range(n)]
    problems = [{"id": f"p{i}", "source": "t", "prompt": f"What is {i} + 2?", "answer": str(i + 2)} for i in range(n)]
    # KD: the tiny model as teacher, writing digits only (each its own token: the text re-tokenizes to its ids)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    teacher = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    digits = set(tok.convert_tokens_to_ids(list("0123456789")))
    teacher.generation_config.suppress_tokens = [i for i in range(len(tok)) if i not in digits]
    backend = TransformersBackend.from_model(teacher, tok, name="tiny-teacher")
    reqs = [Request(Problem(f"p{i}", "t", f"What is {i} + 2?", str(i + 2)), tuple(messages(i)), 0) for i in range(n)]
    comps = backend.complete(reqs, SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=8, top_logprobs=4))
    kd_rows = []
    with LogprobWriter(root / "logprobs", 4, vocab_size=len(tok)) as w:
        for r, c in zip(reqs, comps):
            trace_id = f"{r.problem.id}/tiny-teacher/s0"
            w.add_completion(trace_id, c.logprobs)
            kd_rows.append({"prompt": list(r.messages), "completion": answer(c.text.strip()),
                            "meta": {"problem_id": r.problem.id, "trace_id": trace_id}})
    return {"curated": write_jsonl(root / "curated.jsonl", curated), "pairs": write_jsonl(root / "pairs.jsonl", pairs),
            "problems": write_jsonl(root / "problems.jsonl", problems),
            "kd": write_jsonl(root / "kd.jsonl", kd_rows), "logprobs": root / "logprobs"}


def argv(method: str, data: dict[str, Path], out: Path, student: Path) -> list:
    """``reasondistill train METHOD ...`` on the objective's data, few steps, a checkpoint every 2."""
    teacher = f"train.objective.teacher={student}"
    grpo = "{num_generations: 2, max_completion_length: 4}"
    own = {"sft": ["--data", data["curated"]],
           "multitask": ["--data", data["curated"]],
           "kd": ["--data", data["kd"], "--logprobs", data["logprobs"], "train.objective.top_k=4"],
           "gkd": ["--data", data["curated"], teacher, "train.objective.lmbda=0.5",
                   "train.objective.max_new_tokens=4", "train.objective.teacher_dtype=float32"],
           "negative-advantage": ["--data", data["curated"], "train.objective.max_new_tokens=4"],
           "dpo": ["--data", data["pairs"]], "simpo": ["--data", data["pairs"]], "redi": ["--data", data["pairs"]],
           "grpo": ["--data", data["problems"], "train.objective.num_generations=2",
                    "train.objective.max_completion_length=4"],
           "kdrl": ["--data", data["problems"], teacher, "train.objective.teacher_dtype=float32",
                    f"train.objective.grpo={grpo}"]}[method]
    # the objective's own run resumes here (an on-policy one's SFT warm start is a run like sft's)
    return ["train", method, "--out", out, f"train.student={student}", "train.warm_start=none", *COMMON, *own]


OBJECTIVES = ["sft", "kd", "gkd", "negative-advantage", "multitask", "dpo", "simpo", "redi", "grpo", "kdrl"]


@pytest.mark.parametrize("method", OBJECTIVES)
def test_interrupted_training_resumes_to_the_uninterrupted_weights(method, data, tiny_model_dir, tmp_path, cli,
                                                                  monkeypatch, figures):
    rc, _, err = cli(*argv(method, data, tmp_path / "whole", tiny_model_dir))
    assert rc == 0, err
    whole = json.loads((tmp_path / "whole" / "manifest.json").read_text())["outputs"]
    assert whole["steps"] == STEPS and whole["resumed_from_step"] == 0
    assert not (tmp_path / "whole" / checkpoints.SCRATCH).exists()  # cleaned after the finish

    k = random.Random(method).randrange(INTERVAL, STEPS)  # killed after step k: 2..7, past a checkpoint
    out = tmp_path / "cut"
    with monkeypatch.context() as m:
        kill_at(m, k)
        with pytest.raises(Killed):
            cli(*argv(method, data, out, tiny_model_dir))
    assert not (out / "manifest.json").exists() and not (out / base.MODEL_DIR).exists()
    saved = [step for step, f in checkpoints.checkpoint_dirs(out / checkpoints.SCRATCH)]
    assert saved == ([k // INTERVAL * INTERVAL] if k >= INTERVAL else []), saved  # checkpoint_keep=1

    rc, _, err = cli(*argv(method, data, out, tiny_model_dir))
    assert rc == 0, err
    resumed = json.loads((out / "manifest.json").read_text())["outputs"]
    assert resumed["steps"] == STEPS and resumed["resumed_from_step"] == k // INTERVAL * INTERVAL
    redone = k - resumed["resumed_from_step"]
    assert redone < INTERVAL
    diff = max_diff(tmp_path / "whole" / base.MODEL_DIR, out / base.MODEL_DIR)
    assert diff <= TOLERANCE, diff
    assert not (out / checkpoints.SCRATCH).exists()
    loss = [json.loads(x)["step"] for x in (out / base.LOSS_LOG).read_text().splitlines()]
    assert loss == list(range(1, STEPS + 1))  # the log of the steps before the checkpoint is kept, none twice
    figures.add(test="train resume", objective=method, steps_total=STEPS, checkpoint_every=INTERVAL, kill_step=k,
                resumed_from=resumed["resumed_from_step"], steps_redone=redone, max_abs_weight_diff=diff)


# train.average_last is what a run trains too: a checkpoint without the mean is not continued as one with it
@pytest.mark.parametrize("change", ["train.learning_rate=5e-3", "train.average_last=0.5"])
def test_a_changed_config_starts_fresh_instead_of_resuming(change, data, tiny_model_dir, tmp_path, cli, monkeypatch,
                                                           caplog):
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        kill_at(m, 5)
        with pytest.raises(Killed):
            cli(*argv("sft", data, out, tiny_model_dir))
    assert [s for s, _ in checkpoints.checkpoint_dirs(out / checkpoints.SCRATCH)] == [4]
    rc, _, err = cli(*argv("sft", data, out, tiny_model_dir), change)
    assert rc == 0, err
    assert "another config or other inputs; starting fresh" in caplog.text
    assert json.loads((out / "manifest.json").read_text())["outputs"]["resumed_from_step"] == 0


def test_changed_checkpoint_settings_still_resume(data, tiny_model_dir, tmp_path, cli, monkeypatch):
    """How often a run saves is not what it trains: the resume goes on, the interval changes."""
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        kill_at(m, 3)
        with pytest.raises(Killed):
            cli(*argv("sft", data, out, tiny_model_dir), "train.checkpoint_keep=2")
    assert [s for s, _ in checkpoints.checkpoint_dirs(out / checkpoints.SCRATCH)] == [2]
    rc, _, err = cli(*argv("sft", data, out, tiny_model_dir), "train.checkpoint_steps=3")
    assert rc == 0, err
    assert json.loads((out / "manifest.json").read_text())["outputs"]["resumed_from_step"] == 2


def test_a_checkpoint_cut_off_while_saving_is_not_resumed_from(data, tiny_model_dir, tmp_path, cli, monkeypatch):
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        kill_at(m, 7)
        with pytest.raises(Killed):
            cli(*argv("sft", data, out, tiny_model_dir), "train.checkpoint_keep=2")
    scratch = out / checkpoints.SCRATCH
    assert [s for s, _ in checkpoints.checkpoint_dirs(scratch)] == [4, 6]
    (scratch / "checkpoint-6" / checkpoints.COMPLETE).unlink()  # as if killed mid-save
    rc, _, err = cli(*argv("sft", data, out, tiny_model_dir))
    assert rc == 0, err
    assert json.loads((out / "manifest.json").read_text())["outputs"]["resumed_from_step"] == 4


# --- a real kill -9 of `reasondistill train` ------------------------------------------------------------

LONG = 30


def steps_done(stderr: str) -> int:
    found = re.findall(rf"(\d+)/{LONG} \[", stderr)
    return int(found[-1]) if found else 0


def test_kill_9_of_the_cli_resumes_from_the_last_checkpoint(data, tiny_model_dir, tmp_path, cli, figures):
    args = [*argv("sft", data, tmp_path / "out", tiny_model_dir), f"train.max_steps={LONG}", "train.checkpoint_steps=5"]
    ref = [*argv("sft", data, tmp_path / "whole", tiny_model_dir), f"train.max_steps={LONG}",
           "train.checkpoint_steps=5"]
    rc, _, err = cli(*ref)
    assert rc == 0, err
    scratch = tmp_path / "out" / checkpoints.SCRATCH
    child = Child(*args)
    deadline = time.time() + 240
    while child.alive() and time.time() < deadline and not list(scratch.glob(f"checkpoint-*/{checkpoints.COMPLETE}")):
        time.sleep(0.01)
    assert child.alive(), "training finished before the kill: " + child.stderr[-1500:]
    child.proc.send_signal(signal.SIGKILL)
    assert child.finish() == -signal.SIGKILL
    at_kill = steps_done(child.stderr)
    done = run(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    resumed = json.loads((tmp_path / "out" / "manifest.json").read_text())["outputs"]["resumed_from_step"]
    assert resumed >= 5 and resumed % 5 == 0
    assert 0 <= at_kill - resumed < 5 or at_kill == 0  # the progress bar may lag the kill
    diff = max_diff(tmp_path / "whole" / base.MODEL_DIR, tmp_path / "out" / base.MODEL_DIR)
    assert diff <= TOLERANCE, diff
    figures.add(test="train resume, kill -9 of the CLI", objective="sft", steps_total=LONG, checkpoint_every=5,
                kill_step=at_kill, resumed_from=resumed, steps_redone=max(at_kill - resumed, 0),
                max_abs_weight_diff=diff)


# --- a loop's retrain: last carries the optimizer ---------------------------------------------------------


def test_loop_retrain_last_starts_round_2_from_round_1s_optimizer_state(tiny_model_dir, tmp_path, monkeypatch):
    import torch

    from reasondistill import loop
    from reasondistill.config import Recipe, build

    recipe = build(Recipe, {
        "name": "carry",
        "problems": {"task": "chain_sum", "task_config": {"min_terms": 2, "max_terms": 2, "max_digits": 1},
                     "n_train": 4, "n_eval": 2},
        "teacher": {"backend": "dummy", "options": {"accuracy": 1.0}},
        "generate": {"samples": 1, "rationalize": False, "max_new_tokens": 8, "cache_dir": str(tmp_path / "cache")},
        "train": {"student": str(tiny_model_dir), "max_steps": 2, "batch_size": 2, "dtype": "float32",
                  "device": "cpu", "max_length": 128},
        "eval": {"models": ["student_after"], "max_new_tokens": 4, "batch_size": 8, "dtype": "float32",
                 "device": "cpu"},
        "report": {"formats": ["md"]},
        "loop": {"rounds": 2, "student_samples": 0, "retrain": "last"},
    })
    loaded = []
    real = checkpoints.load_optimizer_state

    def spy(optimizer, path):
        real(optimizer, path)
        loaded.append((str(path), {i: {k: v.clone() for k, v in s.items()}
                                   for i, s in optimizer.state_dict()["state"].items()}))
    monkeypatch.setattr(checkpoints, "load_optimizer_state", spy)
    out = tmp_path / "loop"
    result = loop.run(recipe, out)
    assert [r["round"] for r in result["rounds"]] == [1, 2]
    saved1 = out / "round-1" / "train" / checkpoints.OPTIMIZER
    m1 = json.loads((out / "round-1" / "train" / "manifest.json").read_text())
    m2 = json.loads((out / "round-2" / "train" / "manifest.json").read_text())
    assert checkpoints.OPTIMIZER in m1["outputs"]["files"]  # hashed: a lost file retrains round 1
    assert m2["config"]["init_optimizer"] == str(saved1) and m1["config"]["init_optimizer"] is None
    # round 2 loaded exactly round 1's final moments before its first step...
    assert [p for p, _ in loaded] == [str(saved1)]
    state1 = torch.load(saved1, weights_only=True)["state"]
    at_start = loaded[0][1]
    assert at_start.keys() == state1.keys() and len(state1) > 0
    for i, s in state1.items():
        for k, v in s.items():
            assert torch.equal(at_start[i][k], v), (i, k)
    # ...and went on counting from them: Adam's step is round 1's 2 plus round 2's 2
    state2 = torch.load(out / "round-2" / "train" / checkpoints.OPTIMIZER, weights_only=True)["state"]
    assert {float(s["step"]) for s in state1.values()} == {2.0}
    assert {float(s["step"]) for s in state2.values()} == {4.0}


# --- when to save -------------------------------------------------------------------------------------


def test_checkpoint_interval_and_the_overhead_cap():
    from reasondistill.config import TrainConfig

    assert checkpoints.interval(TrainConfig(max_steps=100), 100) == 10  # default: every 10% of the steps
    assert checkpoints.interval(TrainConfig(max_steps=7, checkpoint_every=0.1), 7) == 1
    assert checkpoints.interval(TrainConfig(max_steps=100, checkpoint_steps=3), 100) == 3
    assert checkpoints.interval(TrainConfig(max_steps=100, checkpoint_every=0), 100) == 0
    assert checkpoints.interval(TrainConfig(max_steps=100, checkpoint_minutes=5), 100) == 0  # by the clock
    # the default fraction skips a save that would take over 10% of the time: 3 s saves after 20 s of training
    assert not checkpoints.affordable(3.0, 20.0) and checkpoints.affordable(3.0, 27.0)
    assert checkpoints.affordable(0.0, 0.0)  # the first save: its cost is not known yet


@pytest.mark.parametrize("override,field", [
    ("train.checkpoint_every=1.5", "train.checkpoint_every"),
    ("train.checkpoint_keep=0", "train.checkpoint_keep"),
    ("train.checkpoint_minutes=-1", "train.checkpoint_minutes"),
    ("train.packing=maybe", "train.packing"),
    ("train.compile=maybe", "train.compile"),
])
def test_bad_checkpoint_settings_are_one_error_line(override, field, data, tiny_model_dir, tmp_path, cli):
    rc, _, err = cli(*argv("sft", data, tmp_path / "out", tiny_model_dir), override)
    assert rc == 2 and field in error_line(err)
    assert not (tmp_path / "out").exists()


def test_steps_and_minutes_together_are_refused(data, tiny_model_dir, tmp_path, cli):
    rc, _, err = cli(*argv("sft", data, tmp_path / "out", tiny_model_dir), "train.checkpoint_minutes=5")
    assert rc == 2 and "set one of them" in error_line(err)


# --- under --launch: two CPU processes over gloo ----------------------------------------------------------


@pytest.mark.slow
def test_kill_9_of_a_two_process_ddp_training_resumes(data, tiny_model_dir, tmp_path, figures):
    import subprocess

    from .conftest import command, env

    def args(out):
        return [*argv("sft", data, out, tiny_model_dir), f"train.max_steps={LONG}", "train.checkpoint_steps=5",
                "--launch", "ddp", "--num-processes", "2"]

    whole = run(*args(tmp_path / "whole"), timeout=600)
    assert whole.returncode == 0, whole.stderr[-3000:]
    scratch = tmp_path / "out" / checkpoints.SCRATCH
    proc = subprocess.Popen(command(*args(tmp_path / "out")), env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    marks = f"checkpoint-*/{checkpoints.COMPLETE}"
    while proc.poll() is None and time.time() < deadline and not list(scratch.glob(marks)):
        time.sleep(0.01)
    assert proc.poll() is None, "training finished before the kill"
    # the launcher and both ranks (torch's elastic agent starts each rank in a session of its own)
    import psutil
    tree = psutil.Process(proc.pid)
    for p in [tree, *tree.children(recursive=True)]:
        p.send_signal(signal.SIGKILL)
    proc.wait()
    done = run(*args(tmp_path / "out"), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = json.loads((tmp_path / "out" / "manifest.json").read_text())["outputs"]["resumed_from_step"]
    assert resumed >= 5 and resumed % 5 == 0, [ln for ln in done.stderr.splitlines() if "train:" in ln]
    diff = max_diff(tmp_path / "whole" / base.MODEL_DIR, tmp_path / "out" / base.MODEL_DIR)
    assert diff <= TOLERANCE, diff
    figures.add(test="train resume, kill -9 of --launch ddp (2 CPU processes)", objective="sft", steps_total=LONG,
                checkpoint_every=5, resumed_from=resumed, max_abs_weight_diff=diff)


def test_grpo_saves_only_where_a_generation_starts(data, tiny_model_dir, tmp_path, cli, monkeypatch):
    """With ``num_iterations: 2`` each sampled batch trains two steps; its samples are not in a
    checkpoint, so a save due after the first of them waits for the next generation."""
    extra = ["train.checkpoint_steps=1", "train.objective.num_iterations=2"]
    rc, _, err = cli(*argv("grpo", data, tmp_path / "whole", tiny_model_dir), *extra)
    assert rc == 0, err
    out = tmp_path / "cut"
    with monkeypatch.context() as m:
        kill_at(m, 5)
        with pytest.raises(Killed):
            cli(*argv("grpo", data, out, tiny_model_dir), *extra)
    assert [s for s, _ in checkpoints.checkpoint_dirs(out / checkpoints.SCRATCH)] == [4]  # not 5: mid-generation
    rc, _, err = cli(*argv("grpo", data, out, tiny_model_dir), *extra)
    assert rc == 0, err
    assert json.loads((out / "manifest.json").read_text())["outputs"]["resumed_from_step"] == 4
    assert max_diff(tmp_path / "whole" / base.MODEL_DIR, out / base.MODEL_DIR) <= TOLERANCE


def test_a_missing_or_foreign_optimizer_state_is_one_error_line(data, tiny_model_dir, tmp_path, cli):
    import torch

    missing = tmp_path / "nowhere" / "optimizer.pt"
    rc, _, err = cli(*argv("sft", data, tmp_path / "a", tiny_model_dir), f"train.init_optimizer={missing}")
    assert rc == 2 and str(missing) in error_line(err) and "train.init_optimizer" in error_line(err)
    foreign = tmp_path / "foreign.pt"
    w = torch.nn.Parameter(torch.zeros(3, 3))
    opt = torch.optim.AdamW([w])
    w.grad = torch.ones(3, 3)
    opt.step()
    torch.save(opt.state_dict(), foreign)
    rc, _, err = cli(*argv("sft", data, tmp_path / "b", tiny_model_dir), f"train.init_optimizer={foreign}")
    assert rc == 2 and "for other parameters" in error_line(err) and str(foreign) in error_line(err)
    assert not (tmp_path / "b" / "manifest.json").exists()


# --- tail weight averaging (train.average_last) ------------------------------------------------------------


def record_means(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Every set of weights the tail mean takes in, as copies (the test's own reference mean)."""
    from reasondistill.train import averaging

    seen: list[dict] = []
    update = averaging.RunningMean.update

    def recording(self, named):
        seen.append({k: v.detach().float().clone() for k, v in named.items()})
        return update(self, named)

    monkeypatch.setattr(averaging.RunningMean, "update", recording)
    return seen


def test_average_last_saves_the_mean_of_the_tail_steps_weights(data, tiny_model_dir, tmp_path, cli, monkeypatch):
    rc, _, err = cli(*argv("sft", data, tmp_path / "last", tiny_model_dir))
    assert rc == 0, err
    with monkeypatch.context() as m:
        seen = record_means(m)
        rc, _, err = cli(*argv("sft", data, tmp_path / "avg", tiny_model_dir), "train.average_last=0.5")
    assert rc == 0, err
    assert len(seen) == STEPS // 2  # steps 5..8 of 8
    outputs = json.loads((tmp_path / "avg" / "manifest.json").read_text())["outputs"]
    assert outputs["averaged_steps"] == STEPS // 2
    saved = weights(tmp_path / "avg" / base.MODEL_DIR)
    last = weights(tmp_path / "last" / base.MODEL_DIR)
    # the last step's weights are those of the run without averaging (same seed, same order)
    assert max(float((seen[-1][k] - last[k].float()).abs().max()) for k in seen[-1] if k in last) <= TOLERANCE
    moved = 0.0
    for name, tensor in saved.items():
        if name not in seen[0]:
            continue  # a tied head is saved once
        mean = sum(step[name] for step in seen) / len(seen)
        assert float((tensor.float() - mean).abs().max()) <= TOLERANCE, name
        moved = max(moved, float((tensor.float() - last[name].float()).abs().max()))
    assert moved > 10 * TOLERANCE  # the mean is not the last step's weights
    assert "averaged_steps" not in json.loads((tmp_path / "last" / "manifest.json").read_text())["outputs"]


@pytest.mark.parametrize("kill", [3, 7])  # before the tail began (empty mean saved), and inside it
def test_average_last_resumes_to_the_uninterrupted_mean(kill, data, tiny_model_dir, tmp_path, cli, monkeypatch):
    avg = "train.average_last=0.5"
    rc, _, err = cli(*argv("sft", data, tmp_path / "whole", tiny_model_dir), avg)
    assert rc == 0, err
    out = tmp_path / "cut"
    with monkeypatch.context() as m:
        kill_at(m, kill)
        with pytest.raises(Killed):
            cli(*argv("sft", data, out, tiny_model_dir), avg)
    rc, _, err = cli(*argv("sft", data, out, tiny_model_dir), avg)
    assert rc == 0, err
    outputs = json.loads((out / "manifest.json").read_text())["outputs"]
    assert outputs["resumed_from_step"] == kill // INTERVAL * INTERVAL and outputs["averaged_steps"] == STEPS // 2
    diff = max_diff(tmp_path / "whole" / base.MODEL_DIR, out / base.MODEL_DIR)
    assert diff <= TOLERANCE, diff



def test_average_last_with_lora_averages_the_adapters_before_the_merge(data, tiny_model_dir, tmp_path, cli,
                                                                       monkeypatch):
    lora = ["train.lora=true", "train.lora_r=4", "train.lora_alpha=8"]
    rc, _, err = cli(*argv("sft", data, tmp_path / "last", tiny_model_dir), *lora)
    assert rc == 0, err
    with monkeypatch.context() as m:
        seen = record_means(m)
        rc, _, err = cli(*argv("sft", data, tmp_path / "avg", tiny_model_dir), *lora, "train.average_last=0.5")
    assert rc == 0, err
    assert len(seen) == STEPS // 2 and seen[0] and all("lora_" in name for name in seen[0])  # the adapters only
    saved, last = weights(tmp_path / "avg" / base.MODEL_DIR), weights(tmp_path / "last" / base.MODEL_DIR)
    assert saved.keys() == last.keys() and not any("lora_" in k for k in saved)  # merged into plain weights
    assert max(float((saved[k].float() - last[k].float()).abs().max()) for k in saved) > 10 * TOLERANCE
