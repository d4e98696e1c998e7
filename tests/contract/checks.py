"""One generic check per kind of table entry. ``test_tables.py`` runs them over every row of
every name table, ``test_toys.py`` over toy entries added as one file plus one row, so an
entry is held to its contract the moment it is added."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import tempfile
from pathlib import Path

import torch

from reasondistill.backends import backend_class, backend_options, build_backend
from reasondistill.backends.base import Backend, Completion, Request, SamplingParams
from reasondistill.config import CurateConfig, Recipe, BackendConfig, build, section_class
from reasondistill.curate import Row
from reasondistill.curate.base import CurateContext, GroupPolicy, Policy, judge, select_group, split
from reasondistill.io import write_jsonl
from reasondistill.layout import Layout
from reasondistill.records import Problem, Trace, Verdict
from reasondistill.registry import load

PROBLEM = Problem("p1", "contract", "What is 2 + 3?", "5", meta={"task": "chain_sum", "rg_entry": {
    "question": "What is 2 + 3?", "answer": "5", "metadata": {"expression": "2 + 3",
                                                              "source_dataset": "chain_sum"}}})


def check_backend(name: str, tiny_model_dir: Path | None = None, options: dict | None = None) -> None:
    """Options validate before a load; ``identity_of`` matches the built instance; ``complete`` and
    ``acomplete`` return one well-formed completion per request, in order; ``close`` is safe.
    ``options``: the row's ``teacher.options`` where it needs some (a server's address)."""
    cls = backend_class(name)
    assert issubclass(cls, Backend), f"{name}: not a Backend"
    assert dataclasses.is_dataclass(cls.Options), f"{name}: Options must be a dataclass"
    cfg = BackendConfig(backend=name, model=str(tiny_model_dir) if tiny_model_dir else "unused",
                        dtype="float32", device="cpu", batch_size=2, options=dict(options or {}))
    opts = backend_options(cfg)
    backend = build_backend(cfg)
    try:
        assert backend.identity == cls.identity_of(cfg, opts), f"{name}: identity_of disagrees with the instance"
        assert isinstance(backend.name, str) and backend.name
        assert backend.batch_size >= 1 and backend.max_concurrency >= 1
        reqs = [Request(PROBLEM, ({"role": "user", "content": PROBLEM.prompt},), i) for i in range(3)]
        greedy = SamplingParams(temperature=0.0, max_new_tokens=8)
        out = backend.complete(reqs, greedy)
        assert len(out) == 3 and all(isinstance(c, Completion) for c in out)
        for c in out:
            assert c.finish_reason in ("stop", "length", "error") and isinstance(c.text, str)
            assert c.completion_tokens >= 0 and c.prompt_tokens >= 0
        import asyncio
        again = asyncio.run(backend.acomplete(reqs[:1], greedy))
        assert len(again) == 1 and again[0].text == out[0].text, f"{name}: greedy acomplete differs from complete"
        vocab = backend.vocab_size
        assert vocab is None or vocab > 0
    finally:
        backend.close()
        backend.close()  # twice: idempotent


def check_student(name: str, model: Path | None, options: dict | None, tmp: Path) -> None:
    """A row that serves a teacher also evaluates a student (``eval.student_backend``): named, keyed
    and cached as the row's, and a finished evaluation is recognised before anything loads."""
    from reasondistill.config import build
    from reasondistill.evaluate import evaluate_model

    spec = str(model) if model else "unused"
    recipe = build(Recipe, {"train": {"student": spec}, "generate": {"cache_dir": str(tmp / "cache")},
                               "eval": {"student_backend": name, "student_options": dict(options or {}),
                                        "max_new_tokens": 8, "batch_size": 2, "dtype": "float32", "device": "cpu"}})
    layout = Layout(tmp / "run")
    layout.eval_problems.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(layout.eval_problems, [PROBLEM])
    first = evaluate_model(recipe, spec, "student_before", layout)
    summary = json.loads(layout.eval_file("student_before", "summary").read_text())
    assert first["outputs"]["n"] == 1 and summary["settings"]["model"]["backend"] == name, summary["settings"]
    local = backend_class(name).local_weights
    assert (summary["settings"]["model"]["spec"] is not None) == local, f"{name}: local_weights vs the spec hashed"
    again = evaluate_model(recipe, spec, "student_before", layout)
    assert again["this_run"] == {"skipped": True}, f"{name}: a finished student evaluation ran again"


