"""Stage 5, evaluate: ``runner.run`` scores a model on held-out problems; ``metrics``
aggregates per-sample results (accuracy + Wilson CI, unbiased pass@k, maj@k)."""


def run(*args, **kwargs):
    from .runner import run as _run
    return _run(*args, **kwargs)
