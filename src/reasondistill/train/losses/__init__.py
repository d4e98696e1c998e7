"""Training losses: one pure tensor function per file, plus its small config dataclass.

Name table (lazy ``module:function`` strings, no import side effects); trainers look
losses up here instead of branching on a loss name.
"""

LOSSES: dict[str, str] = {}
