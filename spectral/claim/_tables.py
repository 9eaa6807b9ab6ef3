"""Verdicts as Markdown: the words, the cells of the summary tables, the detailed rows (claim check and precision)."""

from __future__ import annotations

import math
from typing import Any

from ._format import number

__all__ = ["verdict_cell", "verdict_rows", "verdict_word"]


def verdict_word(item: dict[str, Any]) -> str:
    """``yes``, ``no``, ``inconclusive`` or ``untestable`` (a report written before outcomes: from ``holds``)."""
    if item.get("outcome"):
        return item["outcome"]
    return "untestable" if item["holds"] is None else ("yes" if item["holds"] else "no")


#: How a "no" cell says what the data show.
DIRECTION_WORDS = {"equivalent": "equivalent", "worse": "worse", "smaller than the margin": "< margin"}


def verdict_cell(item: dict[str, Any]) -> str:
    """``yes (-52%)``, ``no (+3%, equivalent)``, ``inconclusive (-12%, ~40 seeds)``, ``untestable``.

    ``†`` marks a verdict whose outcome differs under the second measurement choice.
    """
    word = verdict_word(item)
    if word == "untestable":
        return word
    relative = item["relative_effect"]
    notes = ["n/a" if relative is None or not math.isfinite(relative) else f"{100 * relative:+.0f}%"]
    if word == "no" and item.get("direction"):
        notes.append(DIRECTION_WORDS.get(item["direction"], item["direction"]))
    if word == "inconclusive" and item.get("seeds_needed"):
        notes.append(f"~{item['seeds_needed']} seeds")
    return f"{word} ({', '.join(notes)})" + (" †" if item.get("window_dependent") else "")


def verdict_rows(verdicts: dict[str, dict[str, Any]], names: list[str] | None = None, *,
                 choice: str = "window") -> list[str]:
    """One row per verdict (all, or ``names``): test, estimate, interval, q, and notes (reason, second measurement).

    Read after the family correction: ``holds`` and ``q_value`` are taken as
    they are when this runs. ``choice`` names the second measurement choice
    of verdicts that have one (``"window"``, ``"filter width"``).
    """
    lines = [("| verdict | metric: claim vs reference | outcome | q (effect) | q (absent) | estimate [CI] | "
             "relative effect | n | power at -20% | note |"), "|---|---|---|---|---|---|---|---|---|---|"]
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
        power = number(v.get("power"), 2) + (f" (~{v['seeds_needed']} seeds for 0.8)" if v.get("seeds_needed") else "")
        lines.append(f"| {name} | {v['metric']}: {v['claim']} vs {v['reference']} | {verdict_word(v)} | "
                     f"{number(v['q_value'])} | {number(v.get('q_absent'))} | {ci} | {number(v['relative_effect'])} | "
                     f"{count} | {power} | {'; '.join(notes)} |")
    return lines
