import pytest
import torch

from spectral.models import ACTIVATIONS, mlp


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_shapes_and_layers(activation):
    net = mlp(2, width=8, depth=3, activation=activation, seed=0)
    assert net(torch.zeros(5, 2)).shape == (5, 1)
    assert sum(isinstance(m, torch.nn.Linear) for m in net) == 4


def test_seed_is_reproducible_and_global_rng_untouched():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    a = mlp(1, width=8, depth=2, seed=5)
    assert torch.equal(torch.rand(1), expected)
    b = mlp(1, width=8, depth=2, seed=5)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_constant_feature_without_bias_is_expressive_and_has_no_bias():
    net = mlp(1, width=8, depth=2, bias=False, constant_feature=True, seed=0)
    assert all(not name.endswith("bias") for name, _ in net.named_parameters())
    assert net[1].in_features == 2
    assert net(torch.zeros(1, 1)).abs().item() > 0  # a plain bias-free ReLU net is 0 at 0


def test_sine_uses_siren_initialisation():
    net = mlp(1, width=64, depth=2, activation="sine", seed=0, omega_0=30.0)
    assert net[0].weight.abs().max() <= 1.0
    assert net[2].weight.abs().max() <= (6 / 64) ** 0.5 / 30


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"width": 0}, ValueError, "width"),
        ({"depth": 0}, ValueError, "depth"),
        ({"activation": "swish"}, ValueError, "activation"),
        ({"width": 2.5}, TypeError, "width"),
        ({"omega_0": -1.0}, ValueError, "omega_0"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        mlp(1, **kwargs)
