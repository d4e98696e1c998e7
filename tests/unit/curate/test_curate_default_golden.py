"""The default recipe's curated output is pinned: a default-config run over a fixed set of hand-made
problems, traces and verdicts must reproduce ``tests/fixtures/curate_default/`` byte for byte.

The expected files were written by the curate stage before the curation switches of issue 10
existed; a switch whose default changes what the default recipe trains on fails here. Regenerate
(only when a change of the default output is intended) with
``python -m tests.unit.curate.test_curate_default_golden``."""

from __future__ import annotations

from pathlib import Path

from reasondistill import curate as curate_stage
from reasondistill.config import CurateConfig
from reasondistill.io import write_jsonl
from reasondistill.records import Problem, Trace, Verdict

from tests.helpers import recipe, stage_layout

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "curate_default"
FILES = ("train.jsonl", "negatives.jsonl", "rejected.jsonl", "pass_rates.jsonl")
PAD = " First I read the question, then I work it out step by step."


def _t(tid, pid, raw, *, teacher="alpha", idx=0, hinted=False, finish="stop", tokens=None):
    return Trace(id=tid, problem_id=pid, teacher=teacher, sample_idx=idx, reasoning=raw, answer_text="", raw=raw,
                 finish_reason=finish, usage={"completion_tokens": tokens if tokens is not None else len(raw.split())},
                 hinted=hinted)


PROBLEMS = [
    Problem("p1", "hand", "What is 1 + 1?", "2"),
    Problem("p2", "hand", "What is 3 + 4?", "7"),
    Problem("p3", "hand", "Capital of France?", "Paris"),
    Problem("p4", "hand", "What is 10 - 3?", "7"),
    Problem("p5", "hand", "What is 2 * 6?", "12"),
    Problem("p6", "hand", "Never sampled?", "0"),
]
TRACES = [  # (trace, passed)
    (_t("p1/alpha/s0", "p1", "1 + 1 = 2" + PAD + "\nAnswer: 2"), True),
    (_t("p1/alpha/s1", "p1", "1+1=2\nAnswer: 2", idx=1), True),
    (_t("p1/beta/s0", "p1", "  1+1=2\n\nanswer: 2 ", teacher="beta"), True),
    (_t("p1/beta/s1", "p1", "One and one make two.\nAnswer: 2", teacher="beta", idx=1), True),
    (_t("p1/beta/s2", "p1", "1+1=3\nAnswer: 3", teacher="beta", idx=2), False),
    (_t("p2/alpha/s0", "p2", "3+4=8\nAnswer: 8"), False),
    (_t("p2/alpha/s1", "p2", "3+4=8\nAnswer: 8", idx=1), False),
    (_t("p2/alpha/h2", "p2", "The answer is 7 because 3+4=7.\nAnswer: 7", idx=2, hinted=True), True),
    (_t("p2/beta/s0", "p2", "3 plus 4" + PAD * 4, teacher="beta", finish="length"), False),
    (_t("p3/alpha/s0", "p3", "Paris is the capital.\nAnswer: Paris"), True),
    (_t("p3/alpha/s1", "p3", "It is Paris", idx=1), True),
    (_t("p3/alpha/s2", "p3", "", idx=2, finish="error"), False),
    (_t("p3/beta/s0", "p3", "Lyon.\nAnswer: Lyon", teacher="beta"), False),
    (_t("p4/alpha/s0", "p4", "10 - 3 = 7" + PAD * 2 + "\nAnswer: 7"), True),
    (_t("p4/alpha/s1", "p4", "10 - 3 = 7" + PAD * 2 + "\nAnswer: 7", idx=1, finish="length"), True),
    (_t("p4/beta/s0", "p4", "Take 3 from 10 to get 7.\nAnswer: 7", teacher="beta"), True),
    (_t("p4/beta/s1", "p4", "Take 3 from 10 to get 7.\n\\boxed{7}", teacher="beta", idx=1), True),
    (_t("p5/alpha/s0", "p5", "2*6=12\nAnswer: 12"), True),
    (_t("p5/alpha/s1", "p5", "2*6=11\nAnswer: 11", idx=1), False),
    (_t("p5/alpha/s2", "p5", "2*6=10\nAnswer: 10", idx=2), False),
    (_t("p5/alpha/s3", "p5", "2*6=11\nanswer: 11", idx=3), False),
]


def write_inputs(folder: Path) -> tuple[Path, Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "problems.jsonl", folder / "traces.jsonl", folder / "verdicts.jsonl"
    write_jsonl(paths[0], PROBLEMS)
    write_jsonl(paths[1], [t for t, _ in TRACES])
    write_jsonl(paths[2], [Verdict(t.id, t.problem_id, "math", float(ok), ok, "correct" if ok else "wrong")
                           for t, ok in TRACES])
    return paths


def run_default(folder: Path, cfg: CurateConfig | None = None) -> tuple[dict, Path]:
    problems, traces, verdicts = write_inputs(folder / "in")
    out = folder / "curate"
    manifest = curate_stage.run(recipe(curate=cfg or CurateConfig()),
                                stage_layout(out, "curate", train_problems=problems, traces=traces, verdicts=verdicts))
    return manifest, out


def test_default_curated_files_are_unchanged(tmp_path):
    _, out = run_default(tmp_path)
    for name in FILES:
        assert (out / name).read_bytes() == (GOLDEN / name).read_bytes(), name


if __name__ == "__main__":
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        _, out = run_default(Path(d))
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            shutil.copyfile(out / name, GOLDEN / name)
    print("wrote", GOLDEN)
