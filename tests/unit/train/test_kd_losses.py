import pytest
import torch

from reasondistill.train.losses import LOSSES, check_options, get_loss
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
    assert check_options("kd", "jsd", {"beta": 0.2, "alpha": 0.1}).beta == 0.2
    assert check_options("kd", "tv", {"beta": 0.2, "alpha": 0.1}) is None
    with pytest.raises(ValueError, match="alpha"):
        get_loss("skew_forward_kl")(s, t, m, alpha=1.0)


def reference_sparse(z, ids, temperature):
    """The plain-tensor definition :mod:`losses.sparse` computes in chunks."""
    logp = torch.log_softmax(z / temperature, dim=-1)
    rest = logp.scatter(-1, ids, float("-inf"))
    return logp.gather(-1, ids), torch.logsumexp(rest, dim=-1), torch.logsumexp(z / temperature, dim=-1)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("scale", [1.0, 30.0])  # 30: very peaked, a tail of ~1e-20 must stay exact
def test_chunked_sparse_logprobs_match_the_plain_definition_in_value_and_gradient(monkeypatch, temperature, scale):
    from reasondistill.train.losses import sparse

    monkeypatch.setattr(sparse, "ROWS_PER_CHUNK", 3)  # several chunks and a ragged last one
    z = logits(3, shape=(2, 4, 40), scale=scale).double()
    ids = z.topk(6, dim=-1).indices
    weights = [torch.randn(2, 4, 6, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64),
               torch.randn(2, 4, dtype=torch.float64)]
    grads = []
    for fn in (sparse.sparse_logprobs, reference_sparse):
        x = z.clone().requires_grad_()
        outs = fn(x, ids, temperature)
        sum((w * o).sum() for w, o in zip(weights, outs)).backward()
        grads.append((outs, x.grad))
    (ours, g_ours), (ref, g_ref) = grads
    for a, b in zip(ours, ref):
        assert torch.allclose(a.double(), b, rtol=1e-5, atol=1e-5), (a, b)
    assert torch.allclose(g_ours.double(), g_ref, rtol=1e-4, atol=1e-6)


def test_chunked_sparse_logprobs_pass_gradcheck_and_handle_an_empty_tail():
    from reasondistill.train.losses.sparse import SparseLogProbs

    z = logits(4, shape=(5, 9)).double().requires_grad_()
    ids = torch.stack([torch.randperm(9, generator=torch.Generator().manual_seed(i))[:3] for i in range(5)])
    assert torch.autograd.gradcheck(lambda x: SparseLogProbs.apply(x, ids, 1 / 0.8), (z,))
    every = torch.arange(9).expand(5, 9)  # k = V: nothing left for the tail
    top, tail, lse = SparseLogProbs.apply(z, every, 1.0)
    assert torch.allclose(top.exp().sum(-1), torch.ones(5, dtype=torch.float64))
    assert (tail < -80).all()
    sum(o.sum() for o in (top, tail)).backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("name", ["reverse_kl", "jsd"])
def test_a_teacher_tail_below_float32_resolution_costs_the_student_nats_not_thousands(name):
    """A confident teacher's top k sum to 1 in float32, so its stored tail is -inf, though the other
    ids hold mass. The loss takes that tail at float32 resolution: a student with 1% of its mass
    outside the top k pays a few hundredths of a nat per token, not the ~100 that a -1e4 floor charged."""
    from reasondistill.train.losses.base import TAIL_FLOOR

    vocab, k = 50, 4
    teacher_lp = torch.full((1, 1, vocab), -40.0)
    teacher_lp[..., :k] = torch.tensor([-1e-9, -25.0, -26.0, -27.0])
    sparse = sparse_from_full(teacher_lp, k)
    assert torch.isinf(sparse.tail_logprob).all()  # what the store holds for such a token
    student = torch.full((1, 1, vocab), -30.0)
    student[..., 0] = 0.0
    student[..., k:] = torch.log(torch.tensor(0.01 / (vocab - k)))  # 1% of the mass outside the top k
    student = torch.log_softmax(student, -1)
    m = torch.ones(1, 1, dtype=torch.bool)
    loss = get_loss(name)(student, sparse, m, 1.0, **OPTIONS.get(name, {})).item()
    ceiling = 0.01 * (abs(TAIL_FLOOR) + 1)  # the tail's own share of KL(student || teacher), with slack
    assert 0 < loss < ceiling, loss
    as_full = get_loss(name)(student, sparse._replace(tail_logprob=torch.full((1, 1), TAIL_FLOOR)), m, 1.0,
                             **OPTIONS.get(name, {})).item()
    assert loss == pytest.approx(as_full)
