"""Published spectral-bias results, rerun: the public face of ``spectral reproduce``.

Each reproduction declares in code what its paper reports and the tolerance
for "agrees", fixed before running; :func:`run_reproduction` reruns one and
writes its ``report.json`` (with ``"agrees"`` and the measured numbers),
``report.md`` and a figure; :func:`run_all` runs every one and writes the
table ``reproductions.md``/``.json``.

Examples
--------
>>> from spectral.reproductions import REPRODUCTIONS
>>> "f-principle" in REPRODUCTIONS and "basri" in REPRODUCTIONS
True
"""

from __future__ import annotations

from ._reproduce import REPRODUCTIONS, listing, run_all, run_reproduction

__all__ = ["REPRODUCTIONS", "listing", "run_all", "run_reproduction"]
