"""Stop each sequence of a batched ``generate`` once its final-answer line is written.

A greedy evaluation only needs the text up to the end of the ``Answer: X`` line; without a stop
every row decodes to ``max_new_tokens`` or EOS, and the batch runs as long as its longest row.
The criterion is per row (finished rows are padded while the rest go on, so they decode exactly
what they would have) and cheap: a row is looked at only when its newest token holds a newline,
and then only the last ``window`` tokens are decoded. What counts as a complete answer line is
:func:`reasondistill.grading.answers.answer_line_end`, also used to trim the decoded text.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import StoppingCriteria

from ..grading.answers import answer_line_end


class AnswerLineStop(StoppingCriteria):
    """``True`` for a row once a complete answer line stands in its generated tokens (those after
    ``prompt_width``, the left-padded prompt's width). An answer line longer than ``window`` tokens
    is not seen here (the row runs on); the decoded text is still trimmed at it afterwards."""

    def __init__(self, tokenizer: Any, prompt_width: int, window: int = 48) -> None:
        self.tokenizer, self.start, self.window = tokenizer, prompt_width, window
        self.has_newline: dict[int, bool] = {}  # token id -> whether it decodes to text with a newline
        self.done: torch.Tensor | None = None

    def _newline(self, token: int) -> bool:
        if token not in self.has_newline:
            self.has_newline[token] = "\n" in self.tokenizer.decode([token], skip_special_tokens=True)
        return self.has_newline[token]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        if self.done is None or self.done.shape[0] != input_ids.shape[0]:
            self.done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        last = input_ids[:, -1].tolist()
        for row in (~self.done).nonzero().flatten().tolist():
            if self._newline(last[row]) and self._answered(input_ids[row, self.start:]):
                self.done[row] = True
        return self.done.clone()

    def _answered(self, generated: torch.Tensor) -> bool:
        lo = max(0, generated.shape[0] - self.window)
        text = self.tokenizer.decode(generated[lo:].tolist(), skip_special_tokens=True)
        if lo > 0:  # the window may start mid-line: only whole lines count
            text = text[text.find("\n") + 1:] if "\n" in text else ""
        return answer_line_end(text) is not None
