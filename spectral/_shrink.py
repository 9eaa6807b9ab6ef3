"""Shrinking weights in place: the slingshot maneuver and shrink-and-perturb."""

from __future__ import annotations

import copy

import torch

from ._validation import non_negative_finite, optional_seed, positive_finite

#: Parameter dtypes that can be scaled in place (integers cannot hold the product; float8 has no kernels).
SCALABLE_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _is_bias(name: str) -> bool:
    return name.rsplit(".", 1)[-1] == "bias"


def _fresh_parameters(model: torch.nn.Module, seed: int | None) -> dict[str, torch.Tensor]:
    """Parameters of a freshly initialised copy (``reset_parameters`` on every module)."""
    fresh = copy.deepcopy(model)
    owners = {}
    for module_name, module in fresh.named_modules():
        for name, _ in module.named_parameters(recurse=False):
            owners[f"{module_name}.{name}" if module_name else name] = module
    missing = sorted(name for name, module in owners.items() if not hasattr(module, "reset_parameters"))
    if missing:
        raise ValueError(f"perturb needs reset_parameters() on every module with parameters; missing for {missing}")
    devices = sorted({p.device for p in fresh.parameters() if p.device.type == "cuda"}, key=str)
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        for module in {id(m): m for m in owners.values()}.values():
            module.reset_parameters()
    return {name: p.detach() for name, p in fresh.named_parameters()}


def shrink_(model: torch.nn.Module, factor: float, *, biases: bool = True, perturb: float = 0.0,
            seed: int | None = None) -> torch.nn.Module:
    """Multiply a model's parameters by ``factor``, in place.

    Parameters
    ----------
    model : torch.nn.Module
        The model; changed in place and returned.
    factor : float
        Positive, finite multiplier (the essay's slingshot uses 0.2).
    biases : bool, default True
        Also scale parameters named ``bias``. With False only weights change.
    perturb : float, default 0.0
        Shrink-and-perturb (Ash & Adams, 2020):
        ``theta <- factor * theta + perturb * theta_fresh``, ``theta_fresh`` a
        fresh initialisation of the same modules (``reset_parameters`` on a copy).
    seed : int, optional
        Seed of the fresh initialisation, in ``[0, 2**64)``; global RNG state is left untouched.

    Returns
    -------
    torch.nn.Module
        ``model``.

    Raises
    ------
    TypeError, ValueError
        For a non-module, a non-positive or non-finite ``factor``, a negative
        ``perturb``, a ``seed`` outside ``[0, 2**64)``, a parameter to scale
        whose dtype is not in ``SCALABLE_DTYPES`` (integer, float8: a
        ``TypeError`` naming it), or (with ``perturb``) a module without
        ``reset_parameters``. Every check runs before any parameter changes,
        so a refused call changes nothing.

    Notes
    -----
    A bias-free ReLU network with ``L`` linear layers is positively
    homogeneous: ``shrink_(net, c)`` scales its output by ``c**L`` and leaves
    its normalised spectrum unchanged.

    Examples
    --------
    >>> import torch
    >>> from spectral import shrink_
    >>> layer = torch.nn.Linear(2, 1)
    >>> before = layer.weight.clone()
    >>> torch.equal(shrink_(layer, 0.5).weight, 0.5 * before)
    True
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    factor = positive_finite(factor, "factor")
    perturb = non_negative_finite(perturb, "perturb")
    if not isinstance(biases, bool):
        raise TypeError(f"biases must be a bool, got {biases!r}")
    seed = optional_seed(seed)
    chosen = [(name, parameter) for name, parameter in model.named_parameters() if biases or not _is_bias(name)]
    for name, parameter in chosen:  # every one checked before any is touched
        if parameter.dtype not in SCALABLE_DTYPES:
            raise TypeError(f"parameter {name!r} has dtype {parameter.dtype}; shrink_ scales parameters of dtype "
                            f"{', '.join(str(dtype) for dtype in SCALABLE_DTYPES)}")
    fresh = _fresh_parameters(model, seed) if perturb > 0 else {}
    with torch.no_grad():
        for name, parameter in chosen:
            parameter.mul_(factor)
            if perturb > 0:
                parameter.add_(fresh[name].to(parameter.dtype), alpha=perturb)
    return model
