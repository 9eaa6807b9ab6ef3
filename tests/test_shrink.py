import numpy as np
import pytest
import torch

from spectral import shrink_
from spectral.models import mlp


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_shrink_all_parameters():
    net = mlp(2, width=8, depth=2, seed=0)
    before = state(net)
    assert shrink_(net, 0.2) is net
    for name, value in net.state_dict().items():
        torch.testing.assert_close(value, 0.2 * before[name])


def test_shrink_weights_only():
    net = mlp(2, width=8, depth=2, seed=0)
    before = state(net)
    shrink_(net, 0.5, biases=False)
    for name, value in net.state_dict().items():
        expected = before[name] if name.endswith("bias") else 0.5 * before[name]
        torch.testing.assert_close(value, expected)


def test_homogeneous_network_output_scales_by_c_to_the_L():
    net = mlp(1, width=16, depth=3, activation="relu", bias=False, constant_feature=True, seed=1)
    x = torch.linspace(0, 1, 50)[:, None]
    with torch.no_grad():
        before = net(x)
        shrink_(net, 0.3)
        after = net(x)
    torch.testing.assert_close(after, before * 0.3**4, rtol=1e-4, atol=1e-9)


def test_shrink_perturb_is_seeded_and_leaves_global_rng_alone():
    net = mlp(1, width=8, depth=1, seed=0)
    before = state(net)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = shrink_(mlp(1, width=8, depth=1, seed=0), 0.4, perturb=0.1, seed=7)
    assert torch.equal(torch.rand(1), expected_next)
    b = shrink_(mlp(1, width=8, depth=1, seed=0), 0.4, perturb=0.1, seed=7)
    fresh = mlp(1, width=8, depth=1, seed=0)
    with torch.random.fork_rng():
        torch.manual_seed(7)
        for module in fresh.modules():
            if isinstance(module, torch.nn.Linear):
                module.reset_parameters()
    for name, value in a.state_dict().items():
        torch.testing.assert_close(value, b.state_dict()[name])
        torch.testing.assert_close(value, 0.4 * before[name] + 0.1 * fresh.state_dict()[name])


def test_shrink_by_power_of_two_is_exact():
    net = mlp(1, width=8, depth=1, seed=0)
    before = state(net)
    shrink_(shrink_(net, 0.25), 4.0)
    for name, value in net.state_dict().items():
        assert torch.equal(value, before[name])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"factor": 0.0}, ValueError, "factor"),
        ({"factor": -0.2}, ValueError, "factor"),
        ({"factor": float("nan")}, ValueError, "factor"),
        ({"factor": float("inf")}, ValueError, "factor"),
        ({"factor": "0.2"}, TypeError, "factor"),
        ({"factor": 0.2, "perturb": -0.1}, ValueError, "perturb"),
        ({"factor": 0.2, "biases": "no"}, TypeError, "biases"),
    ],
)
def test_refused_input_changes_nothing(kwargs, error, match):
    net = mlp(1, width=8, depth=1, seed=0)
    before = state(net)
    with pytest.raises(error, match=match):
        shrink_(net, **kwargs)
    for name, value in net.state_dict().items():
        assert torch.equal(value, before[name])


def test_perturb_needs_reset_parameters():
    class Custom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(3))

    model = Custom()
    with pytest.raises(ValueError, match="reset_parameters"):
        shrink_(model, 0.5, perturb=0.1)
    assert torch.equal(model.scale, torch.ones(3))


def test_not_a_module():
    with pytest.raises(TypeError, match="model"):
        shrink_(np.ones(3), 0.5)


class CountingBias(torch.nn.Module):
    """A layer whose integer ``bias`` no float factor can scale in place."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(2))
        self.bias = torch.nn.Parameter(torch.ones(2, dtype=torch.int64), requires_grad=False)


@pytest.mark.parametrize("perturb", [0.0, 0.1])
def test_unscalable_parameter_refused_before_any_change(perturb):
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), CountingBias())
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(TypeError, match=r"parameter '1\.bias' has dtype torch.int64"):
        shrink_(model, 0.5, perturb=perturb, seed=0)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    shrink_(model, 0.5, biases=False)  # the integer bias is not asked to change
    assert torch.equal(model[1].weight, torch.full((2,), 0.5)) and torch.equal(model[1].bias, before[3])
