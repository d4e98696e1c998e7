"""Padding-free batches (train/packing.py): a packed batch gives every token the loss and every
weight the gradient the padded batch gives, for SFT and for a preference objective (REDI)."""

import pytest
import torch
import torch.nn.functional as F

from reasondistill.config import TrainConfig
from reasondistill.errors import ConfigError
from reasondistill.train import base, lean_head, packing, preference
from reasondistill.train.losses.redi import redi_loss

LENGTHS = [14, 5, 4, 9, 3]  # packs into 3 rows of 14: (14) (9, 5) (4, 3)


@pytest.fixture()
def student(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).train()


def sft_batch(vocab: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    features = []
    for n in LENGTHS:
        ids = torch.randint(1, vocab, (n,), generator=g)
        labels = ids.clone()
        labels[: n // 2] = base.IGNORE  # the prompt half
        features.append({"input_ids": ids, "labels": labels})
    return base.pad_batch(features, {"input_ids": 0, "labels": base.IGNORE})


def per_token_sft(model, batch) -> torch.Tensor:
    """The SFT objective's per-token cross-entropy on the completion positions."""
    targets = base.next_token_targets(batch["labels"])
    keep = targets != base.IGNORE
    rows, head = lean_head.completion_hidden(model, batch["input_ids"], batch["attention_mask"], keep)
    wanted = targets[keep]
    return lean_head.loss_over(rows, head, lambda z, at: F.cross_entropy(z.float(), wanted[at], reduction="none"))


def loss_and_grads(model, fn, *, bf16: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        per_token = fn(model)
    per_token.sum().backward()
    return per_token.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def body_rows(model, fn) -> int:
    """How many rows the transformer body ran on for ``fn(model)``."""
    seen = []
    hook = packing.body(model).embed_tokens.register_forward_hook(lambda m, a, o: seen.append(a[0].shape[0]))
    try:
        with torch.no_grad():
            fn(model)
    finally:
        hook.remove()
    return seen[0]


def assert_same(padded, packed, *, bf16: bool) -> None:
    (loss_a, grads_a), (loss_b, grads_b) = padded, packed
    tol = {"rtol": 2e-2, "atol": 2e-2} if bf16 else {"rtol": 1e-5, "atol": 1e-5}
    torch.testing.assert_close(loss_b, loss_a, **tol)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name, g in grads_a.items():
        scale = g.abs().max().clamp_min(1e-12)
        torch.testing.assert_close(grads_b[name] / scale, g / scale, **tol, msg=name)


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
def test_sft_packed_equals_padded(student, bf16):
    batch = sft_batch(student.config.vocab_size)
    fn = lambda m: per_token_sft(m, batch)
    padded = loss_and_grads(student, fn, bf16=bf16)
    assert body_rows(student, fn) == len(LENGTHS)
    assert packing.enable(student, "auto")
    assert body_rows(student, fn) == 3  # the five examples ran as three rows
    assert_same(padded, loss_and_grads(student, fn, bf16=bf16), bf16=bf16)


def redi_batch(vocab: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    features = [{"prompt_ids": torch.randint(1, vocab, (p,), generator=g).tolist(),
                 "chosen_ids": torch.randint(1, vocab, (c,), generator=g).tolist(),
                 "rejected_ids": torch.randint(1, vocab, (r,), generator=g).tolist()}
                for p, c, r in [(6, 8, 3), (3, 2, 9), (4, 5, 2)]]
    return preference.collate(features, pad_id=0, max_length=64)


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
def test_redi_packed_equals_padded(student, bf16):
    batch = redi_batch(student.config.vocab_size)

    def fn(m):  # each row's summed completion log-probability, and the REDI loss through it
        sums, lengths = preference.completion_logps(m, batch)
        chosen, rejected = sums.chunk(2)
        c_len, r_len = lengths.chunk(2)
        return torch.cat([sums, redi_loss(chosen, c_len, rejected, r_len, alpha=0.8)[None]])

    padded = loss_and_grads(student, fn, bf16=bf16)
    assert packing.enable(student, "true")
    assert body_rows(student, fn) < 6
    assert_same(padded, loss_and_grads(student, fn, bf16=bf16), bf16=bf16)


def test_packing_off_outside_training_and_when_false(student):
    batch = sft_batch(student.config.vocab_size)
    fn = lambda m: per_token_sft(m, batch)
    assert not packing.enable(student, "false")
    assert body_rows(student, fn) == len(LENGTHS)
    packing.enable(student, "auto")
    student.eval()  # evaluation and generation see the model as it was
    assert body_rows(student, fn) == len(LENGTHS)


def test_attention_that_ignores_the_boundaries_is_not_packed(student, caplog):
    """An attention implementation that attends across examples fails the probe: ``auto`` and
    ``true`` both train on padded batches (``true`` says so)."""
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    def leaky(module, q, k, v, attention_mask, **kwargs):  # plain causal: one sequence per row assumed
        kwargs.pop("is_causal", None)
        return sdpa_attention_forward(module, q, k, v, None, is_causal=True, **kwargs)

    AttentionInterface.register("test_leaky", leaky)
    AttentionMaskInterface.register("test_leaky", sdpa_mask)
    student.set_attn_implementation("test_leaky")
    assert not packing.packing_is_exact(student)
    assert not packing.enable(student, "auto")
    assert not packing.enable(student, "true")
    assert "does not keep packed sequences apart" in caplog.text
    assert body_rows(student, lambda m: per_token_sft(m, sft_batch(m.config.vocab_size))) == len(LENGTHS)


def test_plan_leaves_left_padding_and_full_rows_alone():
    assert packing.plan(torch.tensor([[0, 1, 1], [1, 1, 1]])) is None  # left padding
    assert packing.plan(torch.tensor([[1, 1, 0], [1, 1, 1]])) is None  # nothing would merge
    p = packing.plan(torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]]))
    assert p["position_ids"].tolist() == [[0, 1, 2, 3], [0, 1, 0, 0]]  # the short two share a row, then filler
    flat = packing.plan(torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]]), one_row=True)  # flash attention
    assert flat["position_ids"].tolist() == [[0, 1, 2, 3, 0, 1, 2, 0, 1]]
    assert flat["src"].tolist() == [8, 9, 10, 11, 0, 1, 2, 4, 5]  # longest first


