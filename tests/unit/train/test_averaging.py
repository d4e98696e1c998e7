"""Tail weight averaging's arithmetic and its option (the training runs: tests/robustness/test_train_resume.py)."""

from __future__ import annotations

import pytest
import torch

from reasondistill.config import TrainConfig
from reasondistill.errors import ConfigError
from reasondistill.train.averaging import RunningMean, first_step


def test_running_mean_is_the_uniform_mean_of_its_updates():
    mean = RunningMean()
    for values in ([1.0, -2.0], [3.0, 0.0], [8.0, 5.0]):
        mean.update({"w": torch.tensor(values, dtype=torch.bfloat16)})
    assert mean.count == 3
    assert mean.mean["w"].dtype == torch.float32
    assert mean.mean["w"].tolist() == pytest.approx([4.0, 1.0])
    target = {"w": torch.zeros(2)}
    mean.copy_into(target)
    assert target["w"].tolist() == pytest.approx([4.0, 1.0])


def test_running_mean_round_trips_through_its_state():
    mean = RunningMean()
    mean.update({"w": torch.tensor([2.0])})
    again = RunningMean()
    again.load_state_dict(mean.state_dict(), "cpu")
    again.update({"w": torch.tensor([4.0])})
    assert again.count == 2 and again.mean["w"].tolist() == [3.0]


def test_copy_into_refuses_parameters_it_has_no_mean_for():
    mean = RunningMean()
    mean.update({"w": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="no mean for parameters"):
        mean.copy_into({"w": torch.zeros(1), "b": torch.zeros(1)})


@pytest.mark.parametrize(("steps", "fraction", "first"), [(8, 0.5, 5), (8, 1.0, 1), (144, 0.25, 109), (8, 0.01, 8),
                                                          (10, 0.33, 7)])
def test_first_step_averages_the_last_fraction(steps, fraction, first):
    assert first_step(steps, fraction) == first


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_average_last_must_be_a_fraction(bad):
    with pytest.raises(ConfigError, match="train.average_last"):
        TrainConfig(average_last=bad)


@pytest.mark.parametrize("sharded", ["is_fsdp_enabled", "is_deepspeed_enabled"])
def test_sharded_weights_are_refused(sharded):
    from types import SimpleNamespace

    from reasondistill.train.averaging import check

    check(SimpleNamespace())  # one process, whole weights: fine
    with pytest.raises(ConfigError, match="fsdp"):
        check(SimpleNamespace(**{sharded: True}))
