"""Writes one API page per public module at build time, listing every name in the module's ``__all__``.

Only the list of modules is kept by hand (:data:`MODULES`); the names come from the code, so a name added to
or removed from an ``__all__`` appears in or leaves the reference at the next build. Each page is an
``autosummary`` table whose entries autosummary turns into one page per name (``api/generated/``).
"""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path

#: The public modules, in the order of the reference, each with a one-line summary.
MODULES = {
    "spectral": "Grids, spectra, probes and their histories, shrinking.",
    "spectral.signals": "The synthetic signals and the built-in defaults.",
    "spectral.models": "The MLPs, their activations and the SIREN initialisation.",
    "spectral.ensemble": "Many seeds of an MLP trained together as one batched module.",
    "spectral.plot": "Figures of histories.",
    "spectral.precision": "Data-type primitives: ULPs, lost updates, the register floor.",
    "spectral.minima": "The minima manifold: Jacobians, singular values, dimension per data type.",
    "spectral.callbacks": "The Lightning callback.",
    "spectral.claim": "The claim check: configuration, run, report, sweeps.",
}


def public_names(module_name: str) -> list[str]:
    """The names in ``module_name.__all__`` a page documents (dunder names such as ``__version__`` left out)."""
    module = importlib.import_module(module_name)
    return [name for name in module.__all__ if not (name.startswith("__") and name.endswith("__"))]


def module_page(module_name: str) -> str:
    """The reST of one module's page: its docstring and an autosummary of its public names."""
    names = public_names(module_name)
    lines = [module_name, "=" * len(module_name), "", f".. automodule:: {module_name}", "",
             f".. currentmodule:: {module_name}", "", ".. autosummary::", "   :toctree: generated", "",
             *[f"   {name}" for name in names], ""]
    return "\n".join(lines)


def index_page() -> str:
    lines = ["API reference", "=============", "",
             ("Every public name, generated from the docstrings. Names with a leading underscore, and the modules "
              "that hold them, are the implementation and may change without notice."), "",
             ".. toctree::", "   :maxdepth: 1", "", *[f"   {name}" for name in MODULES], "",
             ".. list-table::", "   :header-rows: 1", "", "   * - module", "     - what it holds"]
    for name, summary in MODULES.items():
        lines += [f"   * - :doc:`{name}`", f"     - {summary}"]
    return "\n".join(lines + [""])


def write_pages(app, config) -> None:
    """At ``config-inited``, before autosummary looks for its tables: ``api/index.rst`` and one page per module."""
    folder = Path(app.srcdir) / "api"
    shutil.rmtree(folder, ignore_errors=True)  # all generated: a name gone from an __all__ leaves no stale page
    folder.mkdir()
    (folder / "index.rst").write_text(index_page(), encoding="utf-8")
    for name in MODULES:
        (folder / f"{name}.rst").write_text(module_page(name), encoding="utf-8")


#: A cross-reference to a bare name (``:meth:`load```): it resolves in its class's page, not in a module's table.
BARE_REFERENCE = re.compile(r":(?:py:)?(?:meth|attr|func|class|obj):`~?([A-Za-z_]\w*)`")


def _balanced_summary(original):
    """autosummary's one-line summary, extended past a ``. `` that falls inside a ``literal`` (which autosummary
    would cut in half, leaving an unbalanced literal: a docutils warning), with references to bare names as
    literals."""

    def extract_summary(doc: list[str], document) -> str:
        return BARE_REFERENCE.sub(r"``\1``", _balanced(doc, original(doc, document)))

    return extract_summary


def _balanced(doc: list[str], summary: str) -> str:
    """``summary``, or when it leaves a literal open, the first sentences of the docstring that close it."""
    if summary.count("``") % 2 == 0:
        return summary
    paragraph = " ".join(line.strip() for line in doc).split("  ")[0]
    text = ""
    for sentence in re.split(r"(?<=\.)\s", paragraph):
        text = f"{text} {sentence}".strip()
        if text.count("``") % 2 == 0:
            return text
    return paragraph


#: ``(*batch, n)`` in a type line: the ``*`` would open reST emphasis.
STARRED_SHAPE = re.compile(r"(?<=[(,] )\*(?=\w)|(?<=\()\*(?=\w)")


def escape_starred_shapes(app, what, name, obj, options, lines: list[str]) -> None:
    """Escape the ``*`` of a shape such as ``(*batch, n)`` outside literals in numpydoc type lines."""
    for i, line in enumerate(lines):
        if "shape (" in line and "*" in line:
            parts = line.split("``")
            lines[i] = "``".join(STARRED_SHAPE.sub(r"\\*", part) if k % 2 == 0 else part
                                 for k, part in enumerate(parts))


def setup(app):
    from sphinx.ext import autosummary

    autosummary.extract_summary = _balanced_summary(autosummary.extract_summary)
    app.connect("config-inited", write_pages)
    app.connect("autodoc-process-docstring", escape_starred_shapes, priority=400)  # before numpydoc
    return {"parallel_read_safe": True, "parallel_write_safe": True}
