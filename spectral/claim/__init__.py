"""The claim check: the experiment built on spectral's primitives.

Train until overfit, shrink, retrain, and compare with controls that isolate
one cause each; the precision study of the essay's mechanism; statistics with
a multiplicity correction over the run's whole family; the report (Markdown,
HTML, figures); sweeps over configurations. Nothing in the primitives
(``spectral.*`` outside this package) imports it.

Examples
--------
>>> from spectral.claim import load_config
>>> load_config(overrides={"seeds": 4}).seeds
4
"""

from __future__ import annotations

from ._config import CaseConfig, ClaimConfig, ConfigError, load_config
from ._report import rebuild
from ._run import DEVICES, resolve_device, run_claim_check
from ._sweep import (
           RunsFailed,
           expand_sweep,
           load_sweep,
           make_executor,
           run_sweep,
           write_sweep_report,
)

__all__ = ["DEVICES", "CaseConfig", "ClaimConfig", "ConfigError", "RunsFailed", "expand_sweep", "load_config", "load_sweep",
           "make_executor", "rebuild", "resolve_device", "run_claim_check", "run_sweep", "write_sweep_report"]
