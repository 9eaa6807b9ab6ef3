"""Sphinx configuration: ``sphinx-build -W -b html docs docs/_build/html`` (or ``bash docs/build.sh``).

Nothing is downloaded at build time (no intersphinx). The API pages are generated at build time from each
module's ``__all__`` (``_ext/api_pages.py``), the configuration reference from the typed config
(``_ext/config_reference.py``), and the gallery by running ``examples/*.py`` (sphinx-gallery).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # the checkout's spectral, even where another copy is installed
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "agg")

import spectral

project = "spectral"
author = "the spectral authors"
copyright = "the spectral authors"
release = version = spectral.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "api_pages",
    "config_reference",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_templates", "Thumbs.db", ".DS_Store", "**/GALLERY_HEADER.rst"]
templates_path = ["_templates"]

# --- API reference ---------------------------------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # numpydoc's Parameters section states the types
autodoc_member_order = "groupwise"
# A reference that does not resolve is a warning, so an error: a broken docstring reference fails the build.
nitpicky = True
nitpick_ignore_regex = [
    # Other libraries (no intersphinx: nothing is downloaded at build time).
    (r"py:.*", (r"(torch|numpy|np|scipy|matplotlib|lightning|pytorch_lightning|dask|concurrent|pathlib|os|typing)"
                r"(\..*)?")),
    (r"py:class", r"(Module|Callback|Enum|Executor|Future|Path|PathLike|Generator|Tensor|ndarray|Axes|Figure)"),
    # Implementation names (a module or name with a leading underscore), e.g. a private base class.
    (r"py:.*", r"(.*\.)?_[A-Za-z]\w*(\..*)?"),
]
#: References in docstrings that do not resolve today, each a docstring to fix (then delete its line here).
nitpick_ignore = [
    ("py:attr", "target_freqs"),                           # SpectrumHistory.relative_error: an Attributes entry
    ("py:attr", "Spectrum.freqs"),                         # SpectrumHistory.freqs: a dataclass field, not an attribute
    ("py:meth", "SpectrumHistory.radial"),                 # plot.spectra_2d: spectral.SpectrumHistory.radial
    ("py:class", "Grid"),                                  # precision.register_floor: spectral.Grid
    ("py:func", "spectral.experiment.resolve_device"),     # claim.run_sweep: spectral.claim.resolve_device
    ("py:class", "History"),                               # Probe.history, inherited: the private base class
]
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
add_module_names = False

# --- Markdown (the changelog, the architecture page) -------------------------------------------------------------------
myst_heading_anchors = 3
# Links in CHANGELOG.md / architecture.md to repository files; sphinx_gallery_conf holds a function (not cached).
suppress_warnings = ["myst.xref_missing", "config.cache"]

# --- Gallery: every script in examples/ runs at build time, its figures embedded -----------------------------------------
_FIGURES = Path(tempfile.mkdtemp(prefix="spectral-gallery-"))


def _example_arguments(gallery_conf, script_vars):
    """Each example writes its PNG files into a scratch folder, not into the checkout."""
    return [str(_FIGURES / Path(script_vars["src_file"]).stem)]


def _written_figures(block, block_vars, gallery_conf):
    """Scraper: the image files an example wrote into its scratch folder during the code block just run.

    The examples save their figures themselves (the library's plots are made without pyplot, so
    sphinx-gallery's matplotlib scraper would not see them); this embeds exactly what a user running the
    script gets.
    """
    from sphinx_gallery.scrapers import figure_rst

    folder = _FIGURES / Path(block_vars["src_file"]).stem
    seen = _SCRAPED.setdefault(folder, set())
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".png", ".svg", ".jpg"))
    fresh = [p for p in found if (p, p.stat().st_mtime_ns) not in seen]
    seen.update((p, p.stat().st_mtime_ns) for p in fresh)
    targets = []
    for source in fresh:
        target = Path(next(block_vars["image_path_iterator"])).with_suffix(source.suffix)
        shutil.copyfile(source, target)
        targets.append(str(target))
    return figure_rst(targets, gallery_conf["src_dir"])


_SCRAPED: dict = {}

sphinx_gallery_conf = {
    "image_scrapers": (_written_figures,),
    "examples_dirs": [str(HERE.parent / "examples")],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"\.py$",  # run every example, not only plot_*.py
    "reset_argv": _example_arguments,
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "show_memory": False,
    "plot_gallery": "True",
}

# --- HTML ------------------------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"spectral {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
}
html_static_path: list[str] = []
html_show_sourcelink = False
