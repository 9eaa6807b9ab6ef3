"""Sweeps over claim-check configurations, kept at their 0.1 path: see :mod:`spectral.claim`."""

from __future__ import annotations

from .claim._sweep import (
    expand_sweep,
    load_sweep,
    make_executor,
    run_sweep,
    write_report,
)

__all__ = ["expand_sweep", "load_sweep", "make_executor", "run_sweep", "write_report"]
