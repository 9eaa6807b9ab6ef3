"""TOML in and out for the config: the standard library's reader (tomli before Python 3.11) and a small writer.

The writer covers what a config's plain tree holds: tables, arrays of tables,
arrays, strings, numbers, booleans, and ``None`` (TOML has no null: it is
written as :data:`NO_VALUE`, which the config reads back as null where a null
is allowed).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["NO_VALUE", "parse_toml", "toml_document"]

#: How ``None`` is written, TOML having no null.
NO_VALUE = "none"


def parse_toml(text: str) -> Any:
    """The table a TOML document holds (``ValueError`` for malformed TOML)."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11: tomli, a dependency there
        import tomli as tomllib
    return tomllib.loads(text)


def toml_document(table: dict[str, Any]) -> str:
    """``table`` (a plain tree of dicts, lists and scalars) as a TOML document."""
    return _toml_table(table, [])


def _toml_value(value: Any) -> str:
    if value is None:
        return json.dumps(NO_VALUE)  # the only null a config holds is "no window"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _toml_table(table: dict[str, Any], path: list[str], header: bool = True) -> str:
    """Scalars and arrays first (under a ``[a.b]`` header), then sub-tables, then arrays of tables as ``[[a]]``."""
    lines, sections = [], []
    for key, value in table.items():
        if isinstance(value, dict):
            sections.append(_toml_table(value, path + [key]))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                sections.append(f"[[{'.'.join(map(_toml_key, path + [key]))}]]\n" + _toml_table(item, path + [key], False))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    title = f"[{'.'.join(map(_toml_key, path))}]\n" if header and path and lines else ""
    body = title + "".join(line + "\n" for line in lines)
    return "\n".join([body] + sections) if body else "\n".join(sections)
