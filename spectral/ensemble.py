"""Many seeds of one MLP trained together, as a single batched model."""

from __future__ import annotations

import copy
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ._validation import positive_finite, positive_int, real_tensor
from .models import ConstantFeature, Sine, mlp, uniform_init_

__all__ = ["BatchedLinear", "MLPEnsemble"]

_ACTIVATION_NAMES = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.GELU: "gelu", Sine: "sine"}


class BatchedLinear(nn.Module):
    """``members`` independent linear layers, applied as one batched matmul.

    Maps ``(E, N, in_features)`` to ``(E, N, out_features)`` with
    ``y[e] = x[e] @ weight[e] + bias[e]``: ``weight`` has shape
    ``(E, in_features, out_features)`` (member ``e``'s ``nn.Linear`` weight,
    transposed) and ``bias`` shape ``(E, 1, out_features)``.

    Parameters
    ----------
    members : int
        Number of independent layers ``E``.
    in_features, out_features : int
        Sizes of each member's layer.
    bias : bool, default True
        Whether the layers have biases.
    omega_0 : float, optional
        With a value, SIREN initialisation for a layer feeding a sine
        activation of this frequency scale (as ``spectral.models.mlp`` with
        ``activation="sine"``); without, ``nn.Linear``'s default.
    first : bool, default False
        With ``omega_0``: whether this is the network's first layer.
    device, dtype : optional
        Where and in which precision the parameters are created.

    Examples
    --------
    >>> import torch
    >>> from spectral.ensemble import BatchedLinear
    >>> layer = BatchedLinear(3, 2, 5)
    >>> layer(torch.zeros(3, 7, 2)).shape
    torch.Size([3, 7, 5])
    """

    def __init__(self, members: int, in_features: int, out_features: int, bias: bool = True, *,
                 omega_0: float | None = None, first: bool = False, device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.members = positive_int(members, "members")
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.omega_0 = None if omega_0 is None else positive_finite(omega_0, "omega_0")
        self.first = bool(first)
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(self.members, self.in_features, self.out_features, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.members, 1, self.out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw fresh weights and biases from the global RNG, as ``spectral.models.mlp`` does."""
        uniform_init_(self.weight, self.bias, self.in_features, self.omega_0, self.first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return torch.bmm(x, self.weight)
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        siren = "" if self.omega_0 is None else f", omega_0={self.omega_0}, first={self.first}"
        return (f"members={self.members}, in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}{siren}")


def _signature(model: nn.Sequential) -> list[tuple[Any, ...]]:
    """What must agree between two networks for them to share an architecture."""
    return [(type(m), m.extra_repr(), getattr(m, "value", None), getattr(m, "omega_0", None),
             getattr(m, "first", None)) for m in model]


def _architecture(model: Any, name: str) -> dict[str, Any]:
    """The ``spectral.models.mlp`` arguments that rebuild ``model``'s architecture."""
    if not isinstance(model, nn.Sequential) or not isinstance(getattr(model, "in_features", None), int):
        raise TypeError(f"{name} must be a network built by spectral.models.mlp, got {type(model).__name__}")
    linears = [m for m in model if isinstance(m, nn.Linear)]
    activations = [m for m in model if type(m) in _ACTIVATION_NAMES]
    if len(linears) < 2 or not activations:
        raise ValueError(f"{name} is not a network built by spectral.models.mlp")
    config = {
        "in_features": model.in_features,
        "width": linears[0].out_features,
        "depth": len(linears) - 1,
        "activation": _ACTIVATION_NAMES[type(activations[0])],
        "bias": linears[0].bias is not None,
        "constant_feature": isinstance(model[0], ConstantFeature),
        "omega_0": getattr(activations[0], "omega_0", 30.0),
        "out_features": linears[-1].out_features,
    }
    if _signature(model) != _signature(mlp(**config)):
        raise ValueError(f"{name} is not a network built by spectral.models.mlp")
    return config


def _modules_of(module: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, kind)]


def _stack(models: Sequence[nn.Sequential]) -> nn.Sequential:
    """Batched layers holding copies of the networks' parameters, member ``e`` from ``models[e]``."""
    layers = []
    for modules in zip(*models):
        first = modules[0]
        if not isinstance(first, nn.Linear):
            layers.append(copy.deepcopy(first))
            continue
        # On the meta device: no memory and no RNG draws; the parameters are replaced below.
        layer = BatchedLinear(len(models), first.in_features, first.out_features, first.bias is not None,
                              omega_0=getattr(first, "omega_0", None), first=getattr(first, "first", False),
                              device="meta")
        layer.weight = nn.Parameter(torch.stack([m.weight.detach().T for m in modules]))
        if layer.bias is not None:
            layer.bias = nn.Parameter(torch.stack([m.bias.detach() for m in modules]).unsqueeze(1))
        layers.append(layer)
    return nn.Sequential(*layers)


class MLPEnsemble(nn.Module):
    """``members`` independent copies of ``spectral.models.mlp``, trained as one batched model.

    Member ``e`` is initialised exactly like
    ``spectral.models.mlp(in_features, ..., seed=seeds[e])``; the members
    share no parameters, and every linear layer is a :class:`BatchedLinear`.
    With a loss that sums per-member losses, each member's gradient is the
    gradient it would get alone, so an elementwise optimiser (Adam, SGD,
    RMSprop, with or without weight decay) follows every member's solo
    trajectory, up to float rounding.

    Parameters
    ----------
    in_features : int
        Input width ``d``.
    members : int
        Number of networks ``E``.
    width, depth, activation, bias, constant_feature, omega_0, out_features
        As in :func:`spectral.models.mlp`.
    seeds : sequence of int, optional
        Initialisation seed of each member (list, tuple, integer array);
        default ``range(members)``.
        Global RNG state is left untouched.

    Attributes
    ----------
    in_features : int
        Input width ``d``.
    layers : torch.nn.Sequential
        ``[ConstantFeature], BatchedLinear, act, ..., BatchedLinear(width, out_features)``.

    Notes
    -----
    Optimisers or steps that couple parameters, such as LBFGS or clipping
    the global gradient norm, break the equivalence with solo training, and
    so does averaging instead of summing the members' losses with Adam (its
    ``eps`` then weighs differently).

    :func:`spectral.shrink_` works on the whole ensemble, perturbation
    included; :meth:`scale_output_` scales each member differently.

    Examples
    --------
    Four seeds fitted to four noisy copies of one signal, on shared inputs:

    >>> import torch
    >>> from spectral.ensemble import MLPEnsemble
    >>> ens = MLPEnsemble(1, members=4, width=16, depth=2, seeds=[10, 11, 12, 13])
    >>> x = torch.linspace(-1, 1, 32).unsqueeze(1)                      # (N, d), shared
    >>> y = torch.sin(3 * x[:, 0]) + 0.1 * torch.randn(4, 32, generator=torch.Generator().manual_seed(0))
    >>> optimizer = torch.optim.Adam(ens.parameters(), lr=1e-3)
    >>> for _ in range(10):
    ...     optimizer.zero_grad()
    ...     loss = ((ens(x) - y) ** 2).mean(dim=1).sum()  # sum of per-member losses
    ...     loss.backward()
    ...     optimizer.step()
    >>> ens(x).shape
    torch.Size([4, 32])
    >>> net = ens.member(2)  # a standalone spectral.models.mlp with member 2's weights
    >>> torch.allclose(net(x)[:, 0], ens(x)[2], atol=1e-6)
    True
    """

    def __init__(self, in_features: int, *, members: int, width: int = 64, depth: int = 3,
                 activation: str = "relu", bias: bool = True, constant_feature: bool = False,
                 omega_0: float = 30.0, seeds: Sequence[int] | None = None, out_features: int = 1) -> None:
        super().__init__()
        members = positive_int(members, "members")
        try:
            seeds = list(range(members) if seeds is None else seeds)
        except TypeError:
            raise TypeError(f"seeds must be a sequence of integers, got {type(seeds).__name__}") from None
        if len(seeds) != members:
            raise ValueError(f"seeds has {len(seeds)} entries, expected members={members}")
        for seed in seeds:
            if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
                raise TypeError(f"seeds must hold integers, got {type(seed).__name__} {seed!r}")
        self._config = {"in_features": in_features, "width": width, "depth": depth, "activation": activation,
                        "bias": bias, "constant_feature": constant_feature, "omega_0": omega_0,
                        "out_features": out_features}
        models = [mlp(**self._config, seed=int(seed)) for seed in seeds]
        self.in_features = models[0].in_features
        self.layers = _stack(models)

    @classmethod
    def from_models(cls, models: Sequence[nn.Sequential]) -> MLPEnsemble:
        """An ensemble holding copies of ``models``' parameters, member ``e`` from ``models[e]``.

        Parameters
        ----------
        models : sequence of torch.nn.Sequential
            Networks (a list, tuple or ``torch.nn.ModuleList``) built by
            :func:`spectral.models.mlp` with the same arguments (seeds aside),
            on one device and in one dtype, which the ensemble keeps.

        Returns
        -------
        MLPEnsemble

        Raises
        ------
        TypeError, ValueError
            For an empty sequence, a network not built by ``mlp``, or networks
            that differ in architecture, device or dtype.

        Examples
        --------
        >>> import torch
        >>> from spectral.ensemble import MLPEnsemble
        >>> from spectral.models import mlp
        >>> nets = [mlp(1, width=8, depth=2, seed=s) for s in (3, 4)]
        >>> ens = MLPEnsemble.from_models(nets)
        >>> x = torch.rand(5, 1)
        >>> torch.allclose(ens(x)[1], nets[1](x)[:, 0])
        True
        """
        if isinstance(models, nn.Sequential):
            raise TypeError("models must be a sequence of networks, got a single network")
        try:
            models = list(models)
        except TypeError:
            raise TypeError(f"models must be a sequence of networks, got {type(models).__name__}") from None
        if not models:
            raise ValueError("models is empty")
        config = _architecture(models[0], "models[0]")
        reference = next(models[0].parameters())
        for e, model in enumerate(models[1:], start=1):
            architecture = _architecture(model, f"models[{e}]")
            if architecture != config:
                raise ValueError(f"models[{e}] has another architecture than models[0]: {architecture} vs {config}")
            parameter = next(model.parameters())
            if (parameter.device, parameter.dtype) != (reference.device, reference.dtype):
                raise ValueError(f"models[{e}] is on {parameter.device} in {parameter.dtype}, but models[0] "
                                 f"is on {reference.device} in {reference.dtype}")
        ensemble = cls(config.pop("in_features"), members=1, **config)  # a one-member shell, refilled here
        ensemble.layers = _stack(models)
        return ensemble

    @classmethod
    def concatenate(cls, ensembles: Sequence[MLPEnsemble]) -> MLPEnsemble:
        """One ensemble holding the members of ``ensembles`` in order (copies).

        Raises
        ------
        TypeError, ValueError
            For an empty sequence, or ensembles that differ in architecture,
            device or dtype.

        Examples
        --------
        >>> from spectral.ensemble import MLPEnsemble
        >>> a = MLPEnsemble(1, members=2, width=8, depth=1, seeds=[0, 1])
        >>> b = MLPEnsemble(1, members=3, width=8, depth=1, seeds=[2, 3, 4])
        >>> MLPEnsemble.concatenate([a, b]).members
        5
        """
        if isinstance(ensembles, nn.Module) or not isinstance(ensembles, Sequence) or not ensembles:
            raise TypeError("ensembles must be a non-empty sequence of MLPEnsemble")
        first = ensembles[0]
        for i, ensemble in enumerate(ensembles):
            if not isinstance(ensemble, MLPEnsemble):
                raise TypeError(f"ensembles[{i}] must be an MLPEnsemble, got {type(ensemble).__name__}")
            weight, reference = ensemble.layers[-1].weight, first.layers[-1].weight
            if ensemble._config != first._config or (weight.device, weight.dtype) != (reference.device, reference.dtype):
                raise ValueError(f"ensembles[{i}] differs from ensembles[0] in architecture, device or dtype")
        whole = copy.deepcopy(first)
        layers = [_modules_of(e, BatchedLinear) for e in ensembles]
        with torch.no_grad():
            for index, layer in enumerate(_modules_of(whole, BatchedLinear)):
                layer.weight = nn.Parameter(torch.cat([parts[index].weight for parts in layers]))
                if layer.bias is not None:
                    layer.bias = nn.Parameter(torch.cat([parts[index].bias for parts in layers]))
                layer.members = layer.weight.shape[0]
        return whole

    def select(self, members: Sequence[int]) -> MLPEnsemble:
        """A new ensemble holding copies of ``members`` (indices into this one, in that order).

        Examples
        --------
        >>> import torch
        >>> from spectral.ensemble import MLPEnsemble
        >>> ens = MLPEnsemble(1, members=4, width=8, depth=1, seeds=[0, 1, 2, 3])
        >>> x = torch.rand(5, 1)
        >>> torch.allclose(ens.select([3, 1])(x), ens(x)[[3, 1]])
        True
        """
        index = [int(i) for i in members]
        if not index or not all(0 <= i < self.members for i in index):
            raise ValueError(f"members must be a non-empty list of indices in [0, {self.members}), got {members!r}")
        shared = {id(p): p for p in self.parameters()}  # not copied: replaced by the selected rows below
        part = copy.deepcopy(self, memo=shared)
        rows = torch.as_tensor(index, device=self.layers[-1].weight.device)
        with torch.no_grad():
            for layer in _modules_of(part, BatchedLinear):
                layer.weight = nn.Parameter(layer.weight.detach()[rows])
                if layer.bias is not None:
                    layer.bias = nn.Parameter(layer.bias.detach()[rows])
                layer.members = len(index)
        return part

    @property
    def members(self) -> int:
        """Number of member networks ``E``."""
        return self.layers[-1].members

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's output: ``(E, N)`` (one output) or ``(E, N, out_features)`` for ``x`` of shape ``(N, d)``
        (shared) or ``(E, N, d)``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        members, width = self.members, self.in_features
        if x.ndim == 2 and x.shape[1] == width:
            x = x.expand(members, *x.shape)
        elif not (x.ndim == 3 and x.shape[0] == members and x.shape[2] == width):
            raise ValueError(f"x must have shape (N, {width}) or ({members}, N, {width}), got {tuple(x.shape)}")
        out = self.layers(x)
        return out.squeeze(-1) if out.shape[-1] == 1 else out

    def member(self, i: int) -> nn.Sequential:
        """Member ``i`` as a standalone :func:`spectral.models.mlp` (a copy), on the same device and dtype."""
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            raise TypeError(f"i must be an integer, got {type(i).__name__} {i!r}")
        if not 0 <= i < self.members:
            raise ValueError(f"i must be in [0, {self.members}), got {i}")
        parameter = self.layers[-1].weight
        net = mlp(**self._config).to(device=parameter.device, dtype=parameter.dtype).train(self.training)
        with torch.no_grad():
            for linear, batched in zip(_modules_of(net, nn.Linear), _modules_of(self, BatchedLinear)):
                linear.weight.copy_(batched.weight[i].T)
                if linear.bias is not None:
                    linear.bias.copy_(batched.bias[i, 0])
        return net

    def scale_output_(self, factors: Any) -> MLPEnsemble:
        """Multiply member ``e``'s last layer (weight and bias) by ``factors[e]``, in place; return ``self``.

        This scales member ``e``'s output by ``factors[e]``.
        """
        factors = real_tensor(factors, "factors")
        if tuple(factors.shape) != (self.members,):
            raise ValueError(f"factors must have shape ({self.members},), got {tuple(factors.shape)}")
        if not torch.isfinite(factors).all():
            raise ValueError("factors must be finite")
        last = self.layers[-1]
        scale = factors.to(device=last.weight.device, dtype=last.weight.dtype).view(-1, 1, 1)
        with torch.no_grad():
            last.weight.mul_(scale)
            if last.bias is not None:
                last.bias.mul_(scale)
        return self

    def reset_parameters(self) -> None:
        """Re-initialise every member from the global RNG, with ``spectral.models.mlp``'s distributions."""
        for layer in _modules_of(self, BatchedLinear):
            layer.reset_parameters()
