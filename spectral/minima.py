"""The set of global minima near the current weights, and motion along it.

Where a network fits its ``N`` training outputs exactly, the global minima of
the training loss near the weights form a manifold of dimension ``P - rank(J)``,
``J`` the ``(N, P)`` Jacobian of the outputs with respect to the ``P``
parameters: ``P - N`` in the generic case (Cooper, 2018). Weight changes in
the null space of ``J`` move along the manifold and leave the outputs fixed to
first order; changes in its row space move across it.

Which singular values of ``J`` count as zero is a matter of precision: with
weights stored in a float format, a direction whose singular value is below
that format's relative spacing times the largest one changes the outputs by
less than the format can resolve. :func:`manifold_dimension` with ``dtype``
reads the dimension a format sees.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch.func import functional_call, jacrev, vmap

from ._validation import non_negative_finite, real_tensor
from .precision import float_dtype

__all__ = ["displacement_split", "jacobian", "manifold_dimension", "parameter_vector", "rank_tolerance",
           "relative_spacing", "singular_values"]


def _parameters(model: Any) -> list[torch.Tensor]:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    parameters = list(model.parameters())
    if not parameters:
        raise ValueError("model has no parameters")
    return parameters


def _check_rtol(rtol: Any) -> float | None:
    return None if rtol is None else non_negative_finite(rtol, "rtol")


def relative_spacing(dtype: Any) -> float:
    """Spacing of a float format's values relative to their size: ``ulp(1)``, ``torch.finfo(dtype).eps``.

    Parameters
    ----------
    dtype : torch.dtype or str
        ``float16``, ``bfloat16``, ``float32`` or ``float64``.

    Examples
    --------
    >>> from spectral.minima import relative_spacing
    >>> relative_spacing("bfloat16") == 2**-7, relative_spacing("float16") == 2**-10
    (True, True)
    """
    return float(torch.finfo(float_dtype(dtype)).eps)


def rank_tolerance(shape: tuple[int, ...], dtype: Any = "float64") -> float:
    """Relative tolerance below which a singular value of an ``(N, P)`` float64 Jacobian counts as zero in ``dtype``.

    ``max(relative_spacing(dtype), max(N, P) * eps(float64))``: the format's
    relative spacing (a direction whose singular value is below it times the
    largest moves the outputs by less than the format resolves), but never
    below what the float64 singular value decomposition itself resolves,
    ``max(N, P) * eps(float64)``, ``torch.linalg.matrix_rank``'s default. So
    float64 reads the numerical rank, and an exact zero (a duplicated point)
    reads zero in every format.

    Parameters
    ----------
    shape : tuple of int
        ``(N, P)``, the Jacobian's shape.
    dtype : torch.dtype or str, default "float64"

    Examples
    --------
    >>> from spectral.minima import rank_tolerance
    >>> rank_tolerance((12, 321), "bfloat16") == 2**-7
    True
    >>> rank_tolerance((12, 321), "float64") == 321 * 2**-52
    True
    """
    return max(relative_spacing(dtype), max(shape) * float(torch.finfo(torch.float64).eps))


def _rank(singular_values: torch.Tensor, shape: tuple[int, ...], rtol: float | None) -> int:
    """Singular values above ``rtol * largest``, ``rtol`` defaulting to :func:`rank_tolerance` of float64."""
    if rtol is None:
        rtol = rank_tolerance(shape)
    return int((singular_values > rtol * singular_values.max()).sum())


def parameter_vector(model: torch.nn.Module) -> torch.Tensor:
    """All parameters of ``model`` as one float64 vector, in the column order of :func:`jacobian`.

    Examples
    --------
    >>> import torch
    >>> from spectral.minima import parameter_vector
    >>> parameter_vector(torch.nn.Linear(3, 2)).shape
    torch.Size([8])
    """
    return torch.cat([p.detach().reshape(-1).to(torch.float64) for p in _parameters(model)])


def jacobian(model: torch.nn.Module, inputs: Any) -> torch.Tensor:
    """Jacobian of the model's outputs at ``inputs`` with respect to all its parameters.

    Computed in float64 on a copy of the model in eval mode, on the model's
    device, one point at a time (``torch.func.vmap`` over ``jacrev``): the
    model must treat the points of a batch independently, as it does in eval
    mode unless it mixes points on purpose. ``model`` is not changed.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch ``inputs[i : i + 1]`` to its outputs.
    inputs : torch.Tensor or array_like
        ``(N, ...)`` points.

    Returns
    -------
    torch.Tensor
        ``(N * outputs, P)`` float64; row ``i * outputs + k`` is output ``k``
        at point ``i``, columns follow :func:`parameter_vector`.

    Examples
    --------
    >>> import torch
    >>> from spectral.minima import jacobian
    >>> layer = torch.nn.Linear(2, 1)
    >>> jacobian(layer, torch.tensor([[3.0, 4.0]]))  # d(w.x + b) / d(w, b)
    tensor([[3., 4., 1.]], dtype=torch.float64)
    """
    device = _parameters(model)[0].device
    inputs = real_tensor(inputs, "inputs").to(device=device, dtype=torch.float64)
    if inputs.ndim == 0:
        raise ValueError("inputs must have a leading axis of points, got a scalar")
    twin = copy.deepcopy(model).to(torch.float64).eval()
    parameters = {name: p.detach() for name, p in twin.named_parameters()}

    def outputs(params: dict[str, torch.Tensor], point: torch.Tensor) -> torch.Tensor:
        return functional_call(twin, params, (point.unsqueeze(0),)).reshape(-1)

    try:
        rows = vmap(jacrev(outputs), in_dims=(None, 0))(parameters, inputs)
    except RuntimeError as error:
        raise ValueError(f"model could not be evaluated on inputs of shape {tuple(inputs.shape)}: {error}") from error
    return torch.cat([rows[name].reshape(-1, p.numel()) for name, p in parameters.items()], dim=1)


def singular_values(model: torch.nn.Module, inputs: Any) -> torch.Tensor:
    """Singular values of the Jacobian of the outputs at ``inputs``, largest first.

    Parameters
    ----------
    model : torch.nn.Module
        The network. Not changed.
    inputs : torch.Tensor or array_like
        ``(N, ...)`` points, e.g. the training points at a minimum.

    Returns
    -------
    torch.Tensor
        ``(min(N * outputs, P),)`` float64, descending, of :func:`jacobian`.

    Raises
    ------
    ValueError
        If the model has NaN or inf derivatives at ``inputs``.

    Examples
    --------
    >>> import torch
    >>> from spectral.minima import singular_values
    >>> layer = torch.nn.Linear(2, 1, bias=False)  # J is the input matrix
    >>> singular_values(layer, torch.tensor([[3.0, 0.0], [0.0, 0.5]]))
    tensor([3.0000, 0.5000], dtype=torch.float64)
    """
    return _singular_values(model, inputs)[0]


def _singular_values(model: torch.nn.Module, inputs: Any) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Singular values of :func:`jacobian`, descending, and the Jacobian's shape."""
    matrix = jacobian(model, inputs)
    if not torch.isfinite(matrix).all():
        raise ValueError("model has NaN or inf derivatives at inputs: no singular values to measure")
    return torch.linalg.svdvals(matrix), tuple(matrix.shape)


