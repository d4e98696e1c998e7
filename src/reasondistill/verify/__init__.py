"""Stage 3a, verify: score each teacher trace against its problem's gold answer.

``VERIFIERS`` maps a verifier name to ``module:Class``; classes are imported only when used,
so ``import reasondistill.verify`` pulls in neither math-verify (sympy) nor reasoning-gym.
``answers.py`` holds the shared answer extraction/normalisation; ``base.py`` the contract,
verifier selection ("auto") and the wall-clock-timed :func:`score_text`.

Adding a verifier: one file with a class that has ``name`` and ``check(problem, text) -> Score``,
plus one row here.
"""

VERIFIERS = {
    "math": "reasondistill.verify.math:MathVerifier",
    "reasoning_gym": "reasondistill.verify.reasoning_gym:ReasoningGymVerifier",
    "exact": "reasondistill.verify.exact:ExactVerifier",
}

from .base import Score, Verifier, get_verifier, pick_verifier, run_check, score_text  # noqa: E402
from .run import run  # noqa: E402  (binds the function over the submodule attribute)

__all__ = ["VERIFIERS", "Score", "Verifier", "get_verifier", "pick_verifier", "run", "run_check", "score_text"]
