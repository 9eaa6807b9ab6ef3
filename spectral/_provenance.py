"""Where and with what a result was computed: versions, machine, device, date."""

from __future__ import annotations

import datetime
import os
import platform
from importlib import metadata
from typing import Any

#: Devices ``provenance`` accepts, as ``torch.device`` types (an index such as ``cuda:1`` may follow).
DEVICE_TYPES = ("cpu", "cuda", "mps")
#: Data types the claim check trains in.
DTYPES = ("float32", "float64", "bfloat16", "float16")


def _installed_version(distribution: str) -> str | None:
    """Version of an installed distribution, read from its metadata (without importing it); None if absent."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _gpu_name(device: str) -> str | None:
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return None
        return torch.cuda.get_device_name(torch.device(device))
    if device.startswith("mps"):
        return "Apple GPU (MPS)"
    return None


def provenance(device: str = "cpu", dtype: str = "float32") -> dict[str, Any]:
    """Versions, machine and date of a computation, for ``report.json``.

    Parameters
    ----------
    device : str, default "cpu"
        The torch device the computation ran on: ``"cpu"``, ``"cuda"``,
        ``"cuda:<index>"`` or ``"mps"``.
    dtype : str, default "float32"
        The floating-point type it trained in, one of ``float32``,
        ``float64``, ``bfloat16``, ``float16``.

    Returns
    -------
    dict
        JSON-able: ``spectral``, ``python``, ``numpy``, ``scipy``, ``torch`` and
        ``matplotlib`` versions (None for a package that is not installed),
        ``platform``, ``cpu``, ``cpu_count``, ``gpu`` (the GPU's name on a
        ``cuda`` or ``mps`` device, else None), ``torch_threads`` (intra-op
        threads), ``device``, ``dtype`` and ``date`` (UTC, ISO 8601, seconds).
        Wall times are not included: the caller times its own phases.

    Raises
    ------
    TypeError
        If ``device`` or ``dtype`` is not a string.
    ValueError
        If ``device`` or ``dtype`` is not one listed above.

    Examples
    --------
    >>> from spectral._provenance import provenance
    >>> facts = provenance()
    >>> facts["device"], facts["dtype"], facts["gpu"]
    ('cpu', 'float32', None)
    >>> sorted(facts)[:4]
    ['cpu', 'cpu_count', 'date', 'device']
    """
    for name, value in (("device", device), ("dtype", dtype)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    kind, _, index = device.partition(":")
    if kind not in DEVICE_TYPES or (index and not (kind == "cuda" and index.isdigit())):
        raise ValueError(f"{device=} is not a device; expected one of {DEVICE_TYPES} (or 'cuda:<index>')")
    if dtype not in DTYPES:
        raise ValueError(f"{dtype=} is not a training dtype; expected one of {DTYPES}")
    import numpy
    import torch

    from . import __version__

    return {
        "spectral": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": _installed_version("scipy"),
        "torch": torch.__version__,
        "matplotlib": _installed_version("matplotlib"),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "gpu": _gpu_name(device),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "dtype": dtype,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
