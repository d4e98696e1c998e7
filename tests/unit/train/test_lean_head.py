"""The lean LM head (train/lean_head.py): the SFT cross-entropy, every KD loss of the table and
REDI's completion log-probabilities, computed a few positions of logits at a time, equal the
losses and gradients of the full-logits formulas they replace (fp32, tight)."""

import pytest
import torch
import torch.nn.functional as F

from reasondistill.train import base, lean_head, preference
from reasondistill.train.kd import kd_and_ce, with_uncovered_targets
from reasondistill.train.kd_config import KDConfig
from reasondistill.train.losses import LOSSES, configured_loss
from reasondistill.train.losses.base import SparseTeacher
from reasondistill.train.losses.sparse import sparse_logprobs

ROWS = 8  # positions per chunk here (the smallest chunk_rows allows): every loss spans several chunks
K = 4


@pytest.fixture()
def student(tiny_model_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    monkeypatch.setattr(lean_head, "CHUNK_BYTES", 1)
    monkeypatch.setattr(lean_head, "FULL_LOGITS_UP_TO", 0)  # chunked however few the positions
    seen: list[int] = []
    chunked = lean_head.chunked

    def recording(hidden, head, fn, rows=None):  # how many positions of logits exist at once
        return chunked(hidden, head, lambda z, at: (seen.append(z.shape[0]), fn(z, at))[1], rows)

    monkeypatch.setattr(lean_head, "chunked", recording)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).train()
    model.seen_rows = seen
    return model


def batch(vocab: int, lengths=(12, 7, 10)) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    features = []
    for n in lengths:
        ids = torch.randint(1, vocab, (n,), generator=g)
        labels = ids.clone()
        labels[:3] = base.IGNORE
        features.append({"input_ids": ids, "labels": labels})
    return base.pad_batch(features, {"input_ids": 0, "labels": base.IGNORE})


def run(model, fn) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad()
    out = fn()
    (out * torch.linspace(0.5, 1.5, out.numel()).view_as(out)).sum().backward()  # every output gets a gradient
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_same(full, lean) -> None:
    torch.testing.assert_close(lean[0], full[0], rtol=1e-5, atol=1e-6)
    assert full[1].keys() == lean[1].keys() and full[1]
    for name, g in full[1].items():  # fp32 sums in another order: within 1e-5 of the gradient's largest entry
        atol = 1e-5 * float(g.abs().max())
        torch.testing.assert_close(lean[1][name], g, rtol=1e-4, atol=atol, msg=lambda m, name=name: f"{name}: {m}")


def test_sft_cross_entropy(student):
    b = batch(student.config.vocab_size)
    targets = base.next_token_targets(b["labels"])
    keep = targets != base.IGNORE

    def full():
        logits = base.completion_logits(student, b["input_ids"], b["attention_mask"], keep)
        return F.cross_entropy(logits.float(), targets[keep], reduction="sum")

    def lean():  # train/sft.py: vocabulary slices of 256 columns here
        rows, head = lean_head.completion_hidden(student, b["input_ids"], b["attention_mask"], keep)
        assert head is not None and rows.shape[-1] == student.config.hidden_size  # hidden states, not logits
        return -lean_head.token_logprobs(rows, head, targets[keep]).sum()

    def by_positions():  # the generic chunks of positions
        rows, head = lean_head.completion_hidden(student, b["input_ids"], b["attention_mask"], keep)
        return lean_head.loss_over(rows, head, lambda z, at: F.cross_entropy(z.float(), targets[keep][at],
                                                                             reduction="sum"))

    reference = run(student, full)
    assert lean_head.vocab_cols(int(keep.sum())) == 256 < student.config.vocab_size
    assert_same(reference, run(student, lean))
    assert not student.seen_rows
    assert_same(reference, run(student, by_positions))
    assert int(keep.sum()) > 2 * ROWS and max(student.seen_rows) <= ROWS


def kd_inputs(vocab: int, b: dict[str, torch.Tensor]):
    """Teacher targets at all but the last completion position of each row (those stay uncovered)."""
    g = torch.Generator().manual_seed(2)
    targets = base.next_token_targets(b["labels"])
    trained = targets != base.IGNORE
    sel = trained.clone()
    for r in range(sel.shape[0]):
        sel[r, trained[r].nonzero().max()] = False
    shape = sel.shape
    ids = torch.stack([torch.randperm(vocab, generator=g)[:K] for _ in range(shape[0] * shape[1])]).view(*shape, K)
    lp = torch.randn(*shape, K + 1, generator=g).mul(3).log_softmax(-1)
    return targets, sel, ids, lp[..., :K].contiguous(), lp[..., K].contiguous()


