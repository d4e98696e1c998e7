"""Stage 2, generate: N rationales per problem from a teacher backend, plus STaR
rationalization for the problems it failed; every sample goes through the content-hash cache."""

from .run import run, sampling_params, to_trace

__all__ = ["run", "sampling_params", "to_trace"]
