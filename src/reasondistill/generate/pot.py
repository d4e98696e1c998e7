"""Program of thought (``generate.prompt.style: pot``): the teacher writes a Python program whose
printed output is the answer; the program runs in the sandbox (``reasondistill.sandbox``) and its
output becomes the trace's final-answer line, so verification checks what the program printed.

A completion becomes: the teacher's text up to the end of its first ```` ```python ```` block (any
answer the teacher wrote itself after the program is dropped), then ``Answer: <output>``. The
trace's ``meta["pot"]`` keeps the program, its output and how the run ended. A completion with no
program, or whose program fails (raises, prints nothing, is stopped by a limit or by the sandbox),
becomes a failed trace: ``finish_reason == "error"`` and an empty text (the teacher's text is kept in
``meta["pot"]["text"]``), so an answer the teacher wrote itself can never pass verification; curation
rejects it (``generation_error``) and the stage goes on.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from ..backends.base import Completion
from ..config import GenerateConfig
from ..prompts import format_answer
from ..records import Trace
from ..sandbox import Limits, SandboxConfig, isolation, run_python
from .cot import ChainOfThought

# the first fenced block tagged python/py (or untagged), up to its closing fence
_BLOCK = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL | re.IGNORECASE)


def extract_program(text: str) -> tuple[str, int] | None:
    """``(program, end)``: the first fenced Python block of ``text`` and where its fence ends."""
    m = _BLOCK.search(text)
    if m is None or not m.group(1).strip():
        return None
    return m.group(1), m.end()


def limits(cfg: SandboxConfig) -> Limits:
    return Limits(timeout_s=cfg.timeout_s, cpu_s=cfg.cpu_s, memory_mb=cfg.memory_mb, output_bytes=cfg.output_bytes,
                  network=cfg.network)


def run_completion(comp: Completion, cfg: SandboxConfig) -> Completion:
    """``comp`` with its program run: the answer line appended, or turned into a failed completion."""
    if comp.finish_reason == "error":
        return comp
    found = extract_program(comp.text)
    if found is None:
        meta = {"program": None, "output": None, "ok": False, "reason": "no_program", "detail": "",
                "isolation": isolation(cfg.network), "text": comp.text}
        return dataclasses.replace(comp, text="", finish_reason="error", meta={**comp.meta, "pot": meta})
    program, end = found
    body = comp.text[:end].rstrip()
    result = run_python(program, limits(cfg))
    output = result.stdout.strip()
    ok = result.ok and bool(output)
    reason = "no_output" if result.ok and not output else result.reason
    meta = {"program": program, "output": result.stdout, **result.to_dict(), "ok": ok, "reason": reason}
    if not ok:
        meta["text"] = comp.text
        return dataclasses.replace(comp, text="", finish_reason="error", meta={**comp.meta, "pot": meta})
    return dataclasses.replace(comp, text=f"{body}\n{format_answer(output)}", meta={**comp.meta, "pot": meta})


def execute(comps: list[Completion], cfg: SandboxConfig) -> tuple[list[Completion], dict]:
    """Run every completion's program (``cfg.workers`` at a time); the completions and a summary for
    the manifest (how the network was cut off, runs by outcome)."""
    with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
        out = list(pool.map(lambda c: run_completion(c, cfg), comps))
    reasons = Counter(c.meta["pot"]["reason"] for c in out if "pot" in c.meta)
    return out, {"isolation": isolation(cfg.network), "programs": sum(reasons.values()),
                 "outcomes": dict(reasons.most_common())}


class ProgramOfThought(ChainOfThought):
    """The style mode: the plain prompt is ``prompts/pot.txt`` (through the style), every pass's
    programs run, and the manifest's ``pot`` block counts their outcomes over all teachers."""

    name: ClassVar[str] = "pot"
    switch: ClassVar[str] = "generate.prompt.style=pot"

    def __init__(self, sandbox: SandboxConfig) -> None:
        self.sandbox = sandbox
        self.programs = 0
        self.outcomes: dict[str, int] = {}

    @classmethod
    def from_config(cls, cfg: GenerateConfig) -> ProgramOfThought | None:
        return cls(cfg.sandbox) if cfg.prompt.style == cls.name else None

    def finish(self, comps: list[Completion]) -> list[Completion]:
        out, summary = execute(comps, self.sandbox)
        self.programs += summary["programs"]
        for reason, n in summary["outcomes"].items():
            self.outcomes[reason] = self.outcomes.get(reason, 0) + n
        return out

    def settled(self, trace: Trace) -> bool:
        return "pot" in trace.meta  # a program that failed in the sandbox is a finished (failed) trace

    def outputs(self, traces: list[Trace]) -> dict[str, Any]:
        return {"isolation": isolation(self.sandbox.network), "programs": self.programs,
                "outcomes": dict(self.outcomes)}
