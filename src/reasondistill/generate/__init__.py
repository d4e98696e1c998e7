"""Stage 2, generate: N rationales per problem from a teacher backend, plus STaR
rationalization for the problems it failed; every sample goes through the content-hash cache.

``MODES`` maps a generation mode to ``module:Class`` (the contract is ``base.Mode``). Row order is
the order modes act in: hints and follow-up passes of earlier rows come first. Built-in modes are
switched by their own options (``generate.prompt.style``, ``rationalize``, ``hints``,
``tailored``); any other row is switched on by naming it in ``generate.modes``.
"""

MODES = {
    "cot": "reasondistill.generate.cot:ChainOfThought",
    "pot": "reasondistill.generate.pot:ProgramOfThought",
    "star": "reasondistill.generate.star:Rationalize",
    "ssb": "reasondistill.generate.ssb:SsbHints",
    "tailored": "reasondistill.generate.tailored:Tailored",
}

from .run import modes_for, run, sampling_params, to_trace  # noqa: E402

__all__ = ["MODES", "modes_for", "run", "sampling_params", "to_trace"]