def check_scorer(name: str, model: Path | None, options: dict | None, tokenizer) -> None:
    """A row that can score (``can_score``) is a live teacher: one result per item, in order, a
    logprob entry per completion token with its top-k best first, and the student's own ids
    scored as they are given; a row that cannot refuses with a ConfigError, naming the rows that can."""
    from reasondistill.backends import scoring_backends
    from reasondistill.backends.base import ScoreItem
    from reasondistill.errors import ConfigError

    cfg = BackendConfig(backend=name, model=str(model) if model else "unused", dtype="float32", device="cpu",
                        batch_size=2, options=dict(options or {}))
    backend = build_backend(cfg)
    texts = [ScoreItem(({"role": "user", "content": PROBLEM.prompt},), answer) for answer in ("Answer: 5", "2 + 3 = 5")]
    try:
        if not backend_class(name).can_score:
            assert name not in scoring_backends()
            try:
                backend.score(texts, 2)
            except ConfigError as e:
                assert "cannot score" in str(e) and ", ".join(scoring_backends()) in str(e)
                return
            raise AssertionError(f"{name}: scored without can_score")
        assert name in scoring_backends()
        backend.use_tokenizer(tokenizer)
        results = backend.score(texts, 2)
        assert len(results) == 2 and [len(r.token_ids) > 0 for r in results] == [True, True]
        for r in results:
            assert len(r.logprobs) == len(r.token_ids), f"{name}: one entry per completion token"
            for tid, e in zip(r.token_ids, r.logprobs):
                tops = [v for _, v in e["top"]]
                assert e["id"] == tid and e["logprob"] <= 1e-6 and 1 <= len(tops) <= 2 and tops == sorted(tops)[::-1]
        ids = results[1].token_ids
        [again] = backend.score([ScoreItem(texts[1].prompt, "", prompt_ids=tuple(ids[:1]),
                                           completion_ids=tuple(ids[1:]))], 2)
        assert again.token_ids == ids[1:], f"{name}: the student's ids must come back as given"
    finally:
        backend.close()


def check_verifier(name: str) -> None:
    """A right answer passes with score 1, a wrong one fails with score 0, a missing one fails."""
    from reasondistill.grading import Verifier, get_verifier

    v = get_verifier(name)
    assert isinstance(v, Verifier) and v.name == name
    right, wrong, none = (v.check(PROBLEM, text) for text in ("2 + 3 = 5\nAnswer: 5", "Answer: 6", ""))
    assert right.passed and right.score == 1.0, right
    assert not wrong.passed and wrong.score == 0.0, wrong
    assert not none.passed and 0.0 <= none.score <= 1.0


def _trace(tid: str, raw: str, **kw) -> Trace:
    return Trace(id=tid, problem_id=PROBLEM.id, teacher="t", sample_idx=0, reasoning=raw, answer_text="5", raw=raw,
                 finish_reason=kw.pop("finish_reason", "stop"), **kw)


def _prepare(policy, cfg: CurateConfig, traces: list[Trace], verdicts: dict[str, Verdict]) -> dict[str, Verdict]:
    """Run the optional whole-input hook as the stage would (a held-out set on disk, for policies
    that read it); the verdicts it leaves."""
    if not hasattr(policy, "prepare"):
        return verdicts
    with tempfile.TemporaryDirectory() as d:
        layout = Layout(Path(d))
        write_jsonl(layout.eval_problems, [Problem("e1", "contract", "What is 7 + 8?", "15")])
        ctx = CurateContext(recipe=Recipe(curate=cfg), layout=layout, problems={PROBLEM.id: PROBLEM},
                            traces=traces, verdicts=dict(verdicts))
        policy.prepare(ctx)
        assert set(ctx.verdicts) == set(verdicts), "prepare may re-grade verdicts, not add or remove them"
        return ctx.verdicts


def check_policy_row(row: Row) -> None:
    """A row's ``on`` settings build (their options through the row's section) and switch its
    policy on; a row with options names a ``curate:`` section whose class is the one it names."""
    cfg = build(CurateConfig, row.on, "curate")
    assert load(row.policy).from_config(cfg) is not None, f"{row.policy}: `on` {row.on} leaves it off"
    if row.section is None:
        assert row.options is None, "options without a section"
        return
    options = load(row.options)
    assert dataclasses.is_dataclass(options) and section_class(CurateConfig, row.section) is options
    assert isinstance(getattr(CurateConfig(), row.section), options), "the section's default is its options class's"


