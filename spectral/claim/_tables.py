"""Verdicts as Markdown: the words, the cells of the summary tables, the detailed rows (claim check and precision)."""

from __future__ import annotations

import math
import re
from typing import Any

from ._format import number
from ._stats import Verdict

__all__ = ["markdown_safe", "markdown_text", "verdict_cell", "verdict_rows", "verdict_word"]

#: What text from a config or a file must not be read as in report.md: an HTML tag, comment or autolink (``<``
#: before a letter, ``/``, ``!`` or ``?``), an entity (``&`` before a letter or ``#``), Markdown that links or
#: escapes (backslash, backtick, brackets), a table cell's end (``|``), or a line break (any control character).
_MARKDOWN_SIGNIFICANT = re.compile(r"<(?=[A-Za-z/!?])|&(?=[A-Za-z#])|[\\`\[\]|]|[\x00-\x1f\x7f]")
_REPLACEMENTS = {"<": "&lt;", "&": "&amp;"}


def markdown_text(text: str) -> str:
    """``text`` as literal text in a paragraph or table cell of report.md: no HTML, links or table breaks get in.

    Examples
    --------
    >>> markdown_text("<script>alert(1)</script> | a\\nb")
    '&lt;script>alert(1)&lt;/script> \\\\| a b'
    >>> markdown_text("median test gap 0.02 < 1.1")
    'median test gap 0.02 < 1.1'
    """
    def replace(match: re.Match[str]) -> str:
        character = match.group()
        if character in _REPLACEMENTS:
            return _REPLACEMENTS[character]
        return " " if character < " " or character == "\x7f" else "\\" + character

    return _MARKDOWN_SIGNIFICANT.sub(replace, text)


def markdown_safe(data: Any) -> Any:
    """A copy of JSON data with every string (keys too) passed through :func:`markdown_text`, for report.md.

    Names the code looks up (verdict, metric and arm names) contain none of the
    escaped characters, so they are unchanged.

    Examples
    --------
    >>> markdown_safe({"reason": "a|b", "n": [1, None]})
    {'reason': 'a\\\\|b', 'n': [1, None]}
    """
    if isinstance(data, str):
        return markdown_text(data)
    if isinstance(data, dict):
        return {markdown_safe(key): markdown_safe(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [markdown_safe(value) for value in data]
    return data


def verdict_word(item: dict[str, Any]) -> str:
    """``yes``, ``no``, ``inconclusive`` or ``untestable``: the outcome of a verdict as ``report.json`` holds it."""
    return Verdict.from_dict(item).outcome


#: How a "no" cell says what the data show.
DIRECTION_WORDS = {"equivalent": "equivalent", "worse": "worse", "smaller than the margin": "< margin"}


def verdict_cell(item: dict[str, Any]) -> str:
    """``yes (-52%)``, ``no (+3%, equivalent)``, ``inconclusive (-12%)``, ``untestable``.

    ``item`` is a verdict as ``report.json`` holds it (read through
    :meth:`~spectral.claim._stats.Verdict.from_dict`); ``†`` marks one whose
    outcome differs under the second measurement choice (its
    ``window_dependent``).
    """
    verdict = Verdict.from_dict(item)
    if verdict.outcome == "untestable":
        return verdict.outcome
    relative = verdict.relative_effect
    notes = ["n/a" if relative is None or not math.isfinite(relative) else f"{100 * relative:+.0f}%"]
    if verdict.outcome == "no" and verdict.direction:
        notes.append(DIRECTION_WORDS[verdict.direction])
    return f"{verdict.outcome} ({', '.join(notes)})" + (" †" if item.get("window_dependent") else "")


def verdict_rows(verdicts: dict[str, dict[str, Any]], names: list[str] | None = None, *,
                 choice: str = "window") -> list[str]:
    """One row per verdict (all, or ``names``): test, estimate, interval, q, and notes (reason, second measurement).

    Read after the family correction: ``holds`` and ``q_value`` are taken as
    they are when this runs. ``choice`` names the second measurement choice
    of verdicts that have one (``"window"``, ``"filter width"``).
    """
    lines = [("| verdict | metric: claim vs reference | outcome | q (effect) | q (absent) | estimate [CI] | "
             "relative effect | n | power at -20% (uncorrected) | note |"), "|---|---|---|---|---|---|---|---|---|---|"]
    for name in verdicts if names is None else names:
        item = verdicts[name]
        v = Verdict.from_dict(item)
        ci = f"{number(v.effect)} [{number(v.ci[0])}, {number(v.ci[1])}]"
        count = f"{v.n} ({v.dropped} dropped)" if v.dropped else str(v.n)
        notes = [v.reason] if v.reason else []
        if "alternate_window" in item:
            other = Verdict.from_dict(item["alternate_window"])
            notes.append(f"{'WINDOW-DEPENDENT: ' if item.get('window_dependent') else ''}under the alternate {choice} "
                         f"{other.outcome} (q {number(other.q_value)})")
        notes += item.get("attribution", [])
        power = number(v.power, 2) + (f" (~{v.seeds_needed} seeds for 0.8)" if v.seeds_needed else "")
        lines.append(f"| {name} | {item['metric']}: {item['claim']} vs {item['reference']} | {v.outcome} | "
                     f"{number(v.q_value)} | {number(v.q_absent)} | {ci} | {number(v.relative_effect)} | "
                     f"{count} | {power} | {'; '.join(notes)} |")
    return lines