@pytest.mark.parametrize("loss", list(LOSSES))
def test_every_kd_loss(student, loss):
    b = batch(student.config.vocab_size)
    targets, sel, t_ids, t_lp, t_tail = kd_inputs(student.config.vocab_size, b)
    need = sel | (targets != base.IGNORE)
    loss_fn = configured_loss(KDConfig(loss=loss))

    def full():  # train/kd.py's compute_loss before the lean head
        logits = base.completion_logits(student, b["input_ids"], b["attention_mask"], need)
        kd_rows, tgt = sel[need], targets[need]
        teacher = SparseTeacher(t_ids[sel][None], t_lp[sel][None], t_tail[sel][None])
        student_kd = logits[kd_rows][None]
        kd = loss_fn(student_kd, teacher, torch.ones(student_kd.shape[:2], dtype=torch.bool), 1.5)
        kd = with_uncovered_targets(kd, logits, tgt, kd_rows)
        trained = tgt != base.IGNORE
        ce = -(sparse_logprobs(logits, tgt.clamp_min(0)[:, None])[0][:, 0] * trained).sum() / trained.sum()
        return torch.stack([kd, ce])

    def lean():
        rows, head = lean_head.completion_hidden(student, b["input_ids"], b["attention_mask"], need)
        teacher = SparseTeacher(t_ids[need], t_lp[need], t_tail[need])
        return torch.stack(kd_and_ce(loss_fn, 1.5, rows, head, teacher, targets[need], sel[need]))

    assert_same(run(student, full), run(student, lean))
    assert max(student.seen_rows) <= ROWS and len(student.seen_rows) >= 3


def test_redi_completion_logps(student):
    from trl.trainer.utils import selective_log_softmax

    g = torch.Generator().manual_seed(3)
    vocab = student.config.vocab_size
    features = [{"prompt_ids": torch.randint(1, vocab, (p,), generator=g).tolist(),
                 "chosen_ids": torch.randint(1, vocab, (c,), generator=g).tolist(),
                 "rejected_ids": torch.randint(1, vocab, (r,), generator=g).tolist()}
                for p, c, r in [(5, 9, 4), (3, 6, 11), (4, 7, 5)]]
    pairs = preference.collate(features, pad_id=0, max_length=64)

    def full():  # preference.completion_logps before the lean head: logits at every position
        logits = student(input_ids=pairs["input_ids"], attention_mask=pairs["attention_mask"]).logits
        mask = pairs["completion_mask"][:, 1:]
        return (selective_log_softmax(logits[:, :-1], pairs["input_ids"][:, 1:]) * mask).sum(-1)

    def lean():
        sums, lengths = preference.completion_logps(student, pairs)
        assert lengths.tolist() == pairs["completion_mask"][:, 1:].sum(-1).tolist()
        return sums

    assert_same(run(student, full), run(student, lean))


def test_small_batches_build_the_logits_whole(student, monkeypatch):
    """Below FULL_LOGITS_UP_TO the head runs as the model's own would: no chunks."""
    monkeypatch.setattr(lean_head, "FULL_LOGITS_UP_TO", 64 << 20)
    monkeypatch.setattr(lean_head._TokenLogProbs, "apply", None)  # would fail if called
    b = batch(student.config.vocab_size)
    targets = base.next_token_targets(b["labels"])
    keep = targets != base.IGNORE
    rows, head = lean_head.completion_hidden(student, b["input_ids"], b["attention_mask"], keep)
    logp = lean_head.token_logprobs(rows, head, targets[keep])
    total = lean_head.loss_over(rows, head, lambda z, at: z.float().logsumexp(-1).sum())
    assert logp.shape == (int(keep.sum()),) and total.isfinite() and not student.seen_rows


def test_heads_it_cannot_split_keep_the_models_own(student):
    student.config.final_logit_softcapping = 30.0  # a head that is more than a linear layer
    b = batch(student.config.vocab_size)
    keep = base.next_token_targets(b["labels"]) != base.IGNORE
    rows, head = lean_head.completion_hidden(student, b["input_ids"], b["attention_mask"], keep)
    assert head is None and rows.shape == (int(keep.sum()), student.config.vocab_size)
