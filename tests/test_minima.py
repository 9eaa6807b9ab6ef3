"""Dimension of the minima manifold and the along/across split of weight motion."""

from __future__ import annotations

import math

import pytest
import torch

from spectral.minima import (
    displacement_split,
    jacobian,
    manifold_dimension,
    parameter_vector,
    rank_tolerance,
    relative_spacing,
    singular_values,
)
from spectral.models import mlp


def points(n, width=1, seed=0):
    return torch.rand(n, width, generator=torch.Generator().manual_seed(seed)) * 4 - 2


@pytest.mark.parametrize("seed", [0, 1])
def test_generic_tanh_net_on_distinct_points_reads_p_minus_n(seed):
    net = mlp(1, width=8, depth=1, activation="tanh", seed=seed)  # P = 8 + 8 + 8 + 1
    assert manifold_dimension(net, torch.linspace(-2, 2, 5).reshape(-1, 1)) == 25 - 5
    net2d = mlp(2, width=6, depth=1, activation="tanh", seed=seed)  # P = 12 + 6 + 6 + 1
    assert manifold_dimension(net2d, points(8, 2, seed)) == 25 - 8


def test_duplicate_inputs_do_not_raise_the_rank():
    net = mlp(1, width=8, depth=1, activation="tanh", seed=0)
    distinct = torch.linspace(-2, 2, 5).reshape(-1, 1)
    repeated = torch.cat([distinct, distinct[[0, 3, 3]]])
    assert manifold_dimension(net, repeated) == manifold_dimension(net, distinct) == 20


def test_under_parameterised_model_reads_zero():
    net = mlp(1, width=2, depth=1, activation="tanh", seed=0)  # P = 7
    assert manifold_dimension(net, torch.linspace(-2, 2, 10).reshape(-1, 1)) == 0
    assert manifold_dimension(torch.nn.Linear(1, 1), [[0.0], [1.0], [2.0]]) == 0


def test_default_tolerance_is_matrix_rank_default():
    net = mlp(1, width=16, depth=2, activation="tanh", seed=0)
    inputs = torch.linspace(-1, 1, 40).reshape(-1, 1)
    matrix = jacobian(net, inputs)
    assert manifold_dimension(net, inputs) == matrix.shape[1] - int(torch.linalg.matrix_rank(matrix))


def test_rtol_by_hand():
    # J of a bias-free linear map is the input matrix: singular values 1 and 1e-8
    layer = torch.nn.Linear(2, 1, bias=False)
    inputs = torch.tensor([[1.0, 0.0], [0.0, 1e-8]], dtype=torch.float64)
    assert torch.equal(jacobian(layer, inputs), inputs)
    assert manifold_dimension(layer, inputs) == 0
    assert manifold_dimension(layer, inputs, rtol=1e-6) == 1
    assert manifold_dimension(layer, inputs, rtol=1.0) == 2  # nothing is strictly above the largest
    with pytest.raises(ValueError, match="rtol"):
        manifold_dimension(layer, inputs, rtol=-1.0)


def test_jacobian_of_multi_output_linear_layer():
    layer = torch.nn.Linear(2, 3)
    inputs = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    matrix = jacobian(layer, inputs)
    assert matrix.shape == (6, 9) and matrix.dtype == torch.float64
    # row i * 3 + k: d y_k(x_i) = x_i on row k of the weight, 1 on bias k
    expected = torch.zeros(6, 9, dtype=torch.float64)
    for i, x in enumerate(inputs.double()):
        for k in range(3):
            expected[i * 3 + k, 2 * k : 2 * k + 2] = x
            expected[i * 3 + k, 6 + k] = 1
    assert torch.equal(matrix, expected)
    assert manifold_dimension(layer, inputs) == 9 - 6


def test_model_is_left_unchanged():
    net = mlp(1, width=8, depth=2, activation="tanh", seed=0)
    net.train()
    net[0].weight.requires_grad_(False)
    before = parameter_vector(net)
    manifold_dimension(net, points(6))
    assert torch.equal(parameter_vector(net), before)
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert [p.requires_grad for p in net.parameters()] == [False] + [True] * 5
    assert all(module.training for module in net.modules())


