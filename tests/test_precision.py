"""ulp, lost updates and the lost-update probe, checked against hand-done IEEE arithmetic."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from spectral import Grid, shrink_
from spectral.precision import (
    DEFAULT_RATIO_BINS,
    LostUpdateProbe,
    LowPrecisionWeights,
    RegisterFloor,
    lost_update_fraction,
    ratio,
    register_floor,
    stochastic_round,
    ulp,
)

# dtype: (ulp(1) = 2**(1 - precision), smallest subnormal, smallest normal)
FORMATS = {
    torch.float16: (2.0**-10, 2.0**-24, 2.0**-14),
    torch.bfloat16: (2.0**-7, 2.0**-133, 2.0**-126),
    torch.float32: (2.0**-23, 2.0**-149, 2.0**-126),
    torch.float64: (2.0**-52, 2.0**-1074, 2.0**-1022),
}


def tensor(values, dtype):
    return torch.tensor(values, dtype=dtype)


@pytest.mark.parametrize("dtype", list(FORMATS))
def test_ulp_of_one_and_its_binade(dtype):
    eps, _, _ = FORMATS[dtype]
    below_two = 2 - eps  # largest value below 2 (mantissa all ones)
    spacing = ulp(tensor([1.0, -1.0, below_two, 2.0, -2.0, 0.5], dtype))
    assert spacing.dtype == dtype
    assert spacing.tolist() == [eps, eps, eps, 2 * eps, 2 * eps, eps / 2]


@pytest.mark.parametrize("dtype", list(FORMATS))
def test_ulp_in_and_near_the_subnormal_range(dtype):
    _, tiny, normal = FORMATS[dtype]
    # every subnormal, zero and the first normal binade share the spacing `tiny`
    values = tensor([0.0, -0.0, tiny, 3 * tiny, normal - tiny, normal, -normal, 2 * normal], dtype)
    assert ulp(values).tolist() == [tiny] * 7 + [2 * tiny]


@pytest.mark.parametrize("dtype", list(FORMATS))
def test_ulp_special_values(dtype):
    big = torch.finfo(dtype).max
    spacing = ulp(tensor([big, float("inf"), -float("inf"), float("nan")], dtype))
    assert spacing[0] == float("inf")
    assert torch.isnan(spacing[1:]).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_ulp_matches_nextafter_on_every_positive_finite_value(dtype):
    bits = torch.arange(0, 2**15, dtype=torch.int32).to(torch.int16)  # every non-negative bit pattern
    values = bits.view(dtype)
    values = values[torch.isfinite(values)]
    following = torch.nextafter(values, torch.full_like(values, float("inf")))
    assert torch.equal(ulp(values), following - values)


@pytest.mark.parametrize("np_dtype", [np.float16, np.float32, np.float64])
def test_ulp_of_numpy_matches_numpy_spacing(np_dtype):
    rng = np.random.default_rng(0)
    info = np.finfo(np_dtype)
    values = np.concatenate([rng.standard_normal(200), rng.uniform(-1, 1, 50) * float(info.tiny)]).astype(np_dtype)
    values = np.concatenate([values, [info.smallest_subnormal, 0]]).astype(np_dtype)
    result = ulp(values)
    assert isinstance(result, np.ndarray) and result.dtype == np_dtype
    np.testing.assert_array_equal(result, np.spacing(np.abs(values)))
    scalar = ulp(np_dtype(1))
    assert isinstance(scalar, np_dtype) and scalar == info.eps


def test_ulp_of_python_float_keeps_device_and_shape_of_tensors():
    assert ulp(1.0) == 2.0**-52 and ulp(-3) == 2.0**-51
    weights = torch.nn.Parameter(torch.ones(2, 3))
    spacing = ulp(weights)
    assert spacing.shape == (2, 3) and spacing.device == weights.device and not spacing.requires_grad


@pytest.mark.parametrize("bad", [torch.tensor([1]), np.array([1, 2]), "1.0", True, None])
def test_ulp_refuses_non_float_input(bad):
    with pytest.raises(TypeError, match="x must"):
        ulp(bad)


def test_one_plus_a_thousandth_is_lost_in_bfloat16_and_kept_in_float32():
    one, thousandth = torch.tensor([1.0]), torch.tensor([1e-3])
    # bfloat16: 1e-3 < ulp(1) / 2 = 2**-8; float16: 1e-3 > 2**-11; float32: far larger than 2**-24
    assert lost_update_fraction(one, thousandth, "bfloat16") == 1.0
    assert lost_update_fraction(one, thousandth, torch.float16) == 0.0
    assert lost_update_fraction(one, thousandth, "float32") == 0.0
    assert torch.tensor(1.0, dtype=torch.bfloat16) + torch.tensor(1e-3, dtype=torch.bfloat16) == 1.0


def test_half_ulp_ties_round_to_even():
    # bfloat16: 1 + 2**-8 ties between 1 (even) and 1 + 2**-7 (odd): lost.
    # 1 + 2**-7 + 2**-8 ties between 1 + 2**-7 (odd) and 1 + 2**-6 (even): kept.
    weights = torch.tensor([1.0, 1.0 + 2**-7], dtype=torch.float64)
    updates = torch.full((2,), 2.0**-8, dtype=torch.float64)
    assert lost_update_fraction(weights[:1], updates[:1], "bfloat16") == 1.0
    assert lost_update_fraction(weights[1:], updates[1:], "bfloat16") == 0.0


def test_zero_updates_are_not_counted_and_all_zero_gives_nan():
    weights = torch.ones(4)
    assert lost_update_fraction(weights, torch.tensor([1e-3, 0.0, 0.0, 0.5]), "bfloat16") == 0.5
    assert np.isnan(lost_update_fraction(weights, torch.zeros(4), "float16"))


def test_updates_that_underflow_in_the_storage_dtype_are_lost():
    # float16's smallest subnormal is 2**-24: 2**-24 survives on a zero weight, 2**-26 rounds to 0
    zeros = np.zeros(2)
    assert lost_update_fraction(zeros, np.array([2.0**-24, 2.0**-26]), "float16") == 0.5
    assert lost_update_fraction(zeros, np.array([2.0**-24, 2.0**-26]), "float32") == 0.0
    assert lost_update_fraction(np.ones(1), np.array([1e-10]), "float16") == 1.0


@pytest.mark.parametrize("dtype", [torch.int32, "int8", 3, "float8", torch.complex64])
def test_lost_update_fraction_refuses_non_float_dtype(dtype):
    with pytest.raises((TypeError, ValueError), match="dtype"):
        lost_update_fraction(torch.ones(2), torch.ones(2), dtype)


def test_lost_update_fraction_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="updates"):
        lost_update_fraction(torch.ones(2, 3), torch.ones(3, 2), "float16")


def test_a_power_of_two_shrink_is_exact_except_in_subnormals():
    layer = torch.nn.Linear(4, 3)
    before = layer.weight.detach().clone()
    shrink_(shrink_(layer, 0.5), 2.0)
    assert torch.equal(layer.weight, before)

    tiny, normal = 2.0**-149, 2.0**-126
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3 * tiny, tiny, normal, 1.0]] * 3))
    shrink_(layer, 0.5)
    # 1.5 and 0.5 subnormal units round to even (2 and 0); 2**-127 is an exact subnormal
    assert layer.weight[0].tolist() == [2 * tiny, 0.0, normal / 2, 0.5]
    shrink_(layer, 2.0)
    assert layer.weight[0].tolist() == [4 * tiny, 0.0, normal, 1.0]


def tanh_net(dtype=torch.float32):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).to(dtype)


def train(net, optimizer, steps, dtype=torch.float32):
    inputs = torch.linspace(-1, 1, 32, dtype=dtype).reshape(16, 2)
    for _ in range(steps):
        optimizer.zero_grad()
        (net(inputs) ** 2).mean().backward()
        optimizer.step()


def test_probe_half_precision_loses_more_than_single():
    net = tanh_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-4)
    probe = LostUpdateProbe(net, optimizer)
    train(net, optimizer, 4)
    history = probe.history
    assert history.steps.tolist() == [0, 1, 2, 3]
    assert history.layers == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert (history.fraction["float16"] > history.fraction["float32"]).all()
    assert (history.fraction["bfloat16"] > history.fraction["float16"]).all()
    assert history.layer_fraction["float16"].shape == (4, 4)
    assert history.ratio_histogram["float16"].shape == (4, len(DEFAULT_RATIO_BINS) + 1)
    # every non-zero update lands in exactly one histogram bin
    for counts in history.ratio_histogram.values():
        assert counts.sum(axis=1).tolist() == history.changed.sum(axis=1).tolist()


def test_probe_updates_far_below_float32_spacing_are_all_lost_in_float32():
    net = tanh_net(torch.float64)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.uniform_(0.5, 1.0)  # ulp in float32 at least 2**-24
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-14)
    with LostUpdateProbe(net, optimizer, dtypes=("float32", torch.float64)) as probe:
        train(net, optimizer, 3, torch.float64)
    history = probe.history
    assert (history.changed == [16, 8, 8, 1]).all()
    assert history.fraction["float32"].tolist() == [1.0, 1.0, 1.0]
    assert history.fraction["float64"].tolist() == [0.0, 0.0, 0.0]
    edges = history.ratio_bin_edges
    lost_columns = np.searchsorted(edges, -1, side="right")  # columns below log2 ratio -1
    assert history.ratio_histogram["float32"][:, lost_columns:].sum() == 0
    assert history.ratio_histogram["float64"][:, :lost_columns].sum() == 0


def test_probe_by_hand_layer_fractions_and_histogram():
    layer = torch.nn.Linear(2, 1, bias=False).double()
    with torch.no_grad():
        layer.weight.fill_(1.0)
    probe = LostUpdateProbe(layer, dtypes=("bfloat16", "float32"))
    probe.before_step()
    with torch.no_grad():
        layer.weight += torch.tensor([[1e-3, 0.1]], dtype=torch.float64)
    assert probe.update()
    history = probe.history
    assert history.layer_fraction["bfloat16"].tolist() == [[0.5]]
    assert history.layer_fraction["float32"].tolist() == [[0.0]]
    update = (torch.tensor([1 + 1e-3, 1.1], dtype=torch.float64) - 1).numpy()
    for name, spacing in (("bfloat16", 2.0**-7), ("float32", 2.0**-23)):
        expected = np.zeros(len(DEFAULT_RATIO_BINS) + 1, dtype=np.int64)
        np.add.at(expected, np.searchsorted(history.ratio_bin_edges, np.log2(update / spacing), side="right"), 1)
        assert history.ratio_histogram[name].tolist() == [expected.tolist()]


def test_probe_every_snapshot_remove_and_to_dict():
    net = tanh_net()
    net[2].bias.requires_grad_(False)
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    probe = LostUpdateProbe(net, optimizer, every=2)
    probe.snapshot("start")
    train(net, optimizer, 5)
    probe.snapshot("shrink")
    probe.remove()
    train(net, optimizer, 2)
    history = probe.history
    assert history.steps.tolist() == [0, 0, 2, 4, 4]
    assert history.labels.tolist() == ["start", "", "", "", "shrink"]
    assert history.layers == ["0.weight", "0.bias", "2.weight"]
    assert history.changed[[0, 4]].sum() == 0 and history.changed[1:4].all()  # events measure no update
    assert np.isnan(history.fraction["float16"][[0, 4]]).all() and history.finite.all()
    data = json.loads(json.dumps(history.to_dict(), allow_nan=False))
    assert data["steps"] == [0, 0, 2, 4, 4] and data["labels"] == ["start", "", "", "", "shrink"]
    assert len(data["ratio_histogram"]["float16"]) == 5 and len(data["layer_fraction"]["float32"][0]) == 3


def test_probe_without_optimizer_and_a_step_without_updates():
    net = tanh_net()
    probe = LostUpdateProbe(net, every=3)
    probe.before_step(9)
    assert probe.update(9)  # nothing changed: fractions are NaN, written as None in to_dict
    probe.before_step()
    assert not probe.update()  # step 10 is skipped
    assert probe.history.steps.tolist() == [9]
    assert np.isnan(probe.history.fraction["float16"]).all()
    assert probe.history.to_dict()["fraction"]["float16"] == [None]
    with pytest.raises(RuntimeError, match="before_step"):
        probe.update()
    probe.before_step(12)
    with pytest.raises(ValueError, match="step=13"):
        probe.update(13)  # not the step announced; the announced one is still pending
    assert probe.update(12) and probe.history.steps.tolist() == [9, 12]


@pytest.mark.parametrize("kwargs, match", [
    ({"dtypes": (torch.int32,)}, "dtypes"), ({"dtypes": ("int8",)}, "dtypes"), ({"dtypes": (3,)}, "dtypes"),
    ({"dtypes": ()}, "dtypes"), ({"dtypes": ("float16", torch.float16)}, "dtypes"),
    ({"every": 0}, "every"), ({"ratio_bins": [1, 0]}, "ratio_bins"), ({"optimizer": "sgd"}, "optimizer"),
])
def test_probe_refuses_bad_arguments(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        LostUpdateProbe(tanh_net(), **kwargs)


class Alternating(torch.nn.Module):
    """``offset + amplitude * (-1)**i`` on the points ``i / n`` of an ``n``-point grid: a Nyquist component."""

    def __init__(self, offset: float, amplitude: float, n: int) -> None:
        super().__init__()
        self.offset = torch.nn.Parameter(torch.tensor(offset))
        self.amplitude = torch.nn.Parameter(torch.tensor(amplitude))
        self.n = n

    def forward(self, x):
        sign = 1 - 2 * torch.remainder(torch.round(self.n * x[:, 0]), 2)
        return self.offset + self.amplitude * sign


def test_a_component_far_below_bfloat16_resolution_lies_on_its_floor_and_above_float32s():
    # 1 +- 2**-12: bfloat16's spacing is 2**-7 above 1 and 2**-8 below, so both round to 1 and the error is the
    # whole component (power equal to the function's, bit for bit); float32 and float64 hold 1 +- 2**-12 exactly.
    grid = Grid.uniform(8)
    model = Alternating(1.0, 2.0**-12, 8)
    low = register_floor(model, grid, "bfloat16")
    assert low.dtype == "bfloat16" and low.freqs.tolist() == [0, 1, 2, 3, 4]
    assert low.power[4] == low.floor[4] == 2.0**-24 and low.power[:4].tolist() == [0, 0, 0, 0]
    assert low.fraction_below(3) == 1.0
    for dtype in ("float32", torch.float64):
        exact = register_floor(model, grid, dtype)
        assert exact.floor.tolist() == [0.0] * 5 and exact.fraction_below(3) == 0.0
    assert math.isnan(low.fraction_below(4))  # no power above the Nyquist frequency


def test_a_tie_rounds_to_even_and_leaves_a_ninth_of_the_power():
    # 1 + 3 * 2**-9 rounds up to 1 + 2**-7 (error +2**-9); 1 - 3 * 2**-9 is halfway between 1 - 2**-8 (odd) and
    # 1 - 2**-7 (even) and rounds to the even one (error -2**-9): the error is a third of the component.
    floor = register_floor(Alternating(1.0, 3 * 2.0**-9, 8), Grid.uniform(8), torch.bfloat16)
    assert floor.power[4] == 9 * 2.0**-18 and floor.floor[4] == 2.0**-18
    assert floor.fraction_below(3) == 0.0


def test_the_floor_of_an_exactly_representable_function_is_zero():
    layer = torch.nn.Linear(1, 1)
    with torch.no_grad():
        layer.weight.fill_(0.5)
        layer.bias.fill_(0.25)
    for dtype in ("bfloat16", "float16", "float32"):
        floor = register_floor(layer, Grid.uniform(16), dtype, window="hann")  # i / 32 + 1 / 4: exact in 8 bits
        assert not floor.floor.any() and floor.power[1:].all()


def test_register_floor_in_2d_and_leaves_the_model_alone():
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    before = [p.detach().clone() for p in net.parameters()]
    floor = register_floor(net, Grid.uniform((8, 8)), "float16", window="hann")
    assert isinstance(floor.freqs, tuple) and floor.power.shape == floor.floor.shape == (8, 8)
    assert 0 < floor.floor.sum() < floor.power.sum()
    assert all(torch.equal(a, p) and p.dtype == torch.float32 for a, p in zip(before, net.parameters()))
    assert 0.0 <= floor.fraction_below(1.0) <= 1.0


@pytest.mark.parametrize("args, error, match", [
    ((lambda p: p, Grid.uniform(8), "float16"), TypeError, "model"),
    ((torch.nn.Linear(1, 1), 8, "float16"), TypeError, "grid"),
    ((torch.nn.Linear(1, 1), Grid.uniform(8), "float8"), ValueError, "dtype"),
    ((torch.nn.Linear(1, 1), Grid.uniform(8), torch.int32), ValueError, "dtype"),
])
def test_register_floor_refuses_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        register_floor(*args)
    with pytest.raises(ValueError, match="cutoff"):
        register_floor(torch.nn.Linear(1, 1), Grid.uniform(8), "float16").fraction_below(-1.0)


def test_ratio_is_nan_where_the_denominator_is_not_positive():
    assert ratio([1, 3, 2], [2, 0, -1]).tolist()[0] == 0.5
    assert np.isnan(ratio([1, 3, 2], [2, 0, -1])[1:]).all()


# --- Stochastic rounding and the low-precision store, against the published anchors ---------------------------------


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def test_a_thousandth_added_a_thousand_times_to_one_in_bfloat16():
    # Zamirai et al. 2020: round-to-nearest "cancels small updates"; stochastic rounding keeps them in expectation.
    chains = 2000
    stores = {rule: LowPrecisionWeights(torch.ones(chains), "bfloat16", rule, generator()) for rule in
              ("nearest", "stochastic", "kahan")}
    lost = {rule: 0 for rule in stores}
    for _ in range(1000):
        for rule, store in stores.items():
            lost[rule] += int(store.apply(torch.full((chains,), 1e-3)).sum())
    assert torch.equal(stores["nearest"].weights, torch.ones(chains, dtype=torch.bfloat16))
    assert lost["nearest"] == 1000 * chains
    assert stores["stochastic"].weights.double().mean().item() == pytest.approx(2.0, abs=0.05)
    assert stores["stochastic"].weights.double().std().item() > 0  # each chain is one random walk
    assert torch.equal(stores["kahan"].weights, torch.full((chains,), 2.0, dtype=torch.bfloat16))
    assert lost["kahan"] == 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_stochastic_round_lands_on_a_neighbour_with_probability_proportional_to_proximity(dtype):
    low = torch.tensor([1.0, -3.0, 2.0**-20], dtype=dtype)
    high = torch.nextafter(low, torch.full_like(low, math.inf))
    fraction = torch.tensor([0.125, 0.75, 0.5], dtype=torch.float64)
    x = low.double() + fraction * (high.double() - low.double())
    draws = stochastic_round(x.expand(40000, 3), dtype, generator())
    assert draws.dtype == dtype
    assert torch.all((draws == low) | (draws == high))
    np.testing.assert_allclose((draws == high).double().mean(dim=0).numpy(), fraction.numpy(), atol=0.01)
    np.testing.assert_allclose(draws.double().mean(dim=0).numpy(), x.numpy(), rtol=1e-3)


def test_stochastic_round_keeps_exact_and_special_values_and_is_reproducible():
    x = torch.tensor([1.0, 0.0, -2.5, math.inf, -math.inf, math.nan, 1e6])
    rounded = stochastic_round(x, torch.float16, generator())
    assert rounded[:3].tolist() == [1.0, 0.0, -2.5] and rounded[3] == math.inf and rounded[4] == -math.inf
    assert math.isnan(rounded[5]) and rounded[6] == math.inf  # 1e6 overflows float16 under round-to-nearest too
    y = torch.rand(50, dtype=torch.float64, generator=generator(1))
    assert torch.equal(stochastic_round(y, "bfloat16", generator(2)), stochastic_round(y, "bfloat16", generator(2)))
    assert not torch.equal(stochastic_round(y, "bfloat16", generator(2)), stochastic_round(y, "bfloat16", generator(3)))


def test_stochastic_round_with_one_generator_per_row_gives_each_row_its_own_draws():
    x = torch.rand(3, 64, dtype=torch.float64, generator=generator(1))
    together = stochastic_round(x, "bfloat16", [generator(seed) for seed in (5, 6, 7)])
    alone = stochastic_round(x[2:], "bfloat16", [generator(7)])
    assert torch.equal(together[2:], alone)
    with pytest.raises(TypeError, match="one per row"):
        stochastic_round(x, "bfloat16", [generator(5)])


def test_stochastic_round_and_store_refuse_bad_input():
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        stochastic_round(torch.ones(2, dtype=torch.int64), "bfloat16")
    with pytest.raises(ValueError, match="dtype"):
        stochastic_round(torch.ones(2), "float8")
    with pytest.raises(ValueError, match="rounding"):
        LowPrecisionWeights(torch.ones(2), "bfloat16", "up")
    with pytest.raises(ValueError, match="update must be a tensor of shape"):
        LowPrecisionWeights(torch.ones(2), "bfloat16").apply(torch.ones(3))


def _train_gain_layer(store_rule):
    """A bfloat16 linear layer of 768 weights at about 1 (like a layer-norm gain), 100 Adam steps at lr 6e-4.

    ``store_rule`` None: torch's Adam on the bfloat16 weights themselves (no master copy); "master": Adam on a
    float32 master copy, the bfloat16 weights its rounding; otherwise Adam on a float32 view of the stored weights
    and the update stored by that LowPrecisionWeights rule. Returns the initial and final bfloat16 weights and the
    fraction of updates the store lost.
    """
    start = (0.5 + torch.rand(768, generator=generator())).to(torch.bfloat16)
    x = torch.randn(64, 768, generator=generator(1))
    y = torch.randn(64, generator=generator(2))
    store = None if store_rule in (None, "master") else LowPrecisionWeights(start, "bfloat16", store_rule, generator(3))
    trained = torch.nn.Parameter(start.clone() if store_rule is None else start.float())
    optimizer = torch.optim.Adam([trained], lr=6e-4)
    lost = changed = 0
    for _ in range(100):
        optimizer.zero_grad()
        weights = trained if store_rule is None else trained.to(torch.bfloat16)
        ((x.to(weights.dtype) @ weights).float() - y).pow(2).mean().backward()
        before = trained.detach().clone()
        optimizer.step()
        if store is not None:
            update = trained.detach() - before
            lost += int(store.apply(update).sum())
            changed += int((update != 0).sum())
            with torch.no_grad():
                trained.copy_(store.weights)
    final = trained.detach().to(torch.bfloat16)
    return start, final, lost / changed if changed else math.nan


def test_a_bfloat16_layer_without_master_copy_moves_no_weight_in_100_adam_steps():
    # The measured case: 768 bfloat16 weights, 100 Adam steps at lr 6e-4; each step (about lr) is below half the
    # spacing of every weight in [0.5, 1.5) (2**-9 or more), so without a master copy none of them moves.
    start, final, _ = _train_gain_layer(None)
    assert int((final != start).sum()) == 0
    start, final, lost = _train_gain_layer("nearest")
    assert int((final != start).sum()) == 0 and lost == 1.0
    start, final, _ = _train_gain_layer("master")
    assert int((final != start).sum()) >= 0.95 * 768


@pytest.mark.parametrize("rule", ["stochastic", "kahan"])
def test_stochastic_rounding_or_kahan_moves_nearly_every_weight_without_a_master_copy(rule):
    start, final, lost = _train_gain_layer(rule)
    assert int((final != start).sum()) >= 0.9 * 768
    if rule == "kahan":
        assert lost < 0.01  # every update left a trace: in the weight or in its compensation


@pytest.mark.parametrize("decay, changes", [(1.0, False), (10.0, True)])
def test_decoupled_weight_decay_below_half_a_bfloat16_spacing_changes_nothing(decay, changes):
    # lr * decay = 1e-3 < 2**-9: w * (1 - 1e-3) rounds back to w for every bfloat16 w; 1e-2 > 2**-7 moves all.
    lr = 1e-3
    start = (torch.rand(256, generator=generator()) * 8 - 4).to(torch.bfloat16)
    weights = torch.nn.Parameter(start.clone())
    optimizer = torch.optim.AdamW([weights], lr=lr, weight_decay=decay)
    store = LowPrecisionWeights(start, "bfloat16")
    for _ in range(100):
        weights.grad = torch.zeros_like(weights)
        optimizer.step()
        store.apply(-lr * decay * store.weights.double())
    assert torch.equal(weights.detach(), start) is not changes
    assert torch.equal(store.weights, start) is not changes
    compensated = LowPrecisionWeights(start, "bfloat16", "kahan")
    for _ in range(100):
        compensated.apply(-lr * decay * compensated.weights.double())
    assert not torch.equal(compensated.weights, start)  # Kahan keeps the decay that rounding swallows


def test_a_bin_at_the_mean_floor_reads_below_about_half_the_time_under_the_robust_rule():
    # Per-bin rounding-noise power is about exponential: a single draw puts a bin of power equal to the mean floor
    # at or below it with probability exp(-1); the floor averaged over 9 bins, close to half (P(Gamma(9) >= 9) = 0.46).
    bins = 20001
    floor = np.random.default_rng(0).exponential(1.0, bins)
    register = RegisterFloor(np.arange(bins, dtype=float), np.ones(bins), floor, "bfloat16")
    assert register.fraction_below(0.5) == pytest.approx(math.exp(-1), abs=0.01)
    assert register.fraction_below(0.5, average_bins=9) == pytest.approx(0.5, abs=0.06)
    floor2d = np.random.default_rng(1).exponential(1.0, (141, 141))
    axis = np.fft.fftfreq(141, d=1 / 141)
    register2d = RegisterFloor((axis, axis), np.ones((141, 141)), floor2d, "float16")
    assert register2d.fraction_below(0.0, average_bins=3) == pytest.approx(0.5, abs=0.06)


@pytest.mark.parametrize("bins", [0, 2, 1.0, True])
def test_fraction_below_refuses_an_even_or_non_integer_window(bins):
    register = RegisterFloor(np.arange(4.0), np.ones(4), np.ones(4), "bfloat16")
    with pytest.raises(ValueError, match="average_bins"):
        register.fraction_below(0.5, average_bins=bins)
