"""Pytest configuration for the whole repository: the tests in tests/ and the doctests in spectral/.

``python -m pytest -q`` also runs every docstring example in ``spectral/`` (``--doctest-modules``, see
``pyproject.toml``). Every module imports without the optional extras, and the lines of an example that
need one are marked ``+SKIP``, so every example runs in a ``.[test]`` environment.
"""

import matplotlib

matplotlib.use("Agg")  # before any example draws a figure: no window, the same pixels everywhere