def check_policy(row: Row, cfg: CurateConfig | None = None) -> None:
    """``from_config`` gives an instance or None; ``prepare`` (when there is one) runs on the whole
    input; a per-trace policy keeps a clean correct trace and answers (bool, reason); a group
    policy keeps a subset of its input, in order, and gives a reason for every trace it drops;
    ``report`` is a JSON-able dict and ``keeps_problem`` a bool."""
    cls = load(row.policy)
    cfg = cfg or CurateConfig()
    policy = cls.from_config(cfg)
    if policy is None:
        return
    assert isinstance(policy.name, str) and policy.name
    good = _trace("good", "2 + 3 = 5\nAnswer: 5")
    verdict = Verdict("good", PROBLEM.id, "math", 1.0, True, "correct")
    traces = [good, _trace("dup", "2 + 3 = 5\nAnswer: 5"), _trace("long", "2 plus 3 makes 5, so\nAnswer: 5")]
    verdicts = _prepare(policy, cfg, traces, {t.id: dataclasses.replace(verdict, trace_id=t.id) for t in traces})
    if hasattr(policy, "report"):
        assert isinstance(policy.report(), dict) and json.dumps(policy.report())
    if hasattr(policy, "keeps_problem"):
        assert isinstance(policy.keeps_problem(PROBLEM.id), bool)
    per_trace, per_group = split([policy])
    if per_trace:
        assert isinstance(policy, Policy)
        assert judge(per_trace, PROBLEM, good, verdicts["good"]) == (True, "")
        return
    assert isinstance(policy, GroupPolicy) and set(policy.scope) <= {"train", "negatives"} and policy.scope
    for scope in policy.scope:
        kept, dropped = select_group([policy], scope, PROBLEM, list(traces), verdicts)
        assert [t.id for t in kept] == [t.id for t in traces if t in kept], "kept traces must keep their order"
        assert sorted(t.id for t in kept + [t for t, _ in dropped]) == sorted(t.id for t in traces)
        assert all(isinstance(reason, str) and reason for _, reason in dropped)


