"""``.. claim-config-reference::``: every key of :class:`spectral.claim.ClaimConfig`, generated from the code.

The config declares each field as ``_spec(default, check)``: a dataclass field whose metadata holds the check.
This walks the dataclasses of the built-in default (``ClaimConfig()``), and for each key writes its dotted name,
its default, what its check accepts (read from the check's own parameters: its bounds, its choices, its
docstring) and the field's ``#:`` comment. Nothing is copied by hand, so a new key, default or check shows up
at the next build.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from collections.abc import Mapping
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective


def _bound(value: float) -> str:
    return f"{value:g}"


def describe_check(check: Any) -> str:
    """What a field check accepts, in words, from the closure that ``_integer``, ``_number``, ``_choice`` or
    ``_list_of`` built (or the check's docstring); ``""`` for a field without a check of its own."""
    if check is None:
        return ""
    try:
        scope = inspect.getclosurevars(check).nonlocals
    except (TypeError, ValueError):
        scope = {}
    maker = check.__qualname__.split(".<locals>")[0] if "<locals>" in check.__qualname__ else ""
    if maker == "_integer" and "minimum" in scope:
        return "a positive integer" if scope["minimum"] == 1 else f"an integer >= {scope['minimum']}"
    if maker == "_number" and {"low", "high", "open_low", "open_high"} <= set(scope):
        low, high = scope["low"], scope["high"]
        if math.isinf(high):
            return "a finite number " + (f"> {_bound(low)}" if scope["open_low"] else f">= {_bound(low)}")
        left, right = "(" if scope["open_low"] else "[", ")" if scope["open_high"] else "]"
        return f"a finite number in {left}{_bound(low)}, {_bound(high)}{right}"
    if maker == "_choice" and "options" in scope:
        return "one of " + ", ".join(f'"{option}"' for option in scope["options"])
    if maker == "_list_of" and "expected" in scope:
        return str(scope["expected"])
    if maker == "_instance" and "kind" in scope:
        return f"a {scope['kind'].__name__} table"
    doc = inspect.getdoc(check)
    if doc:
        return doc.split("\n\n")[0].replace("\n", " ")
    if check.__name__ == "_flag":
        return "true or false"
    return "checked on construction"


def _value(value: Any) -> str:
    """A default as it is written in a TOML or JSON config (``none`` for no value)."""
    if dataclasses.is_dataclass(value):
        value = value.to_dict()
    if isinstance(value, Mapping):
        value = {k: (v.to_dict() if dataclasses.is_dataclass(v) else v) for k, v in value.items()}
    if value is None:
        return "none"
    return json.dumps(value, default=list)


def _literal(text: str) -> str:
    return f"``{text}``" if text else ""


def _attribute_docs(kind: type) -> dict[str, str]:
    """The ``#:`` comments above the fields of ``kind``."""
    analyzer = ModuleAnalyzer.for_module(kind.__module__)
    docs = analyzer.find_attr_docs()
    return {name: " ".join(lines).strip() for (owner, name), lines in docs.items() if owner == kind.__qualname__}


def _check_source(kind: type) -> str:
    method = kind.__dict__.get("_check")
    return inspect.getsource(method) if method is not None else ""


def _cross_checked(kind: type, name: str, dotted: str, root: type) -> bool:
    """Whether ``name`` is checked by its table's cross-field check, or by the top level's under its dotted key."""
    return f'"{name}"' in _check_source(kind) or f'"{dotted}"' in _check_source(root)


def rows(table: Any, prefix: str, root: type, skip: tuple[str, ...] = ()) -> list[tuple[str, str, str, str]]:
    """``(dotted key, default, check, description)`` for every public field of ``table`` not in ``skip``, sub-tables
    expanded."""
    out = []
    kind = type(table)
    docs = _attribute_docs(kind)
    for spec in dataclasses.fields(table):
        if spec.metadata.get("internal") or spec.name in skip:
            continue
        key = f"{prefix}{spec.name}"
        value = getattr(table, spec.name)
        if dataclasses.is_dataclass(value):
            out += rows(value, f"{key}.", root)
            continue
        check = describe_check(spec.metadata.get("check"))
        if not check and _cross_checked(kind, spec.name, key, root):
            check = "checked with the rest of the table"
        out.append((key, _value(value), check, docs.get(spec.name, "")))
    return out


def _list_table(title: str, items: list[tuple[str, str, str, str]]) -> list[str]:
    lines = [f".. list-table:: {title}", "   :header-rows: 1", "   :widths: 22 22 28 28", "",
             "   * - key", "     - default", "     - accepts", "     - meaning"]
    for key, default, check, doc in items:
        lines += [f"   * - ``{key}``", f"     - {_literal(default)}", f"     - {check}", f"     - {doc}"]
    return lines + [""]


def reference_lines() -> list[str]:
    """The reST of the reference: the top-level keys, each signal's table, and a case's table."""
    from spectral.claim import ClaimConfig
    from spectral.claim._config import CaseConfig

    config = ClaimConfig()
    top = rows(config, "", ClaimConfig, skip=("signals", "cases"))
    lines = _list_table("Top-level keys and tables", top)
    for name, table in config.signals.items():
        doc = (inspect.getdoc(type(table)) or "").split("\n\n")[0].replace("\n", " ")
        lines += [f"``signals.{name}``: {doc}", ""]
        lines += _list_table(f"signals.{name}", rows(table, f"signals.{name}.", ClaimConfig))
    default_ids = ", ".join(f"``{case.id}``" for case in config.cases)
    lines += [f"``cases``: a list of case tables; the default runs {default_ids}. Each case:", ""]
    lines += _list_table("cases[i]", rows(CaseConfig(), "cases[i].", ClaimConfig))
    return lines


class ClaimConfigReference(SphinxDirective):
    """Generates the configuration reference tables in place (reST: in a MyST page, inside ``{eval-rst}``)."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(StringList(reference_lines(), source="ClaimConfig"), self.content_offset, container)
        return container.children


def setup(app):
    app.add_directive("claim-config-reference", ClaimConfigReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
