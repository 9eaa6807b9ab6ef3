"""Tests of spectral.ensemble: batched seeds equal the same networks built and trained alone."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spectral import shrink_
from spectral.ensemble import BatchedLinear, MLPEnsemble
from spectral.models import mlp

SMALL = {"width": 12, "depth": 2}


def _data(members: int, n: int = 32, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Shared inputs ``(N, 1)`` and per-member noisy targets ``(E, N)``."""
    x = torch.linspace(-1, 1, n, dtype=dtype).unsqueeze(1)
    noise = torch.randn(members, n, generator=torch.Generator().manual_seed(1), dtype=dtype)
    return x, torch.sin(4 * x[:, 0]) + 0.1 * noise


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "sine"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("constant_feature", [False, True])
def test_forward_equals_standalone_networks(activation, bias, constant_feature):
    kwargs = dict(SMALL, activation=activation, bias=bias, constant_feature=constant_feature)
    seeds = [3, 1, 4]
    ensemble = MLPEnsemble(2, members=3, seeds=seeds, **kwargs)
    nets = [mlp(2, seed=s, **kwargs) for s in seeds]
    x = torch.rand(20, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    expected = torch.stack([net(x)[:, 0] for net in nets])
    out = ensemble(x)
    assert out.shape == (3, 20) and out.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    per_member = torch.stack([x, -x, 0.5 * x])
    expected = torch.stack([net(xi)[:, 0] for net, xi in zip(nets, per_member)])
    torch.testing.assert_close(ensemble(per_member), expected, rtol=1e-5, atol=1e-6)


def test_seeds_accept_integer_arrays():
    ensemble = MLPEnsemble(1, members=2, seeds=np.array([4, 9]), **SMALL)
    x = torch.rand(5, 1)
    torch.testing.assert_close(ensemble(x)[1], mlp(1, seed=9, **SMALL)(x)[:, 0])


def test_seeds_default_to_range_and_leave_global_rng_alone():
    state = torch.get_rng_state()
    ensemble = MLPEnsemble(1, members=3, **SMALL)
    assert torch.equal(torch.get_rng_state(), state)
    assert ensemble.members == 3 and ensemble.in_features == 1
    for e in range(3):
        for got, want in zip(ensemble.member(e).parameters(), mlp(1, seed=e, **SMALL).parameters()):
            assert torch.equal(got, want)


def test_member_and_from_models_round_trip():
    nets = [mlp(1, seed=s, activation="sine", omega_0=10.0, constant_feature=True, **SMALL) for s in (7, 8)]
    ensemble = MLPEnsemble.from_models(nets)
    assert ensemble.members == 2
    for e, net in enumerate(nets):
        copy = ensemble.member(e)
        assert [type(m) for m in copy] == [type(m) for m in net]
        assert copy[2].omega_0 == 10.0
        for got, want in zip(copy.parameters(), net.parameters()):
            assert torch.equal(got, want)
    again = MLPEnsemble.from_models([ensemble.member(e) for e in range(2)])
    for (name, got), want in zip(again.state_dict().items(), ensemble.state_dict().values()):
        assert torch.equal(got, want), name
    copy = ensemble.member(0)
    with torch.no_grad():
        copy[1].weight.zero_()
    assert not torch.equal(ensemble.member(0)[1].weight, copy[1].weight)  # a copy, not a view


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_training_together_equals_training_alone(activation):
    seeds, steps, lr = [5, 6, 7, 8], 50, 1e-3
    x, y = _data(len(seeds))
    ensemble = MLPEnsemble(1, members=len(seeds), activation=activation, seeds=seeds, **SMALL)
    optimizer = torch.optim.Adam(ensemble.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        ((ensemble(x) - y) ** 2).mean(dim=1).sum().backward()
        optimizer.step()
    for e, seed in enumerate(seeds):
        net = mlp(1, activation=activation, seed=seed, **SMALL)
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            ((net(x)[:, 0] - y[e]) ** 2).mean().backward()
            optimizer.step()
        for got, want in zip(ensemble.member(e).parameters(), net.parameters()):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_training_in_float64_with_per_member_inputs_is_exact_to_rounding():
    # Sine networks (omega_0=30) amplify float32 rounding over training; float64 shows the trajectories agree.
    seeds, steps = [0, 1, 2], 30
    x, y = _data(len(seeds), dtype=torch.float64)
    xs = torch.stack([x + 0.1 * e for e in range(len(seeds))])
    ensemble = MLPEnsemble(1, members=3, activation="sine", seeds=seeds, **SMALL).to(torch.float64)
    optimizer = torch.optim.Adam(ensemble.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        ((ensemble(xs) - y) ** 2).mean(dim=1).sum().backward()
        optimizer.step()
    for e, seed in enumerate(seeds):
        net = mlp(1, activation="sine", seed=seed, **SMALL).to(torch.float64)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(steps):
            optimizer.zero_grad()
            ((net(xs[e])[:, 0] - y[e]) ** 2).mean().backward()
            optimizer.step()
        for got, want in zip(ensemble.member(e).parameters(), net.parameters()):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
def test_scale_output_scales_each_member(bias):
    ensemble = MLPEnsemble(1, members=3, bias=bias, **SMALL)
    x = torch.rand(10, 1)
    before = ensemble(x).detach()
    factors = np.array([0.5, -2.0, 0.0])
    assert ensemble.scale_output_(factors) is ensemble
    torch.testing.assert_close(ensemble(x).detach(), before * torch.tensor(factors, dtype=torch.float32)[:, None])
    ensemble.scale_output_(torch.tensor([2.0, 1.0, 1.0]))
    torch.testing.assert_close(ensemble(x)[0].detach(), before[0])


def test_shrink_without_biases_leaves_biases_alone():
    ensemble = MLPEnsemble(1, members=3, **SMALL)
    before = {name: p.clone() for name, p in ensemble.named_parameters()}
    shrink_(ensemble, 0.4, biases=False)
    assert any(name.endswith(".bias") for name in before)
    for name, p in ensemble.named_parameters():
        assert torch.equal(p, before[name] if name.endswith(".bias") else 0.4 * before[name]), name


def test_shrink_and_perturb_is_seeded_and_draws_mlp_distributions():
    ensemble = MLPEnsemble(1, members=4, activation="sine", **SMALL)
    first, second, other = (shrink_(MLPEnsemble.from_models([ensemble.member(e) for e in range(4)]), 0.4,
                                    perturb=0.1, seed=seed) for seed in (11, 11, 12))
    for a, b, c, orig in zip(first.parameters(), second.parameters(), other.parameters(), ensemble.parameters()):
        assert torch.equal(a, b)
        assert not torch.equal(a, c)
        fresh = (a - 0.4 * orig) / 0.1
        assert not torch.allclose(fresh[0], fresh[1])  # members get different draws
    layers = [m for m in ensemble.modules() if isinstance(m, BatchedLinear)]
    bounds = [1 / 1, math.sqrt(6 / 12) / 30, math.sqrt(6 / 12) / 30]
    state = torch.get_rng_state()
    ensemble.reset_parameters()
    assert not torch.equal(torch.get_rng_state(), state)  # drew from the global RNG
    for layer, bound in zip(layers, bounds):
        assert layer.weight.abs().max() <= bound
        assert layer.weight.abs().max() > 0.8 * bound
        assert layer.bias.abs().max() <= 1 / math.sqrt(layer.in_features)


def test_float64_keeps_dtype():
    ensemble = MLPEnsemble(1, members=2, **SMALL).to(torch.float64)
    x = torch.rand(6, 1, dtype=torch.float64)
    out = ensemble(x)
    assert out.dtype == torch.float64
    net = ensemble.member(1)
    assert next(net.parameters()).dtype == torch.float64
    torch.testing.assert_close(out[1], net(x)[:, 0])
    assert MLPEnsemble.from_models(torch.nn.ModuleList([net, net])).layers[0].weight.dtype == torch.float64


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="members"):
        MLPEnsemble(1, members=0)
    with pytest.raises(TypeError, match="members"):
        MLPEnsemble(1, members=2.0)
    with pytest.raises(ValueError, match="seeds"):
        MLPEnsemble(1, members=2, seeds=[1, 2, 3])
    with pytest.raises(TypeError, match="seeds"):
        MLPEnsemble(1, members=2, seeds=[1, 2.5])
    with pytest.raises(TypeError, match="seeds"):
        MLPEnsemble(1, members=1, seeds=3)
    with pytest.raises(ValueError, match="activation"):
        MLPEnsemble(1, members=2, activation="sigmoid")
    ensemble = MLPEnsemble(2, members=3, **SMALL)
    for x in (torch.zeros(5, 3), torch.zeros(5), torch.zeros(2, 5, 2), torch.zeros(3, 5, 1)):
        with pytest.raises(ValueError, match="x must have shape"):
            ensemble(x)
    with pytest.raises(TypeError, match="x"):
        ensemble(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="factors"):
        ensemble.scale_output_([1.0, 2.0])
    with pytest.raises(ValueError, match="factors"):
        ensemble.scale_output_([1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match="i must be"):
        ensemble.member(3)
    with pytest.raises(TypeError, match="i must be"):
        ensemble.member(1.0)


def test_from_models_refuses_mismatches():
    net = mlp(1, seed=0, **SMALL)
    with pytest.raises(ValueError, match="models is empty"):
        MLPEnsemble.from_models([])
    with pytest.raises(TypeError, match="models"):
        MLPEnsemble.from_models(net)
    with pytest.raises(TypeError, match=r"models\[1\]"):
        MLPEnsemble.from_models([net, torch.nn.Linear(1, 1)])
    for other in (mlp(1, width=8, depth=2), mlp(1, activation="tanh", **SMALL), mlp(1, bias=False, **SMALL),
                  mlp(2, **SMALL), mlp(1, constant_feature=True, **SMALL)):
        with pytest.raises(ValueError, match=r"models\[1\]"):
            MLPEnsemble.from_models([net, other])
    with pytest.raises(ValueError, match=r"models\[1\]"):
        MLPEnsemble.from_models([net, mlp(1, **SMALL).to(torch.float64)])
    changed = mlp(1, **SMALL)
    changed[1] = torch.nn.ReLU(inplace=True)
    with pytest.raises(ValueError, match=r"models\[1\]"):
        MLPEnsemble.from_models([net, changed])


def test_concatenate_keeps_members_in_order_and_copies():
    a = MLPEnsemble(1, members=2, width=8, depth=2, seeds=[0, 1])
    b = MLPEnsemble(1, members=1, width=8, depth=2, seeds=[5])
    whole = MLPEnsemble.concatenate([a, b])
    x = torch.rand(7, 1)
    torch.testing.assert_close(whole(x), torch.cat([a(x), b(x)]))
    assert whole.members == 3 and whole.layers[0].weight.data_ptr() != a.layers[0].weight.data_ptr()
    with pytest.raises(ValueError, match="ensembles\\[1\\]"):
        MLPEnsemble.concatenate([a, MLPEnsemble(1, members=1, width=4, depth=2)])
    with pytest.raises(TypeError, match="ensembles"):
        MLPEnsemble.concatenate([])


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "sine"])
def test_member_weights_are_the_single_mlp_with_the_same_seed(activation):
    kwargs = dict(SMALL, activation=activation, omega_0=10.0)
    ensemble = MLPEnsemble(2, members=3, seeds=[5, 0, 2**40], **kwargs)
    for e, seed in enumerate([5, 0, 2**40]):
        for got, want in zip(ensemble.member(e).parameters(), mlp(2, seed=seed, **kwargs).parameters()):
            assert torch.equal(got, want)


@pytest.mark.parametrize(("omega_0", "first"), [(None, False), (30.0, True), (30.0, False)])
def test_batched_layers_draw_the_distributions_of_mlp_layers_bit_for_bit(omega_0, first):
    # One initialisation (spectral.models.uniform_init_) for mlp's SIREN layers and BatchedLinear: the bounds
    # 1/sqrt(n), 1/n (first SIREN layer) and sqrt(6/n)/omega_0, weight then bias, from the global RNG.
    bound = 1 / math.sqrt(8) if omega_0 is None else (1 / 8 if first else math.sqrt(6 / 8) / omega_0)
    torch.manual_seed(3)
    weight = torch.empty(2, 8, 4).uniform_(-bound, bound)
    bias = torch.empty(2, 1, 4).uniform_(-1 / math.sqrt(8), 1 / math.sqrt(8))
    torch.manual_seed(3)
    layer = BatchedLinear(2, 8, 4, omega_0=omega_0, first=first)
    assert torch.equal(layer.weight, weight) and torch.equal(layer.bias, bias)


def test_several_outputs_match_each_member_alone():
    from spectral.models import mlp

    ens = MLPEnsemble(3, members=2, width=8, depth=2, seeds=[4, 5], out_features=10)
    x = torch.rand(7, 3, generator=torch.Generator().manual_seed(0))
    out = ens(x)
    assert out.shape == (2, 7, 10)
    for i, seed in enumerate((4, 5)):
        alone = mlp(3, width=8, depth=2, seed=seed, out_features=10)
        torch.testing.assert_close(out[i], alone(x), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(ens.member(i)(x), alone(x), rtol=1e-6, atol=1e-6)
    assert MLPEnsemble.from_models([ens.member(0), ens.member(1)])(x).shape == (2, 7, 10)
