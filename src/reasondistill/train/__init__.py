"""Stage 4, train: one objective per file (``sft.py`` ...), each with its config beside it."""
