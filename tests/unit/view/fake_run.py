"""A synthetic run folder for the trace browser: problems, teacher traces with verdicts and their
curation fate, pass rates, and the three evaluated models' answers, at any size (the 100k-trace
timing in ``benchmarks/view_100k.py`` uses it too). Deterministic for a given size."""

from __future__ import annotations

import json
import random
from pathlib import Path

from reasondistill.layout import Layout

PROMPT = "Solve step by step and end with 'Answer: <number>'. What is {a} + {b} * {c}?"
MODELS = ("teacher", "student_before", "student_after")


def _write(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def make_run(root: Path, *, n_train: int = 60, samples: int = 4, n_eval: int = 30,
             plant: dict[int, str] | None = None) -> Layout:
    """``n_train`` training problems with ``samples`` teacher traces each (the last one hinted when
    the others all failed), ``n_eval`` held-out problems answered by teacher and both students.
    ``plant`` puts extra text into the trace at that position (file order)."""
    rng = random.Random(0)
    layout = Layout(root)
    plant = plant or {}
    problems, evals = [], []
    for split, n, out in (("train", n_train, problems), ("eval", n_eval, evals)):
        for i in range(n):
            a, b, c = rng.randrange(100), rng.randrange(10), rng.randrange(10)
            out.append({"id": f"{split}-{i}", "source": "synthetic", "prompt": PROMPT.format(a=a, b=b, c=c),
                        "answer": str(a + b * c), "meta": {}})
    _write(layout.train_problems, problems)
    _write(layout.eval_problems, evals)

    traces, verdicts, kept, negatives, rejected, rates = [], [], [], [], [], []
    for p in problems:
        skill = rng.random()
        n_ok = n_kept = 0
        for j in range(samples):
            hinted = j == samples - 1 and n_ok == 0
            ok = hinted or rng.random() < skill
            steps = rng.randrange(1, 40)
            answer = p["answer"] if ok else str(int(p["answer"]) + 1)
            raw = " ".join(f"step {k}: carry the {k}." for k in range(steps)) + f"\nAnswer: {answer}"
            if len(traces) in plant:
                raw = plant[len(traces)] + "\n" + raw
            tid = f"{p['id']}/{'h' if hinted else 's'}{j}"
            truncated = steps > 36
            traces.append({"id": tid, "problem_id": p["id"], "teacher": "llm-a" if j % 2 == 0 else "llm-b",
                           "sample_idx": j, "reasoning": raw.rsplit("\n", 1)[0], "answer_text": answer, "raw": raw,
                           "finish_reason": "length" if truncated else "stop",
                           "usage": {"prompt_tokens": 30, "completion_tokens": 6 * steps + 4}, "logprobs": None,
                           "hinted": hinted, "style": "cot", "meta": {}})
            verdicts.append({"trace_id": tid, "problem_id": p["id"], "verifier": "math", "score": float(ok),
                             "passed": ok, "reason": "correct" if ok else "wrong_answer", "extracted": answer})
            n_ok += ok and not hinted
            example = {"prompt": [{"role": "user", "content": p["prompt"]}],
                       "completion": [{"role": "assistant", "content": raw}],
                       "meta": {"problem_id": p["id"], "trace_id": tid, "teacher": traces[-1]["teacher"],
                                "hinted": hinted}}
            if truncated:
                rejected.append({"trace_id": tid, "problem_id": p["id"], "reason": "truncated", "trace": traces[-1]})
            elif ok and n_kept < 2:
                kept.append(example)
                n_kept += 1
            elif ok:
                rejected.append({"trace_id": tid, "problem_id": p["id"], "reason": "over_cap", "trace": traces[-1]})
            else:
                negatives.append(example)
        unhinted = samples - (1 if n_ok == 0 else 0)
        rate = n_ok / unhinted if unhinted else None
        rates.append({"problem_id": p["id"], "n": unhinted, "n_correct": n_ok, "pass_rate": rate,
                      "difficulty": None if rate is None else 1 - rate})
    _write(layout.traces, traces)
    _write(layout.verdicts, verdicts)
    _write(layout.curated, kept)
    _write(layout.negatives, negatives)
    _write(layout.rejected, rejected)
    _write(layout.pass_rates, rates)

    for model, acc in zip(MODELS, (0.9, 0.3, 0.6)):
        rows = []
        for p in evals:
            ok = rng.random() < acc
            answer = p["answer"] if ok else "7"
            text = f"{model} thinks: {p['prompt'][-12:]}\nAnswer: {answer}"
            rows.append({"problem_id": p["id"], "model": model, "sample_idx": 0, "score": float(ok), "passed": ok,
                         "extracted": answer, "formatted": True, "completion_tokens": rng.randrange(5, 90),
                         "text": text, "finish_reason": "stop"})
        _write(layout.eval_file(model, "samples"), rows)
    return layout