def check_loss(row) -> None:
    """A pure tensor function (student logits, teacher, mask, temperature, **options) -> a finite,
    differentiable scalar; zero when the student is the teacher; the same on a full-vocabulary
    teacher and on that teacher's exact top-k (k = V) sparse form, so offline KD and GKD agree.
    Its keyword-only options are the fields of the row's options class, with the same defaults."""
    from reasondistill.train.losses.base import SparseTeacher

    fn = load(row.loss)
    params = inspect.signature(fn).parameters
    assert list(params)[:3] == ["student_logits", "teacher", "mask"], f"{row.loss}: signature {list(params)}"
    keyword = {k: p.default for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    fields = {} if row.options is None else {f.name: f.default for f in dataclasses.fields(load(row.options))}
    assert keyword == fields, f"{row.loss}: keyword-only options {keyword} are not its options class's {fields}"
    torch.manual_seed(0)
    student = torch.randn(2, 5, 11, requires_grad=True)
    teacher = torch.randn(2, 5, 11)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    loss = fn(student, teacher, mask)
    assert loss.dim() == 0 and math.isfinite(loss.item()) and loss.item() > 0
    loss.backward()
    assert student.grad is not None and torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0
    assert abs(fn(teacher.clone(), teacher, mask).item()) < 1e-5
    logp = torch.log_softmax(teacher, dim=-1)
    top, ids = logp.topk(11, dim=-1)
    sparse = SparseTeacher(ids, top, torch.full(ids.shape[:-1], -1e4))
    assert abs(fn(student.detach(), sparse, mask).item() - fn(student.detach(), teacher, mask).item()) < 1e-3


def check_loss_options(name: str) -> None:
    """The row's options class (if any) is a frozen dataclass that builds with its defaults and,
    through the table (``check_options``, at recipe build time), refuses a bad value of each option
    with a :class:`ConfigError` naming ``section.option``; the function takes what it built."""
    from reasondistill.errors import ConfigError
    from reasondistill.train.losses import LOSSES, check_options, options_class

    cls = options_class(name)
    if cls is None:
        assert check_options("kd", name, {}) is None
        return
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, f"{name}: options must be frozen"
    default = cls()
    assert check_options("kd", name, {}) == default
    for f in dataclasses.fields(cls):
        for bad in ("x", None, -1e9, 1e9):
            try:
                check_options("kd", name, {f.name: bad})
            except ConfigError as e:
                assert str(e).startswith(f"kd.{f.name} "), f"{name}: {e} does not name kd.{f.name}"
                break
        else:
            raise AssertionError(f"{name}: no bad value of option {f.name!r} is refused")
    fn = load(LOSSES[name].loss)
    student, teacher = torch.randn(1, 3, 7), torch.randn(1, 3, 7)
    mask = torch.ones(1, 3, dtype=torch.bool)
    assert torch.isfinite(fn(student, teacher, mask, **dataclasses.asdict(default)))


def check_objective(name: str) -> None:
    """The row names a config dataclass (or none), a run function with the shared signature, an
    input kind the pipeline knows, and (optionally) a prompt hook giving ``{task: prefix}``."""
    from reasondistill.errors import ConfigError
    from reasondistill.layout import FILES
    from reasondistill.train import DATA_KINDS, OBJECTIVES, objective_config

    row = OBJECTIVES[name]
    assert row.data in DATA_KINDS and row.data in FILES, f"{name}: unknown input kind {row.data!r}"
    params = inspect.signature(load(row.run)).parameters
    positional = [p for p in params.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert len(positional) == 4, f"{name}: run(train_cfg, objective_cfg, data_path, out_dir, *, context)"
    assert "context" in params and params["context"].kind is inspect.Parameter.KEYWORD_ONLY
    try:
        cfg = objective_config(name, {})
    except ConfigError as e:  # a required option (e.g. gkd's teacher) is named in the error
        assert name in str(e) or "required" in str(e), e
        return
    if row.config is None:
        assert cfg is None
    else:
        assert dataclasses.is_dataclass(cfg)
    if row.prompts:
        prefixes = load(row.prompts)(cfg)
        assert prefixes and all(isinstance(k, str) and isinstance(v, str) and v for k, v in prefixes.items())


def check_task(name: str) -> None:
    """The task's row loads problems that name it (through the problems stage's dispatch), ``auto``
    picks the row's verifier for them, its prompt format shows the question, and its solver (when
    there is one) writes a rationale the verifier accepts."""
    from reasondistill.config import ProblemsConfig, PromptConfig, VerifyConfig
    from reasondistill.problems.base import load as load_problems
    from reasondistill.prompts import cot_prompt, format_answer
    from reasondistill.solvers import get_solver
    from reasondistill.tasks import TASKS
    from reasondistill.grading import get_verifier, pick_verifier, score_text

    row = TASKS[name]
    loaded = load_problems(ProblemsConfig(task=name, n_train=3, n_eval=1))
    assert len(loaded.train) == 3 and len(loaded.eval) == 1
    for problem in loaded.train:
        assert problem.meta["task"] == name
        assert pick_verifier(problem) == row.verifier and get_verifier("auto", problem) is get_verifier(row.verifier)
        assert problem.prompt in cot_prompt(problem, PromptConfig())
        assert not score_text(problem, "Answer: certainly not the answer", VerifyConfig()).passed
        if row.solver is not None:
            reasoning, answer = get_solver(name)(problem)
            assert reasoning.strip()
            assert score_text(problem, f"{reasoning}\n{format_answer(answer)}", VerifyConfig()).passed, problem.id


def check_source(name: str) -> None:
    """A problem source row names a callable taking a ProblemsConfig; ``problems.source: NAME``
    selects it, unless it is the row that reads paths."""
    from reasondistill.config import ProblemsConfig
    from reasondistill.problems import SOURCES
    from reasondistill.problems.base import source_kind

    row = SOURCES[name]
    fn = load(row.load)
    assert callable(fn) and len(inspect.signature(fn).parameters) == 1
    assert source_kind(ProblemsConfig(source=name)) == name
    assert sum(r.paths for r in SOURCES.values()) == 1, "exactly one row reads paths"


def check_mode(name: str) -> None:
    """A generation mode row names a ``Mode`` whose ``name`` is the row's; its switch (its own
    override, or ``generate.modes=[NAME]``) turns it on; a style mode writes a prompt that shows the
    question; with no probe answers it hints nothing; its manifest block is JSON-able."""
    from reasondistill.config import apply_overrides, build
    from reasondistill.generate import MODES, modes_for
    from reasondistill.generate.base import Mode

    cls = load(MODES[name])
    assert issubclass(cls, Mode) and cls.name == name, f"{name}: not a Mode named {name!r}"
    switch = cls.switch or f"generate.modes=[{name}]"
    recipe = build(Recipe, apply_overrides({}, [switch]))
    mode = next((m for m in modes_for(recipe.generate) if m.name == name), None)
    assert isinstance(mode, cls), f"{name}: {switch} does not turn it on"
    mode.start([PROBLEM], {})
    if cls.style:
        assert PROBLEM.prompt in mode.prompt(PROBLEM, recipe.generate.prompt)
    assert mode.hint(PROBLEM) is None  # no probe answers: nothing to hint
    assert mode.annotate(_trace("t", "Answer: 5")).id == "t"
    out = mode.outputs([])
    assert out is None or (isinstance(out, dict) and json.dumps(out))