def manifold_dimension(model: torch.nn.Module, inputs: Any, dtype: Any = None, *, rtol: float | None = None) -> int:
    """Dimension of the set of global minima near the current weights, ``P - rank(J)``.

    Parameters
    ----------
    model : torch.nn.Module
        The network; ``P`` counts all its parameters. Not changed.
    inputs : torch.Tensor or array_like
        ``(N, ...)`` training points; duplicates add no rank.
    dtype : torch.dtype or str, optional
        Read the rank as this float format sees it: singular values at most
        :func:`rank_tolerance` of ``dtype`` (its relative spacing, never below
        ``max(N, P) * eps(float64)``) times the largest count as zero. The
        default reads float64.
    rtol : float, optional
        Singular values of ``J`` at most ``rtol`` times the largest count as
        zero, instead of the rule of ``dtype``. Not together with ``dtype``.

    Returns
    -------
    int
        ``P - rank(J)``, ``J`` from :func:`jacobian`: ``P - N`` for a generic
        network on ``N`` distinct points, 0 when ``P <= N``.

    Raises
    ------
    ValueError
        If both ``dtype`` and ``rtol`` are given, or the derivatives are not finite.

    Notes
    -----
    The rank is numerical. A smooth network on many close points has a
    Jacobian whose singular values decay fast, so its rank in float64 can be
    far below ``N``; compare with a looser ``rtol`` before reading much into it.

    Examples
    --------
    >>> import torch
    >>> from spectral.minima import manifold_dimension
    >>> from spectral.models import mlp
    >>> net = mlp(1, width=8, depth=1, activation="tanh", seed=0)  # P = 25
    >>> manifold_dimension(net, torch.linspace(-1, 1, 5).reshape(-1, 1))
    20

    A bias-free linear layer's Jacobian is its input matrix; singular values
    1 and 1e-3 are both above float16's spacing ``2**-10`` but not bfloat16's
    ``2**-7``:

    >>> layer = torch.nn.Linear(2, 1, bias=False)
    >>> inputs = torch.tensor([[1.0, 0.0], [0.0, 1e-3]], dtype=torch.float64)
    >>> manifold_dimension(layer, inputs, "float16"), manifold_dimension(layer, inputs, "bfloat16")
    (0, 1)
    """
    if dtype is not None and rtol is not None:
        raise ValueError(f"give dtype or rtol, not both: got dtype={dtype!r}, rtol={rtol!r}")
    rtol = _check_rtol(rtol)
    values, shape = _singular_values(model, inputs)
    return shape[1] - _rank(values, shape, rank_tolerance(shape, dtype) if dtype is not None else rtol)