def test_bad_arguments():
    with pytest.raises(TypeError, match="model"):
        manifold_dimension(lambda x: x, points(3))
    with pytest.raises(ValueError, match="model"):
        jacobian(torch.nn.Tanh(), points(3))
    with pytest.raises(TypeError, match="inputs"):
        jacobian(torch.nn.Linear(1, 1), ["a"])
    with pytest.raises(ValueError, match="jacobian"):
        displacement_split([1.0, 0.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="displacement"):
        displacement_split([[1.0, 0.0, 0.0]], [1.0, 0.0])


def test_displacement_split_by_hand():
    split = displacement_split([[1.0, 0.0, 0.0]], [3.0, 4.0, 0.0])
    assert split == {"along": 4.0, "across": 3.0, "fraction_along": 0.64, "rank": 1}
    assert math.isnan(displacement_split([[1.0, 0.0, 0.0]], [0.0, 0.0, 0.0])["fraction_along"])
    # a direction with singular value 1e-9 is across by default, along with a looser rtol
    small = [[1.0, 0.0, 0.0], [0.0, 1e-9, 0.0]]
    assert displacement_split(small, [0.0, 1.0, 0.0])["across"] == 1.0
    assert displacement_split(small, [0.0, 1.0, 0.0], rtol=1e-6)["along"] == 1.0


def test_displacement_split_of_a_network():
    net = mlp(1, width=8, depth=1, activation="tanh", seed=0)
    inputs = points(5)
    matrix = jacobian(net, inputs)
    across = matrix.T @ torch.arange(1.0, 6.0, dtype=torch.float64)  # in the row space
    along = torch.linalg.svd(matrix).Vh[-1]  # a null direction
    assert displacement_split(matrix, across)["fraction_along"] < 1e-20
    split = displacement_split(matrix, along + across)
    assert split["along"] == pytest.approx(1.0) and split["across"] == pytest.approx(float(across.norm()))
    assert split["rank"] == parameter_vector(net).numel() - manifold_dimension(net, inputs)


def test_manifold_dimension_per_dtype_by_hand():
    # J of a bias-free linear map on these inputs is diag(1, 1e-3, 1e-6, 1e-9); a dtype drops the singular values
    # at most its eps: float64 2**-52 none, float32 2**-23 (1.2e-7) one, float16 2**-10 (9.8e-4, below 1e-3) two,
    # bfloat16 2**-7 (7.8e-3) three.
    layer = torch.nn.Linear(4, 1, bias=False)
    inputs = torch.diag(torch.tensor([1.0, 1e-3, 1e-6, 1e-9], dtype=torch.float64))
    assert singular_values(layer, inputs).tolist() == [1.0, 1e-3, 1e-6, 1e-9]
    dims = {dtype: manifold_dimension(layer, inputs, dtype) for dtype in ("float64", "float32", "float16", "bfloat16")}
    assert dims == {"float64": 0, "float32": 1, "float16": 2, "bfloat16": 3}
    assert manifold_dimension(layer, inputs, torch.bfloat16) == 3
    assert relative_spacing("float16") == 2.0**-10 and relative_spacing(torch.float32) == 2.0**-23
    with pytest.raises(ValueError, match="not both"):
        manifold_dimension(layer, inputs, "float16", rtol=1e-3)
    with pytest.raises(ValueError, match="dtype"):
        manifold_dimension(layer, inputs, "float8")


def test_singular_values_of_a_network_match_the_jacobian():
    net = mlp(1, width=8, depth=2, activation="tanh", seed=0)
    inputs = points(6)
    values = singular_values(net, inputs)
    assert values.dtype == torch.float64 and values.shape == (6,)
    torch.testing.assert_close(values, torch.linalg.svdvals(jacobian(net, inputs)))
    assert torch.all(values[:-1] >= values[1:])
    with pytest.raises(ValueError, match="NaN or inf"):
        singular_values(torch.nn.Linear(1, 1), [[float("inf")]])


DTYPES = ("float64", "float32", "float16", "bfloat16")


def test_one_duplicated_point_reads_p_minus_n_plus_one_in_every_dtype():
    # 6 distinct points in 8 dimensions (a well-conditioned Jacobian: its smallest non-zero singular value is over
    # 0.1 of the largest, above every dtype's spacing) plus a copy of the first. The copy's singular value is zero in
    # exact arithmetic and a few eps(float64) of the largest in floating point, above eps itself for some of these
    # seeds: a tolerance of eps (the old float64 rule) read it as rank; max(N, P) * eps does not.
    for seed in range(20):
        net = mlp(8, width=8, depth=1, activation="tanh", seed=seed)  # P = 64 + 8 + 8 + 1 = 81
        distinct = torch.randn(6, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        inputs = torch.cat([distinct, distinct[:1]])
        assert {dtype: manifold_dimension(net, inputs, dtype) for dtype in DTYPES} == dict.fromkeys(DTYPES, 81 - 6)
        assert manifold_dimension(net, inputs) == 81 - 6


def test_rank_tolerance_is_the_dtype_spacing_never_below_the_float64_svd():
    assert rank_tolerance((12, 321), "bfloat16") == 2.0**-7
    assert rank_tolerance((12, 321), "float16") == 2.0**-10
    assert rank_tolerance((12, 321), "float32") == 2.0**-23
    assert rank_tolerance((12, 321), "float64") == rank_tolerance((12, 321)) == 321 * 2.0**-52
    assert rank_tolerance((4, 2)) == 4 * 2.0**-52
