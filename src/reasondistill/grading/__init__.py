"""Answer checkers, shared by verification, generation (STaR), evaluation and RL rewards.

``VERIFIERS`` maps a verifier name to ``module:Class``; classes are imported only when used,
so ``import reasondistill.grading`` pulls in neither math-verify (sympy) nor reasoning-gym.
``answers.py`` holds the shared answer extraction/normalisation; ``base.py`` the contract,
verifier selection ("auto") and the wall-clock-timed :func:`score_text`.

Adding a verifier: one file with a class that has ``name`` and ``check(problem, text) -> Score``,
plus one row here. ``verify.verifier: auto`` takes the verifier of a problem's task row
(``reasondistill.tasks.TASKS``), else the first row of ``AUTO`` whose class ``claims`` the problem.
"""

VERIFIERS = {
    "math": "reasondistill.grading.math:MathVerifier",
    "reasoning_gym": "reasondistill.grading.reasoning_gym:ReasoningGymVerifier",
    "exact": "reasondistill.grading.exact:ExactVerifier",
}

AUTO = ("reasoning_gym", "math", "exact")  # the rows "auto" tries, in order (exact claims anything)

from .base import Score, Verifier, get_verifier, pick_verifier, run_check, score_text  # noqa: E402

__all__ = ["VERIFIERS", "Score", "Verifier", "get_verifier", "pick_verifier", "run_check", "score_text"]
