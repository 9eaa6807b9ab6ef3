"""spectral: Fourier spectral diagnostics for neural networks.

Probe the spectrum of the function a network learns, during training and
around weight shrinking, and test claims about it with controls.

The top level holds the core (grids, spectra, probes, shrinking, the claim
check); submodules hold the rest: ``signals``, ``models``, ``plot``,
``ensemble``, ``precision``, ``minima``, ``sweep``, ``callbacks``.
"""

from __future__ import annotations

from ._batch_probe import BatchSpectrumHistory, BatchSpectrumProbe
from ._filter_probe import FilterHistory, FilterProbe
from ._grid import Grid
from ._history import SpectrumHistory
from ._nudft import nudft
from ._probe import SpectrumProbe
from ._projection_probe import ProjectionHistory, ProjectionProbe
from ._shrink import shrink_
from ._spectrum import Spectrum, spectrum

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # The experiment (training, statistics, report, plotting) loads only when used: ``import spectral`` stays cheap.
    if name == "run_claim_check":
        from .experiment import run_claim_check

        return run_claim_check
    raise AttributeError(f"module 'spectral' has no attribute {name!r}")

__all__ = [
    "BatchSpectrumHistory",
    "BatchSpectrumProbe",
    "FilterHistory",
    "FilterProbe",
    "Grid",
    "ProjectionHistory",
    "ProjectionProbe",
    "Spectrum",
    "SpectrumHistory",
    "SpectrumProbe",
    "__version__",
    "nudft",
    "run_claim_check",
    "shrink_",
    "spectrum",
]
