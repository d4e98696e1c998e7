"""Helpers of the benchmark scripts: ``profile_step.py``'s attribution of a profiled training step
to model components (forward time by the scopes its hooks open, backward time by the forward op each
autograd node came from), ``dpo_vs_trl.py``'s token count, and the extra held-out problems of
``stability/more_heldout.py``."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def script(name: str):
    """Import ``benchmarks/<name>.py`` as a module, leaving ``sys.path`` as it was."""
    saved = list(sys.path)
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved  # the scripts put benchmarks/ first on the path for their own imports
    return module


@pytest.fixture(scope="module")
def profile_step():
    yield script("profile_step")
    sys.modules.pop("profile_step", None)


def profiled_step(profile_step):
    """A tiny Llama's forward, a loss on its logits and the backward, under the script's scopes."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True))
    assert profile_step.hook_modules(model) == 2
    ids = torch.randint(0, 256, (2, 12))
    loss_of = profile_step.Scope("loss").wrap(lambda: model(input_ids=ids).logits.float().logsumexp(-1).mean())
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        loss = loss_of()
        profile_step.Scope("backward").wrap(loss.backward)()
        ids.clone()  # an op outside every scope
        wall_us = 1e6 * (time.perf_counter() - t0)
    return profile_step.attribute(prof.events(), wall_us), wall_us


def test_forward_and_backward_time_land_on_the_component_that_ran_them(profile_step):
    us, wall_us = profiled_step(profile_step)
    for part in ("attention", "mlp", "lm_head"):
        assert us[f"forward: {part}"] > 0 and us[f"backward: {part}"] > 0, part
    assert us["forward: other"] > 0 and us["backward: embeddings, norms, rotary"] > 0  # embeddings and norms
    assert us["loss"] > 0 and us["backward: loss"] > 0  # logsumexp and its gradient
    assert us["backward: other"] > 0  # gradients accumulated into the weights: no forward op made them
    assert us[profile_step.OTHER] > 0  # the clone
    assert "backward" not in us  # every backward op is split
    assert sum(us.values()) == pytest.approx(max(wall_us, sum(v for k, v in us.items() if k != profile_step.UNTRACED)))


def test_table_gives_each_component_its_share_of_the_step(profile_step):
    rows = profile_step.table({"forward: mlp": 3000.0, "backward: mlp": 1000.0}, steps=2)
    assert rows[1].split() == ["forward:", "mlp", "1.5", "75.0%"]
    assert rows[-1].split() == ["step", "2.0", "100.0%"]
    assert [r.split()[0] for r in rows[3:5]] == ["forward", "backward"]  # the totals


def test_dpo_token_count_is_both_rows_of_each_pair_without_padding(smollm2_dir):
    from reasondistill import models
    from reasondistill.records import PreferenceExample
    from reasondistill.train import preference

    dpo_vs_trl = script("dpo_vs_trl")
    sys.modules.pop("dpo_vs_trl", None)
    tok = models.load_tokenizer(str(smollm2_dir))
    prompt = [{"role": "user", "content": "What is 2 + 3 + 4?"}]
    pairs = [PreferenceExample(prompt, [{"role": "assistant", "content": "2 + 3 = 5, 5 + 4 = 9.\nAnswer: 9"}],
                               [{"role": "assistant", "content": "Answer: 8"}]),
             PreferenceExample(prompt, [{"role": "assistant", "content": "Answer: 9"}],
                               [{"role": "assistant", "content": "2 + 3 = 6, 6 + 4 = 10. " * 20 + "Answer: 10"}])]
    counts = {}
    for max_length in (1024, 60):  # the long rejected completion is cut at 60
        batch = preference.collate(preference.tokenize_pairs(tok, pairs, max_length), tok.pad_token_id, max_length)
        counts[max_length] = dpo_vs_trl.pair_tokens(tok, pairs, max_length)
        assert counts[max_length] == int(batch["attention_mask"].sum())  # the rows our trainer builds, no padding
    assert counts[60] < counts[1024]


def test_more_heldout_draws_another_stream_without_the_runs_own_prompts(tmp_path, monkeypatch):
    """``stability/more_heldout.py``: the extra held-out problems never repeat a prompt the run trains
    or evaluates on; short chain_sum prompts recur across seeds, so some are drawn and dropped."""
    import json

    from reasondistill.config import Recipe, build, dump_recipe
    from reasondistill.problems.reasoning_gym import load

    recipe = build(Recipe, {"problems": {"source": "reasoning_gym", "task": "chain_sum", "n_train": 60, "n_eval": 40,
                                         "task_config": {"min_terms": 2, "max_terms": 2, "min_digits": 1,
                                                         "max_digits": 1}}})
    run = tmp_path / "run"
    (run / "problems").mkdir(parents=True)
    (run / "recipe.yaml").write_text(dump_recipe(recipe))
    own = load(recipe.problems)
    for name, rows in (("train.jsonl", own.train), ("eval.jsonl", own.eval)):
        (run / "problems" / name).write_text("".join(json.dumps({"prompt": p.prompt}) + "\n" for p in rows))
    more = script("stability/more_heldout")
    out = tmp_path / "more.jsonl"
    monkeypatch.setattr(sys, "argv", ["more_heldout.py", str(run), "--seed", "2", "--n", "30", "--out", str(out)])
    more.main()
    got = [json.loads(line)["prompt"] for line in out.open()]
    seen = {p.prompt for p in own.train + own.eval}
    assert len(got) == len(set(got)) == 30 and not seen & set(got)
    monkeypatch.setattr(sys, "argv", ["more_heldout.py", str(run), "--seed", "0", "--out", str(out)])
    with pytest.raises(SystemExit):  # the run's own stream: its held-out problems are already scored
        more.main()
