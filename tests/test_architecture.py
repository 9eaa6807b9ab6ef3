"""The module map (docs/architecture.md) holds: imports point down, and no private name crosses a public module."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__import__("spectral").__file__).parent
#: Modules above the primitives: the experiment, the command line and the integrations.
UPPER = {"claim", "cli", "callbacks", "_reproduce", "__main__"}


def _imports(path: Path):
    """(level, module, names) of every ``from ... import ...`` in ``path``, module-level and inside functions."""
    tree = ast.parse(path.read_text())
    return [(node.level, node.module or "", [alias.name for alias in node.names])
            for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]


def _primitives():
    return [path for path in PACKAGE.glob("*.py") if path.stem not in UPPER | {"__init__"}]


@pytest.mark.parametrize("path", _primitives(), ids=lambda path: path.name)
def test_primitives_never_import_the_experiment_or_the_integrations(path):
    for level, module, _ in _imports(path):
        target = module.split(".")[0] if level == 1 else module.split(".")[1] if module.startswith("spectral.") else ""
        assert target not in UPPER, f"{path.name} imports {'.' * level}{module}"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_private_name_is_imported_from_a_public_module(path):
    for _, module, names in _imports(path):
        last = module.split(".")[-1]
        if module and not last.startswith("_"):
            private = [name for name in names if name.startswith("_")]
            assert not private, f"{path.name} imports {private} from the public module {module}"


def test_the_checks_see_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from .claim import run_claim_check\n    from .plot import _axes\n")
    assert (1, "claim", ["run_claim_check"]) in _imports(bad) and (1, "plot", ["_axes"]) in _imports(bad)
