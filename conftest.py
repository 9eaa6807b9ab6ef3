"""Pytest configuration for the whole repository: the tests in tests/ and the doctests in spectral/.

``python -m pytest -q`` also runs every docstring example in ``spectral/`` (``--doctest-modules``, see
``pyproject.toml``). Every module imports without the optional extras; the examples of the few modules
below need one, and are skipped, with the reason, where it is not installed.
"""

from __future__ import annotations

import importlib.util

import matplotlib
import pytest

matplotlib.use("Agg")  # before any example draws a figure: no window, the same pixels everywhere

#: Module file (from this folder) -> (imports any one of which provides the extra, the extra's name).
DOCTEST_EXTRAS = {
    "spectral/callbacks.py": (("lightning", "pytorch_lightning"), "lightning"),
    "spectral/_tensorboard.py": (("tensorboard",), "tensorboard"),
}


def _installed(modules: tuple[str, ...]) -> bool:
    return any(importlib.util.find_spec(module) is not None for module in modules)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = {path: extra for path, (modules, extra) in DOCTEST_EXTRAS.items() if not _installed(modules)}
    if not missing:
        return
    for item in items:
        if type(item).__name__ != "DoctestItem":
            continue
        path = item.path.relative_to(config.rootpath).as_posix() if item.path.is_relative_to(config.rootpath) else ""
        if path in missing:
            extra = missing[path]
            item.add_marker(pytest.mark.skip(reason=f'its example needs the {extra} extra: '
                                                    f'pip install -e ".[{extra}]"'))
