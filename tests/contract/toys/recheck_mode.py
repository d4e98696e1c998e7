"""A toy generation mode: one follow-up pass that asks every problem once more, unhinted, with
"Check your work." after the plain prompt, and counts the traces in the manifest. It is switched on
by ``generate.modes: [recheck]``."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from reasondistill.generate.base import Drawn, Mode, Pass, Sampling
from reasondistill.records import Trace


class Recheck(Mode):
    name: ClassVar[str] = "recheck"

    def follow_up(self, ctx: Sampling, drawn: Drawn) -> Pass | None:
        reqs = [ctx.request(p, f"{p.prompt}\nCheck your work.", drawn.next_idx, hinted=False) for p in ctx.problems]
        return Pass(f"recheck ({ctx.label})", reqs, width=1,
                    annotate=lambda t: dataclasses.replace(t, meta={**t.meta, "mode": self.name}))

    def outputs(self, traces: list[Trace]) -> dict[str, Any]:
        return {"traces": sum(t.meta.get("mode") == self.name for t in traces)}
