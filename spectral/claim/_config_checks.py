"""The config's validation framework: the error type, field checks and the frozen table base.

A field check is a function ``(value, key) -> stored value`` that raises a
:class:`ConfigError` naming the key; :func:`_spec` attaches one to a dataclass
field, and :class:`_Table` runs every field's check (and the table's own
cross-field ``_check``) when a table is built, merges overrides key by key
(:meth:`_Table.from_dict`) and writes the JSON-able tree back
(:meth:`_Table.to_dict`). The tables themselves live in :mod:`._config`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import field
from typing import Any, Callable

from .._errors import UserInputError

__all__ = ["ConfigError", "FrozenMap"]


class ConfigError(UserInputError):
    """A configuration that cannot be run (a ``ValueError``); the message names the dotted key (``key``, when there
    is one)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def _fail(key: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"config key {key!r} must be {expected}, got {value!r}", key)


def _require(condition: bool, key: str, expected: str, value: Any) -> None:
    if not condition:
        raise _fail(key, expected, value)


def _prefixed(error: ConfigError, prefix: str) -> ConfigError:
    """``error`` with its key (and message) moved under the table ``prefix``."""
    if error.key is None or not prefix:
        return error
    key = f"{prefix}.{error.key}"
    return ConfigError(str(error).replace(repr(error.key), repr(key), 1), key)


class FrozenMap(dict):
    """A read-only dict (hashable, picklable): the per-name tables of a frozen config."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a config is frozen: build a new one (ClaimConfig.replace, load_config)")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse  # type: ignore

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def __reduce__(self) -> tuple:
        return type(self), (dict(self),)


# --- Field checks: (value, key) -> the stored value ----------------------------------------------------------------


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(minimum: int) -> Callable[[Any, str], int]:
    def check(value: Any, key: str) -> int:
        _require(_is_integer(value) and value >= minimum, key,
                 "a positive integer" if minimum == 1 else f"an integer >= {minimum}", value)
        return value
    return check


def _number(low: float = -math.inf, high: float = math.inf, *, open_low: bool = True, open_high: bool = False,
            expected: str = "") -> Callable[[Any, str], float]:
    def check(value: Any, key: str) -> float:
        _require(_is_number(value), key, "a finite number", value)
        inside = (value > low if open_low else value >= low) and (value < high if open_high else value <= high)
        _require(inside, key, expected, value)
        return float(value)
    return check


_positive = _number(0.0, expected="positive")
_non_negative = _number(0.0, open_low=False, expected=">= 0")
_positive_int = _integer(1)


def _choice(options: tuple[str, ...]) -> Callable[[Any, str], str]:
    def check(value: Any, key: str) -> str:
        _require(isinstance(value, str) and value in options, key, f"one of {options}", value)
        return value
    return check


def _flag(value: Any, key: str) -> bool:
    _require(isinstance(value, bool), key, "true or false", value)
    return value


def _list_of(item: Callable[[Any, str], Any], expected: str) -> Callable[[Any, str], tuple]:
    def check(value: Any, key: str) -> tuple:
        _require(isinstance(value, (list, tuple)) and len(value) > 0, key, expected, value)
        try:
            return tuple(item(v, key) for v in value)
        except ConfigError:
            raise _fail(key, expected, value) from None
    return check


# --- The tables -----------------------------------------------------------------------------------------------------


def _instance(kind: type) -> Callable[[Any, str], Any]:
    def check(value: Any, key: str) -> Any:
        _require(isinstance(value, kind), key, f"a {kind.__name__} table", value)
        return value
    return check


def _table(kind: type) -> Any:
    """A sub-table field: its defaults, and only a table of that type accepted."""
    return _spec(factory=kind, check=_instance(kind))


def _spec(default: Any = dataclasses.MISSING, check: Callable | None = None, *, factory: Callable | None = None) -> Any:
    """A dataclass field with its check in the metadata (``factory`` for table defaults)."""
    metadata = {"check": check}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _plain(value: Any) -> Any:
    """A field's JSON-able form: tables as dicts, tuples as lists."""
    if dataclasses.is_dataclass(value):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


class _Table:
    """A frozen table of the config: fields checked on construction, built from and written to plain dicts."""

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            check = spec.metadata.get("check")
            if check is not None:
                object.__setattr__(self, spec.name, check(getattr(self, spec.name), spec.name))
        self._check()

    def _check(self) -> None:
        """Checks across fields (none by default)."""

    @classmethod
    def from_dict(cls, data: Any, base: Any = None, key: str = "") -> Any:
        """``base`` (the defaults when None) with the keys of ``data`` replaced; sub-tables merge key by key."""
        base = cls() if base is None else base
        if not isinstance(data, Mapping):
            raise ConfigError(f"config key {key or 'top level'!r} must be a table, got {data!r}", key or None)
        names = [spec.name for spec in dataclasses.fields(cls)]  # internal fields come from base, never from data
        public = [spec.name for spec in dataclasses.fields(cls) if not spec.metadata.get("internal")]
        unknown = sorted(set(data) - set(public))
        if unknown:
            where = f" in {key!r}" if key else ""
            raise ConfigError(f"unknown config key{where}: {unknown[0]!r}; expected one of {sorted(public)}",
                              f"{key}.{unknown[0]}".lstrip("."))
        values = {}
        for name in names:
            current, inner = getattr(base, name), f"{key}.{name}".lstrip(".")
            if name not in data:
                values[name] = current
            elif isinstance(current, _Table):
                values[name] = type(current).from_dict(data[name], current, inner)
            else:
                values[name] = cls._merge_field(name, data[name], current, inner)
        try:
            return cls(**values)
        except ConfigError as error:
            raise _prefixed(error, key) from None

    @classmethod
    def _merge_field(cls, name: str, value: Any, current: Any, key: str) -> Any:
        """How a plain field takes an override (replaced; tables of values override key by key)."""
        return value

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able tree: tables as dicts, sequences as lists (internal fields left out)."""
        return {spec.name: _plain(getattr(self, spec.name)) for spec in dataclasses.fields(self)
                if not spec.metadata.get("internal")}

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` (checked like any construction)."""
        return dataclasses.replace(self, **changes)
