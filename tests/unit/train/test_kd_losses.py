import pytest
import torch

from reasondistill.train.losses import LOSSES, get_loss, options_for
from reasondistill.train.losses.base import SparseTeacher
from reasondistill.train.losses.jsd import jsd

OPTIONS = {"jsd": {"beta": 0.3}, "skew_forward_kl": {"alpha": 0.1}, "skew_reverse_kl": {"alpha": 0.1}}


def logits(seed, shape=(2, 5, 11), scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * scale


def mask():
    m = torch.ones(2, 5, dtype=torch.bool)
    m[0, :2] = False
    m[1, 4] = False
    return m


def sparse_from_full(teacher_logits, k):
    lp = torch.log_softmax(teacher_logits, dim=-1)
    top, ids = lp.topk(k, dim=-1)
    rest = 1 - top.exp().sum(-1)
    tail = torch.where(rest > 0, rest.clamp_min(1e-30).log(), torch.full_like(rest, float("-inf")))
    return SparseTeacher(ids, top, tail)


@pytest.mark.filterwarnings("ignore:You are importing from .trl.experimental")
@pytest.mark.parametrize("beta", [0.0, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_jsd_matches_trl_gkd(beta, temperature):
    from trl.experimental.gkd import GKDTrainer

    s, t, m = logits(0), logits(1), mask()
    labels = torch.where(m, torch.zeros(2, 5, dtype=torch.long), torch.full((2, 5), -100))
    want = GKDTrainer.generalized_jsd_loss(s, t, labels=labels, beta=beta, temperature=temperature)
    got = jsd(s, t, m, temperature, beta=beta)
    assert abs(got.item() - want.item()) < 1e-5


@pytest.mark.parametrize("name", list(LOSSES))
def test_zero_at_teacher_and_positive_elsewhere(name):
    fn = get_loss(name)
    opts = OPTIONS.get(name, {})
    t, m = logits(1), mask()
    assert abs(fn(t.clone(), t, m, 1.0, **opts).item()) < 1e-6
    assert abs(fn(t.clone(), sparse_from_full(t, 4), m, 1.0, **opts).item()) < 1e-5
    assert fn(logits(0), t, m, 1.0, **opts).item() > 1e-3
    assert fn(logits(0), sparse_from_full(t, 4), m, 1.0, **opts).item() > 1e-3


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sparse_with_k_equal_vocab_equals_full(name, temperature):
    fn = get_loss(name)
    opts = OPTIONS.get(name, {})
    s, t, m = logits(0), logits(1), mask()
    full = fn(s, t, m, temperature, **opts)
    sparse = fn(s, sparse_from_full(t, t.shape[-1]), m, temperature, **opts)
    assert torch.allclose(full, sparse, atol=1e-5), (full, sparse)


@pytest.mark.parametrize("name", list(LOSSES))
def test_sparse_gradients_are_finite_and_masked(name):
    fn = get_loss(name)
    s = logits(0).requires_grad_()
    t = logits(1)
    m = mask()
    for teacher in (sparse_from_full(t, 3), sparse_from_full(t, t.shape[-1])):
        s.grad = None
        fn(s, teacher, m, 1.0, **OPTIONS.get(name, {})).backward()
        assert torch.isfinite(s.grad).all()
        assert (s.grad[~m] == 0).all() and s.grad[m].abs().sum() > 0


def test_skew_alpha_zero_is_plain_kl_and_options_pick():
    s, t, m = logits(0), logits(1), mask()
    assert torch.allclose(get_loss("skew_forward_kl")(s, t, m, alpha=0.0), get_loss("forward_kl")(s, t, m))
    assert torch.allclose(get_loss("skew_reverse_kl")(s, t, m, alpha=0.0), get_loss("reverse_kl")(s, t, m))
    assert options_for(get_loss("jsd"), beta=0.2, alpha=0.1) == {"beta": 0.2}
    assert options_for(get_loss("tv"), beta=0.2, alpha=0.1) == {}
    with pytest.raises(ValueError, match="alpha"):
        get_loss("skew_forward_kl")(s, t, m, alpha=1.0)
