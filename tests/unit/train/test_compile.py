"""``train.compile``: the student's decoder layers go through torch.compile (inductor) in place,
and the compiled student's loss is the eager one's."""

import pytest
import torch
import torch.nn.functional as F

from reasondistill.config import TrainConfig
from reasondistill.train import base


@pytest.fixture()
def student(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).train()


def compiled(model) -> list[bool]:
    return [layer._compiled_call_impl is not None for layer in model.model.layers]


def test_compile_switch(student):
    keys = set(student.state_dict())
    assert base.speedups(student, TrainConfig(packing="false")) == {"packed": False, "compiled": False}
    assert compiled(student) == [False, False]
    assert base.speedups(student, TrainConfig(packing="false", compile=True)) == {"packed": False, "compiled": True}
    assert compiled(student) == [True, True]
    assert set(student.state_dict()) == keys  # the checkpoint is saved as before


@pytest.mark.slow  # inductor compiles forward and backward: minutes on 2 busy cores
def test_compiled_loss_equals_eager(student):
    ids = torch.randint(1, student.config.vocab_size, (3, 16), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0

    def loss():
        student.zero_grad()
        logits = student(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1]
        out = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
        out = (out * mask[:, 1:].reshape(-1)).sum()
        out.backward()
        return out.detach(), student.model.layers[0].mlp.up_proj.weight.grad.clone()

    eager = loss()
    base.compile_layers(student)
    fast = loss()
    torch.testing.assert_close(fast[0], eager[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast[1], eager[1], rtol=1e-3, atol=1e-5)
