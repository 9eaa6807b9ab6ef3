"""spectral: Fourier spectral diagnostics for neural networks.

Probe the spectrum of the function a network learns, during training and
around weight shrinking, and test claims about it with controls.
"""

from __future__ import annotations

from ._grid import Grid
from ._history import SpectrumHistory
from ._nudft import nudft
from ._probe import SpectrumProbe
from ._shrink import shrink_
from ._spectrum import Spectrum, spectrum

__version__ = "0.1.0"

__all__ = ["Grid", "Spectrum", "SpectrumHistory", "SpectrumProbe", "nudft", "shrink_", "spectrum", "__version__"]
