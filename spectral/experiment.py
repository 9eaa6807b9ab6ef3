"""The claim check's entry point, kept at its 0.1 path: see :mod:`spectral.claim`."""

from __future__ import annotations

from .claim._run import DEVICES, resolve_device, run_claim_check

__all__ = ["DEVICES", "resolve_device", "run_claim_check"]
