"""Small multilayer perceptrons for fitting 1D and 2D signals."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._validation import optional_seed, positive_finite, positive_int

__all__ = ["ACTIVATIONS", "ConstantFeature", "Sine", "mlp"]

ACTIVATIONS = ("relu", "tanh", "gelu", "sine")


class Sine(nn.Module):
    """``sin(omega_0 * x)``, the SIREN activation (Sitzmann et al., 2020)."""

    def __init__(self, omega_0: float = 30.0) -> None:
        super().__init__()
        self.omega_0 = positive_finite(omega_0, "omega_0")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega_0 * x)

    def extra_repr(self) -> str:
        return f"omega_0={self.omega_0}"


class ConstantFeature(nn.Module):
    """Appends a constant column ``value`` to the input.

    Lets a bias-free network represent offsets while staying positively
    homogeneous in its weights.
    """

    def __init__(self, value: float = 1.0) -> None:
        super().__init__()
        self.value = float(value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x.new_full(x.shape[:-1] + (1,), self.value)], dim=-1)


def uniform_init_(weight: torch.Tensor, bias: torch.Tensor | None, in_features: int, omega_0: float | None = None,
                  first: bool = False) -> None:
    """Draw a linear layer's weight and bias in place from the global RNG, as :func:`mlp`'s layers are drawn.

    The weight is uniform on ``[-b, b]``: with ``omega_0`` the SIREN
    initialisation (Sitzmann et al., 2020) of a layer feeding
    ``sin(omega_0 * x)``, ``b = 1 / in_features`` for the first layer and
    ``sqrt(6 / in_features) / omega_0`` after it; without, ``b = 1 /
    sqrt(in_features)`` (the range of ``nn.Linear``'s default). The bias, if
    any, is uniform on ``+-1 / sqrt(in_features)``. The one home of these
    distributions: :func:`mlp`'s sine layers and
    :class:`spectral.ensemble.BatchedLinear` draw through it.
    """
    if omega_0 is None:
        bound = 1 / math.sqrt(in_features)
    elif first:
        bound = 1 / in_features
    else:
        bound = math.sqrt(6 / in_features) / omega_0
    nn.init.uniform_(weight, -bound, bound)
    if bias is not None:
        nn.init.uniform_(bias, -1 / math.sqrt(in_features), 1 / math.sqrt(in_features))


class _SirenLinear(nn.Linear):
    """Linear layer with SIREN initialisation, so ``reset_parameters`` keeps it."""

    def __init__(self, in_features: int, out_features: int, bias: bool, omega_0: float, first: bool) -> None:
        self.omega_0, self.first = omega_0, first
        super().__init__(in_features, out_features, bias=bias)

    def reset_parameters(self) -> None:
        uniform_init_(self.weight, self.bias, self.in_features, self.omega_0, self.first)


def _activation(name: str, omega_0: float) -> nn.Module:
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}[name]() if name != "sine" else Sine(omega_0)


def mlp(in_features: int, *, width: int = 64, depth: int = 3, activation: str = "relu", bias: bool = True,
        constant_feature: bool = False, omega_0: float = 30.0, seed: int | None = None,
        out_features: int = 1) -> nn.Sequential:
    """A fully connected network mapping ``(N, in_features)`` to ``(N, out_features)``.

    Parameters
    ----------
    in_features : int
        Input width ``d`` (1 or 2 for the built-in signals).
    width : int, default 64
        Hidden units per layer.
    depth : int, default 3
        Number of hidden layers; the network has ``depth + 1`` linear layers.
    activation : {"relu", "tanh", "gelu", "sine"}
        ``"sine"`` is SIREN: ``sin(omega_0 * x)`` with SIREN initialisation.
    bias : bool, default True
        Whether linear layers have biases.
    constant_feature : bool, default False
        Append a constant 1 to the input, so a bias-free ReLU network stays
        expressive (and positively homogeneous of degree ``depth + 1``).
    omega_0 : float, default 30.0
        Frequency scale of the sine activation.
    seed : int, optional
        Seed of the initialisation; global RNG state is left untouched.
    out_features : int, default 1
        Outputs (e.g. 10 for one-hot targets of ten classes).

    Returns
    -------
    torch.nn.Sequential
        ``[ConstantFeature], Linear, act, ..., Linear(width, out_features)``, float32.

    Examples
    --------
    >>> import torch
    >>> from spectral.models import mlp
    >>> net = mlp(2, width=8, depth=2, activation="tanh", seed=0)
    >>> net(torch.zeros(5, 2)).shape
    torch.Size([5, 1])
    """
    in_features = positive_int(in_features, "in_features")
    width = positive_int(width, "width")
    depth = positive_int(depth, "depth")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r} is not known; expected one of {ACTIVATIONS}")
    if not isinstance(bias, bool) or not isinstance(constant_feature, bool):
        raise TypeError("bias and constant_feature must be bools")
    omega_0 = positive_finite(omega_0, "omega_0")
    seed = optional_seed(seed)
    out_features = positive_int(out_features, "out_features")
    sizes = [in_features + constant_feature] + [width] * depth + [out_features]
    layers: list[nn.Module] = [ConstantFeature()] if constant_feature else []
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if activation == "sine":
                layers.append(_SirenLinear(n_in, n_out, bias, omega_0, first=i == 0))
            else:
                layers.append(nn.Linear(n_in, n_out, bias=bias))
            if i < depth:
                layers.append(_activation(activation, omega_0))
    net = nn.Sequential(*layers)
    net.in_features = in_features
    return net
