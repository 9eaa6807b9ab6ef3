"""The documentation's generators (docs/_ext): the API pages and the configuration reference follow the code."""

import dataclasses
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason='the docs extra is not installed (pip install -e ".[docs]")')
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "_ext"))

import api_pages
import config_reference

from spectral.claim import ClaimConfig
from spectral.claim._config import _choice, _integer, _list_of, _number, _positive_int


def flat_keys(table, prefix=""):
    """Dotted keys of a config table's public fields, sub-tables (dataclasses) expanded."""
    keys = []
    for field in dataclasses.fields(table):
        value = getattr(table, field.name)
        if field.metadata.get("internal"):
            continue
        keys += flat_keys(value, f"{prefix}{field.name}.") if dataclasses.is_dataclass(value) else [prefix + field.name]
    return keys


def test_the_configuration_reference_has_every_key_of_the_default_config():
    text = "\n".join(config_reference.reference_lines())
    config = ClaimConfig()
    top = [key for key in flat_keys(config) if key not in ("signals", "cases")]
    assert "precision.manifold.points" in top and len(top) > 30
    for key in top:
        assert f"``{key}``" in text, key
    for signal, table in config.signals.items():
        for field in dataclasses.fields(table):
            if not field.metadata.get("internal"):
                assert f"``signals.{signal}.{field.name}``" in text
    assert "``cases[i].activation``" in text and "``1d-relu-nobias``" in text


@pytest.mark.parametrize(("check", "words"), [
    (_integer(8), "an integer >= 8"), (_positive_int, "a positive integer"),
    (_number(0.0, 1.0, open_high=True, expected="in (0, 1)"), "a finite number in (0, 1)"),
    (_number(0.0, open_low=False, expected=">= 0"), "a finite number >= 0"),
    (_choice(("bh", "holm")), 'one of "bh", "holm"'),
    (_list_of(_positive_int, "a list of sizes"), "a list of sizes"), (None, "")])
def test_a_check_is_described_from_its_own_parameters(check, words):
    assert config_reference.describe_check(check) == words


def test_api_pages_list_every_public_name_but_dunders():
    names = api_pages.public_names("spectral")
    assert "SpectrumProbe" in names and "run_claim_check" in names and "__version__" not in names
    page = api_pages.module_page("spectral.precision")
    import spectral.precision

    for name in spectral.precision.__all__:
        assert f"   {name}\n" in page
