"""Verdicts as Markdown: the words, the cells of the summary tables, the detailed rows (claim check and precision)."""

from __future__ import annotations

import math
from typing import Any

from ._format import number

__all__ = ["verdict_cell", "verdict_rows", "verdict_word"]


def verdict_word(item: dict[str, Any]) -> str:
    """The verdict's ``outcome`` (``yes``, ``no``, ``inconclusive``, ``untestable``); from ``holds`` without one."""
    return item.get("outcome") or ("untestable" if item["holds"] is None else ("yes" if item["holds"] else "no"))


def verdict_cell(item: dict[str, Any]) -> str:
    """``yes (-52%)``, ``no (+3%)``, ``inconclusive (-8%)``, ``untestable``; ``†`` marks a window-dependent verdict."""
    if verdict_word(item) == "untestable":
        return "untestable"
    relative = item["relative_effect"]
    effect = "n/a" if relative is None or not math.isfinite(relative) else f"{100 * relative:+.0f}%"
    return f"{verdict_word(item)} ({effect})" + (" †" if item.get("window_dependent") else "")


def verdict_rows(verdicts: dict[str, dict[str, Any]], names: list[str] | None = None, *,
                 choice: str = "window") -> list[str]:
    """One row per verdict (all, or ``names``): test, estimate, interval, q, and notes (reason, second measurement).

    Read after the family correction: ``holds`` and ``q_value`` are taken as
    they are when this runs. ``choice`` names the second measurement choice
    of verdicts that have one (``"window"``, ``"filter width"``).
    """
    lines = [("| verdict | metric: claim vs reference | holds | q | p (signed-rank, less) | estimate [95% CI] | "
             "relative effect | n | note |"), "|---|---|---|---|---|---|---|---|---|"]
    for name in verdicts if names is None else names:
        v = verdicts[name]
        ci = f"{number(v['effect'])} [{number(v['ci'][0])}, {number(v['ci'][1])}]"
        count = f"{v['n']} ({v['dropped']} non-finite dropped)" if v.get("dropped") else str(v["n"])
        notes = [v["reason"]] if v["reason"] else []
        if "alternate_window" in v:
            other = v["alternate_window"]
            notes.append(f"{'WINDOW-DEPENDENT: ' if v.get('window_dependent') else ''}under the alternate {choice} "
                         f"{verdict_word(other)} (q {number(other['q_value'])})")
        notes += v.get("attribution", [])
        lines.append(f"| {name} | {v['metric']}: {v['claim']} vs {v['reference']} | {verdict_word(v)} | "
                     f"{number(v['q_value'])} | {number(v['p_value'])} | {ci} | {number(v['relative_effect'])} | "
                     f"{count} | {'; '.join(notes)} |")
    return lines
