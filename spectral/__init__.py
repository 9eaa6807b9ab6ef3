"""spectral: Fourier spectral diagnostics for neural networks.

Probe the spectrum of the function a network learns, during training and
around weight shrinking, and test claims about it with controls.

The top level holds the primitives (grids, spectra, probes, shrinking);
submodules hold the rest: ``signals``, ``models``, ``ensemble``, ``plot``,
``precision``, ``minima``, ``callbacks``, and ``claim``, the experiment that
tests the essay's claims (``run_claim_check``, its config, sweeps). The
module map is in docs/architecture.md.
"""

from __future__ import annotations

from ._batch_probe import BatchSpectrumHistory, BatchSpectrumProbe
from ._filter_probe import FilterHistory, FilterProbe, filter_error, low_pass
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
        from .claim import run_claim_check

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
    "filter_error",
    "low_pass",
    "nudft",
    "run_claim_check",
    "shrink_",
    "spectrum",
]