def displacement_split(jacobian: Any, displacement: Any, *, rtol: float | None = None) -> dict[str, float]:
    """Split a weight displacement into motion along and across the minima manifold.

    Parameters
    ----------
    jacobian : torch.Tensor or array_like
        ``(M, P)`` Jacobian at the minimum, e.g. from :func:`jacobian`.
    displacement : torch.Tensor or array_like
        ``(P,)`` weight change, e.g. the difference of two
        :func:`parameter_vector` calls.
    rtol : float, optional
        Rank tolerance, as in :func:`manifold_dimension`.

    Returns
    -------
    dict
        ``along``: norm of the component in the null space of the Jacobian
        (flat directions); ``across``: norm of the component in its row space;
        ``fraction_along``: ``along**2 / (along**2 + across**2)``, NaN for a
        zero displacement; ``rank``: rank of the Jacobian.

    Examples
    --------
    >>> from spectral.minima import displacement_split
    >>> split = displacement_split([[1.0, 0.0, 0.0]], [3.0, 4.0, 0.0])
    >>> split["across"], split["along"], split["fraction_along"]
    (3.0, 4.0, 0.64)
    """
    rtol = _check_rtol(rtol)
    matrix = real_tensor(jacobian, "jacobian").to(torch.float64)
    if matrix.ndim != 2:
        raise ValueError(f"jacobian must be a 2-D (outputs, parameters) matrix, got shape {tuple(matrix.shape)}")
    delta = real_tensor(displacement, "displacement").to(device=matrix.device, dtype=torch.float64)
    if delta.shape != matrix.shape[1:]:
        raise ValueError(f"displacement must have shape ({matrix.shape[1]},) like jacobian's columns, "
                         f"got {tuple(delta.shape)}")
    vectors, singular_values, _ = torch.linalg.svd(matrix.mT, full_matrices=False)
    rank = _rank(singular_values, tuple(matrix.shape), rtol)
    coefficients = vectors[:, :rank].mT @ delta
    across = float(coefficients.norm())
    along = float((delta - vectors[:, :rank] @ coefficients).norm())
    total = along**2 + across**2
    return {"along": along, "across": across, "fraction_along": along**2 / total if total > 0 else math.nan,
            "rank": rank}
