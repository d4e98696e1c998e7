"""The student's answers on the training problems (the probe stage's ``samples.jsonl``), grouped
per problem for SSB hints (``ssb.py``) and tailored learning (``tailored.py``)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from .. import io
from ..errors import ConfigError, InputError
from ..records import EvalSample, Problem
from ..grading.answers import normalize


@dataclass(frozen=True, slots=True)
class StudentAnswers:
    """One problem's probe samples, in sample order."""

    problem_id: str
    samples: tuple[EvalSample, ...]

    @property
    def pass_rate(self) -> float:
        return sum(s.passed for s in self.samples) / len(self.samples) if self.samples else 0.0

    def wrong(self) -> list[EvalSample]:
        """The failed samples that produced text (an errored request has nothing to show)."""
        return [s for s in self.samples if not s.passed and s.text.strip() and s.finish_reason != "error"]

    def most_common_wrong(self) -> tuple[str, EvalSample] | None:
        """``(answer, its first sample)`` for the most frequent wrong extracted answer (compared
        after normalisation; a tie goes to the answer seen first, so the greedy one when it is
        among them); None when no failed sample stated an answer."""
        stated = [s for s in self.wrong() if s.extracted and s.extracted.strip()]
        if not stated:
            return None
        votes = Counter(normalize(s.extracted) for s in stated)
        top = max(votes.values())
        first = next(s for s in stated if votes[normalize(s.extracted)] == top)
        return first.extracted.strip(), first


def read_probe(path: str | Path, problems: list[Problem]) -> dict[str, StudentAnswers]:
    """``{problem_id: StudentAnswers}`` for every problem in ``problems`` (no samples: empty); a
    sample naming another problem is an :class:`InputError` at its line."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"generate.hints=ssb / generate.tailored need the student's answers on the training "
                          f"problems in {path}; run the probe stage first (`reasondistill run` does)")
    known = {p.id for p in problems}
    by_problem: dict[str, list[EvalSample]] = defaultdict(list)
    for i, sample in enumerate(io.read_records(path, EvalSample)):
        if sample.problem_id not in known:
            raise InputError(f"probe sample for problem {sample.problem_id!r}, which is not a training problem",
                             file=path, line=io.line_of(path, i), field="problem_id")
        by_problem[sample.problem_id].append(sample)
    return {p.id: StudentAnswers(p.id, tuple(sorted(by_problem.get(p.id, []), key=lambda s: s.sample_idx)))
            for p in problems}