def test_packing_option():
    assert TrainConfig().packing == "auto"
    assert TrainConfig(packing=True).packing == "true"  # YAML's `packing: true`
    assert TrainConfig(packing=False).packing == "false"
    with pytest.raises(ConfigError, match="train.packing"):
        TrainConfig(packing="yes")


def test_trl_fused_head_of_dpo_packs_too(student):
    """DPO runs TRL's fused LM head on the model's body: packed, its per-token log-probabilities
    and gradients are the padded ones."""
    from trl.trainer.utils import add_fused_lm_head

    add_fused_lm_head(student)
    batch = sft_batch(student.config.vocab_size)

    def fn(m):
        labels = batch["input_ids"].masked_fill(batch["labels"] == base.IGNORE, base.IGNORE)
        out = m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels,
                fused_lm_head=True, use_cache=False)
        return out.log_probs

    padded = loss_and_grads(student, fn, bf16=False)
    packing.enable(student, "auto")
    assert body_rows(student, fn) == 3
    assert_same(padded, loss_and_grads(student, fn, bf16=False), bf16=False)


def test_packing_and_compile_stay_out_of_a_runs_identity():
    """A run finished before `train.packing`/`train.compile` existed (or with another setting of
    them) is the same run: they change how the loss is computed, not what is trained."""
    import dataclasses

    from reasondistill.config import TrainConfig
    from reasondistill.train.checkpoints import identity_config

    before = {k: v for k, v in dataclasses.asdict(TrainConfig()).items() if k not in ("packing", "compile")}
    for packing, compile_ in (("auto", False), ("false", True), ("true", False)):
        now = dataclasses.asdict(TrainConfig(packing=packing, compile=compile_))
        assert identity_config(now) == identity_config(before)
        assert identity_config({"train": now, "beta": 0.1}) == identity_config({"train": before, "beta": 0.1})
    assert identity_config({**before, "learning_rate": 1.0}) != identity_config(before)
    # dpo's engine (ours or TRL's) computes the same objective: a run finished with either is reused
    old_dpo = {"train": before, "dpo": {"beta": 0.1, "loss_type": "sigmoid"}}
    for engine in ("auto", "own", "trl"):
        assert identity_config({"train": before, "dpo": {**old_dpo["dpo"], "engine": engine}}) == identity_config(old_dpo)
    assert identity_config({"train": before, "dpo": {"beta": 0.2}}) != identity_config({"train": before, "dpo": {"beta": 0.1}})
