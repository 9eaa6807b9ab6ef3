"""report.html: the claim check as one self-contained page (figures embedded, no network).

The page answers first: a few sentences generated from the primary verdicts
(:func:`summary_sentences`), then the primary verdict table, then the
secondary verdicts collapsed in ``<details>``; all three are built from the
report's data, not from the Markdown. The rest of the page is ``report.md``
converted by a small Markdown subset converter (headings, paragraphs, lists,
pipe tables, images as captioned figures in a gallery, code, bold, links) that
escapes every character of its input. The layout fits a 1280-px window
without sideways scrolling, and a print stylesheet drops the navigation.
"""

from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path
from typing import Any

from .._io import atomic_write
from ._format import number

#: Verdict outcomes -> (CSS class, symbol, word). Colour, symbol and word all differ.
STATES = {"yes": ("holds", "✓", "holds"), "no": ("fails", "✗", "does not hold"),
          "inconclusive": ("inconclusive", "~", "inconclusive"), "untestable": ("untestable", "?", "untestable")}
#: Background colours of the verdict cells (also read by the browser test).
COLOURS = {"holds": "#b7e4c0", "fails": "#f7c1c1", "inconclusive": "#f6e3a1", "untestable": "#dcdcdc"}
#: How a report without ``outcome`` (report version 2) says it: ``holds`` -> outcome.
HOLDS_OUTCOMES = {True: "yes", False: "no", None: "untestable"}
#: In a summary sentence, ids are listed when an outcome concerns at most this many cases (and not all).
LISTED_IDS = 4
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
               ".gif": "image/gif"}
#: A Markdown image: ``![alt](path)``.
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
#: Multiplicity corrections by config name.
METHODS = {"bh": "Benjamini-Hochberg", "holm": "Holm", "none": "no correction"}
#: Markdown sections the page builds from the report's data instead (the verdict table, the provenance).
REPLACED_SECTIONS = ("Verdicts", "Provenance")

STYLE = f"""
*, *::before, *::after {{ box-sizing: border-box; }}
body {{ font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; margin: 0 auto;
       max-width: 1240px; padding: 12px 20px 40px; overflow-wrap: break-word; }}
h1 {{ font-size: 1.55em; margin: 0.2em 0 0.1em; }}
h2 {{ border-bottom: 1px solid #d0d7de; padding-bottom: 0.2em; margin-top: 1.6em; }}
p.meta, p.note {{ color: #57606a; margin: 0.2em 0 0.6em; font-size: 0.92em; }}
section.summary {{ background: #f6f8fa; border-left: 4px solid #0969da; padding: 6px 14px; margin: 0.6em 0 0.8em; }}
section.summary p {{ margin: 0.3em 0; }}
section.summary ul {{ margin: 0.2em 0 0.4em; padding-left: 1.2em; }}
.scroll {{ max-width: 100%; overflow-x: auto; }}
table {{ border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.9em; max-width: 100%; }}
th, td {{ border: 1px solid #d0d7de; padding: 3px 7px; vertical-align: top; text-align: left;
          overflow-wrap: anywhere; }}
thead th {{ background: #f6f8fa; }}
table.verdicts {{ width: 100%; table-layout: fixed; font-size: 0.84em; }}
table.verdicts td, table.verdicts th {{ padding: 3px 5px; overflow-wrap: anywhere; }}
table.verdicts col.name {{ width: 17em; }}
table.verdicts caption {{ text-align: left; font-weight: 600; padding-bottom: 2px; }}
table.verdicts th[scope=row] {{ font-weight: 500; }}
td.holds {{ background: {COLOURS['holds']}; color: #0a4d1c; font-weight: 600; }}
td.fails {{ background: {COLOURS['fails']}; color: #7d0a0a; }}
td.inconclusive {{ background: {COLOURS['inconclusive']}; color: #5c4400; }}
td.untestable {{ background: {COLOURS['untestable']}; color: #3d3d3d; font-style: italic;
                 outline: 2px dashed #8c8c8c; outline-offset: -3px; }}
td .q, td .reason {{ display: block; font-size: 0.86em; font-weight: normal; }}
span.key {{ display: inline-block; padding: 0 6px; margin-right: 6px; }}
details.secondary {{ margin: 0.4em 0 1em; }}
details.secondary > summary {{ cursor: pointer; font-weight: 600; }}
nav {{ font-size: 0.9em; margin: 0.4em 0 1em; }}
nav a {{ margin-right: 0.9em; }}
img {{ max-width: 100%; height: auto; display: block; }}
div.gallery {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 380px), 1fr)); gap: 12px;
               margin: 0.6em 0 1em; }}
figure {{ margin: 0; border: 1px solid #d0d7de; border-radius: 4px; padding: 6px; background: #fff; }}
figcaption {{ font-size: 0.88em; color: #57606a; margin-top: 4px; }}
code {{ background: #f6f8fa; padding: 0 3px; border-radius: 3px; }}
.missing {{ color: #b00; font-weight: 600; }}
dl.provenance {{ display: grid; grid-template-columns: max-content auto; gap: 2px 14px; font-size: 0.9em; }}
dl.provenance dt {{ font-weight: 600; }}
dl.provenance dd {{ margin: 0; min-width: 0; }}
@media print {{
  body {{ max-width: none; padding: 0; font-size: 10pt; }}
  nav {{ display: none; }}
  section.summary {{ border-left-width: 2px; }}
  table.verdicts {{ font-size: 8pt; }}
  tr, figure, section.summary {{ break-inside: avoid; }}
  h2 {{ break-after: avoid; }}
  td.holds, td.fails, td.inconclusive, td.untestable, span.key {{ print-color-adjust: exact;
                                                                  -webkit-print-color-adjust: exact; }}
  details.secondary:not([open])::after {{ content: "(collapsed: open it before printing to include it)";
                                         color: #57606a; font-size: 0.9em; }}
  div.gallery {{ grid-template-columns: 1fr 1fr; }}
  a {{ color: inherit; text-decoration: none; }}
}}
"""


def _escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


class _Images:
    """Embeds images as data URIs, reading only image files inside ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def tag(self, source: str, alt: str) -> str:
        path = (self.root / source).resolve()
        kind = IMAGE_TYPES.get(path.suffix.lower())
        if kind is None or self.root not in path.parents or not path.is_file():
            return f'<span class="missing">missing figure: {_escape(source)}</span>'
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img src="data:{kind};base64,{data}" alt="{_escape(alt)}" title="{_escape(source)}">'

    def figure(self, source: str, caption: str) -> str:
        """The image in a ``<figure>`` with ``caption`` (the Markdown's alt text) below it."""
        return f"<figure>{self.tag(source, caption)}<figcaption>{_escape(caption)}</figcaption></figure>"


def _inline(text: str, images: _Images) -> str:
    """One line of Markdown to HTML: code spans, images, links, bold; everything else escaped."""
    parts = re.split(r"`([^`]+)`", text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"<code>{_escape(part)}</code>")
            continue
        pieces = re.split(r"(!?\[[^\]]*\]\([^)\s]+\))", part)
        for piece in pieces:
            match = re.fullmatch(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)", piece)
            if match and match.group(1):
                out.append(images.tag(match.group(3), match.group(2)))
            elif match and re.match(r"(https?:|#)", match.group(3)):
                out.append(f'<a href="{_escape(match.group(3))}">{_escape(match.group(2))}</a>')
            elif match:
                out.append(_escape(match.group(2)))
            else:
                out.append(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", _escape(piece)))
    return "".join(out)


def _cells(line: str) -> list[str]:
    line = line.strip()
    line = line.removeprefix("|")
    line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)]


def _table(lines: list[str], images: _Images) -> str:
    head, body = _cells(lines[0]), [_cells(line) for line in lines[2:]]
    rows = ["<table>", "<thead><tr>" + "".join(f"<th>{_inline(c, images)}</th>" for c in head) + "</tr></thead>",
            "<tbody>"]
    rows += ["<tr>" + "".join(f"<td>{_inline(c, images)}</td>" for c in row) + "</tr>" for row in body]
    return "\n".join(rows + ["</tbody></table>"])


def _blocks(markdown: str) -> list[tuple[str, Any]]:
    """Markdown as blocks: ("heading", (level, text)), ("table", lines), ("list", items), ("paragraph", lines)."""
    lines = markdown.splitlines()
    blocks: list[tuple[str, Any]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        heading = re.match(r"(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if not line.strip():
            i += 1
        elif heading:
            blocks.append(("heading", (len(heading.group(1)), heading.group(2))))
            i += 1
        elif line.lstrip().startswith("|") and i + 1 < len(lines) and re.fullmatch(r"\s*\|?[\s:|-]*-[\s:|-]*",
                                                                                     lines[i + 1]):
            end = i + 2
            while end < len(lines) and lines[end].lstrip().startswith("|"):
                end += 1
            blocks.append(("table", lines[i:end]))
            i = end
        elif re.match(r"\s*[-*]\s+", line):
            items: list[str] = []
            while i < len(lines) and lines[i].strip() and (re.match(r"\s*[-*]\s+", lines[i]) or items):
                if re.match(r"\s*[-*]\s+", lines[i]):
                    items.append(re.sub(r"^\s*[-*]\s+", "", lines[i]))
                else:  # a continuation line of the item above
                    items[-1] += " " + lines[i].strip()
                i += 1
            blocks.append(("list", items))
        else:
            end = i
            while end < len(lines) and lines[end].strip() and not re.match(r"(#{1,6}\s|\s*\||\s*[-*]\s+)", lines[end]):
                end += 1
            blocks.append(("paragraph", lines[i:max(end, i + 1)]))
            i = max(end, i + 1)
    return blocks


def _without_replaced(blocks: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Drop the Markdown's headline verdict table (the first table under "Verdicts", before any subheading) and
    its provenance section: the page builds both from the report's data."""
    kept: list[tuple[str, Any]] = []
    section, headline_table = None, False
    for kind, value in blocks:
        if kind == "heading":
            if value[0] <= 2:
                section = value[1] if value[1] in REPLACED_SECTIONS else None
                headline_table = section == "Verdicts"
                if section:
                    continue
            else:
                headline_table = False
        if section == "Provenance":
            continue
        if headline_table and kind == "table":
            headline_table = False
            continue
        kept.append((kind, value))
    return kept


def markdown_to_html(markdown: str, images: _Images) -> tuple[str, list[tuple[str, str]]]:
    """The HTML of ``markdown`` (a subset) and its level-2 sections as ``(anchor, title)``."""
    out: list[str] = []
    sections: list[tuple[str, str]] = []
    for kind, value in markdown_blocks(markdown):
        if kind == "heading":
            level, text = value
            anchor = _anchor(text)
            if level == 2:
                sections.append((anchor, text))
            out.append(f'<h{level} id="{anchor}">{_inline(text, images)}</h{level}>')
        elif kind == "table":
            out.append(_table(value, images))
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{_inline(item, images)}</li>" for item in value) + "</ul>")
        elif _only_images(value):
            figures = "".join(images.figure(source, alt) for alt, source in IMAGE.findall(" ".join(value)))
            if out and out[-1].startswith('<div class="gallery">'):  # consecutive figures share one gallery
                out[-1] = out[-1].removesuffix("</div>") + figures + "</div>"
            else:
                out.append(f'<div class="gallery">{figures}</div>')
        else:
            out.append("<p>" + " ".join(_inline(line.strip(), images) for line in value) + "</p>")
    return "\n".join(out), sections


def _only_images(lines: list[str]) -> bool:
    """Whether a paragraph holds nothing but Markdown images."""
    return IMAGE.sub("", " ".join(lines)).strip() == "" and bool(IMAGE.search(" ".join(lines)))


def markdown_blocks(markdown: str) -> list[tuple[str, Any]]:
    """The Markdown's blocks without its title, headline verdict table and provenance section."""
    blocks = _without_replaced(_blocks(markdown))
    return [b for b in blocks if not (b[0] == "heading" and b[1][0] == 1)]


def _title(markdown: str) -> str:
    match = re.search(r"^#\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return match.group(1) if match else "Claim check"


def outcome_of(item: dict[str, Any]) -> str:
    """A verdict's outcome: ``"yes"``, ``"no"``, ``"inconclusive"`` or ``"untestable"``.

    Reports from before the verdict contract carry only ``holds`` (True, False, or None for untestable).

    Examples
    --------
    >>> outcome_of({"outcome": "inconclusive", "holds": None}), outcome_of({"holds": False})
    ('inconclusive', 'no')
    """
    outcome = item.get("outcome")
    if outcome in STATES:
        return outcome
    holds = item.get("holds")
    return HOLDS_OUTCOMES[holds if holds in (True, False) else None]


def _has_families(groups: dict[str, dict[str, dict[str, Any]]]) -> bool:
    return any("family" in item for verdicts in groups.values() for item in verdicts.values())


def primary_verdicts(groups: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """The verdicts of ``groups`` (column -> {name -> verdict}) whose ``family`` is ``"primary"``; all of them
    when no verdict names a family (reports from before the verdict contract). Empty columns are dropped."""
    if not _has_families(groups):
        return {column: dict(verdicts) for column, verdicts in groups.items() if verdicts}
    chosen = {column: {name: item for name, item in verdicts.items() if item.get("family") == "primary"}
              for column, verdicts in groups.items()}
    return {column: verdicts for column, verdicts in chosen.items() if verdicts}


def _secondary_verdicts(groups: dict[str, dict[str, dict[str, Any]]],
                        primary: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
    rest = {column: {name: item for name, item in verdicts.items() if name not in primary.get(column, {})}
            for column, verdicts in groups.items()}
    return {column: verdicts for column, verdicts in rest.items() if verdicts}


def _claim_text(name: str) -> str:
    return name.replace("_", " ")


def _ids(columns: list[str], total: int) -> str:
    return f" ({', '.join(columns)})" if len(columns) < total and len(columns) <= LISTED_IDS else ""


#: Verbs of the summary sentences per outcome: (one claim, several claims).
VERBS = {"yes": ("holds", "hold"), "no": ("does not hold", "do not hold"), "inconclusive": ("is inconclusive",
         "are inconclusive"), "untestable": ("is untestable", "are untestable")}


def _profile(groups: dict[str, dict[str, dict[str, Any]]], name: str) -> tuple:
    """Per outcome, the columns where claim ``name`` has it and their one shared reason (``""`` if none or several)."""
    columns: dict[str, list[str]] = {outcome: [] for outcome in STATES}
    reasons: dict[str, set[str]] = {outcome: set() for outcome in STATES}
    for column, verdicts in groups.items():
        if name in verdicts:
            outcome = outcome_of(verdicts[name])
            columns[outcome].append(column)
            reasons[outcome].add(str(verdicts[name].get("reason") or ""))
    return tuple((outcome, tuple(found), next(iter(reasons[outcome])) if len(reasons[outcome]) == 1 else "")
                 for outcome, found in columns.items() if found)


def _counts(profile: tuple, plural: bool) -> str:
    """``holds in 6 of 8 cases; does not hold in 2 (a, b)``: the outcomes of a profile, the first with the total."""
    total = sum(len(found) for _, found, _ in profile)
    parts = []
    for outcome, found, reason in profile:
        verb = VERBS[outcome][plural]
        because = f" ({reason})" if reason and outcome in ("untestable", "inconclusive") else ""
        if len(found) == total:
            scope = "the 1 case" if total == 1 else f"all {total} cases"
            parts.append(f"{verb} in {scope}{because}")
        elif not parts:
            parts.append(f"{verb} in {len(found)} of {total} cases{_ids(list(found), total)}{because}")
        else:
            parts.append(f"{verb.split(' ', 1)[1] if verb.startswith(('is ', 'are ')) else verb} in {len(found)}"
                         f"{_ids(list(found), total)}{because}")
    return "; ".join(parts)


def summary_sentences(groups: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """One sentence per claim: in how many columns (cases) it holds, does not hold, is inconclusive or untestable.

    Claims with exactly the same answers in the same cases share one sentence.

    Parameters
    ----------
    groups : dict
        Column (a case id) -> {verdict name -> verdict dict}, as in ``report.json``: each verdict has an
        ``outcome`` (or, in older reports, ``holds``) and, where untestable or inconclusive, a ``reason``.

    Returns
    -------
    list of str
        Plain text (the caller escapes it), claims in the order they first appear. The columns are listed
        by name when an outcome concerns a few of them; an untestable or inconclusive answer gives its
        reason when all its cases share one.

    Examples
    --------
    >>> groups = {"1d-relu": {"shrink_removes_high_frequencies": {"outcome": "yes"}},
    ...           "1d-relu-nobias": {"shrink_removes_high_frequencies": {"outcome": "no"}}}
    >>> summary_sentences(groups)
    ['"shrink removes high frequencies" holds in 1 of 2 cases (1d-relu); does not hold in 1 (1d-relu-nobias).']
    >>> summary_sentences({"2d-sine": {"slingshot_beats_control": {"holds": None, "reason": "case did not overfit"},
    ...                                "slingshot_beats_fresh": {"holds": None, "reason": "case did not overfit"}}})
    ['"slingshot beats control" and "slingshot beats fresh" are untestable in the 1 case (case did not overfit).']
    """
    names = list(dict.fromkeys(name for verdicts in groups.values() for name in verdicts))
    claims: dict[tuple, list[str]] = {}
    for name in names:
        claims.setdefault(_profile(groups, name), []).append(f'"{_claim_text(name)}"')
    sentences = []
    for profile, quoted in claims.items():
        subject = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" and {quoted[-1]}"
        sentences.append(f"{subject} {_counts(profile, len(quoted) > 1)}.")
    return sentences


def _summary(report: dict[str, Any], primary: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The page's opening: what was tested, then one sentence per primary claim."""
    cases = report["cases"]
    seeds = sorted({len(case.get("seeds", [])) for case in cases})
    count = sum(len(verdicts) for verdicts in primary.values())
    which = "primary verdicts" if _has_families(primary) else "verdicts"
    lead = (f"This run tested the claims on {len(cases)} case{'s' if len(cases) != 1 else ''}"
            + (f" ({'/'.join(map(str, seeds))} seeds each)" if seeds and seeds != [0] else "")
            + f". What the {count} {which} say:")
    items = "".join(f"<li>{_escape(sentence)}</li>" for sentence in summary_sentences(primary))
    body = f"<ul>{items}</ul>" if items else "<p>No verdict was computed.</p>"
    return f'<section class="summary" id="summary"><p><strong>{_escape(lead)}</strong></p>{body}</section>'


def verdict_cell(item: dict[str, Any], case: str, name: str) -> str:
    """One ``<td>``: state symbol and word (or the reason it is untestable or inconclusive), q-value and effect."""
    outcome = outcome_of(item)
    css, symbol, word = STATES[outcome]
    details = (f"effect {number(item.get('effect'))}, 95% CI [{', '.join(number(v) for v in item.get('ci') or [])}], "
               f"p {number(item.get('p_value'))}, q {number(item.get('q_value'))}, n {item.get('n')}")
    if item.get("power") is not None:
        details += f", power {number(item.get('power'), 2)}"
    if item.get("seeds_needed") is not None:
        details += f", seeds needed {item['seeds_needed']}"
    if outcome == "inconclusive" and item.get("reason"):
        details += f"; {item['reason']}"
    dagger = " †" if item.get("window_dependent") else ""
    text = f"{symbol} {word}{dagger}"
    if outcome == "untestable":
        extra = f'<span class="reason">{_escape(item.get("reason") or "no reason given")}</span>'
    else:
        direction = f" ({item['direction']})" if outcome == "no" and item.get("direction") else ""
        extra = (f'<span class="q">{_escape(direction.strip())} q = {number(item.get("q_value"), 2)}, '
                 f'rel. {number(item.get("relative_effect"), 2)}</span>')
    return (f'<td class="{css}" data-case="{_escape(case)}" data-verdict="{_escape(name)}" '
            f'title="{_escape(details)}"><span class="state">{_escape(text)}</span>{extra}</td>')


def _verdict_names(groups: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(name for verdicts in groups for name in verdicts))


def verdict_table(columns: dict[str, dict[str, dict[str, Any]]], table_id: str, caption: str) -> str:
    """Rows: verdicts; columns: ``columns`` (case id -> {verdict name -> verdict}). Missing verdicts are blank.

    The table is as wide as the page and no wider (fixed layout, long words broken), so it fits a 1280-px window.
    """
    names = _verdict_names(list(columns.values()))
    lines = [f'<table class="verdicts" id="{table_id}"><caption>{_escape(caption)}</caption>',
             '<colgroup><col class="name">' + "<col>" * len(columns) + "</colgroup>",
             "<thead><tr><th>verdict</th>" + "".join(f'<th scope="col">{_escape(c)}</th>' for c in columns)
             + "</tr></thead><tbody>"]
    for name in names:
        cells = "".join(verdict_cell(verdicts[name], case, name) if name in verdicts else "<td></td>"
                        for case, verdicts in columns.items())
        lines.append(f'<tr><th scope="row">{_escape(_claim_text(name))}</th>{cells}</tr>')
    return "\n".join(lines + ["</tbody></table>"])


def _family_text(family: dict[str, Any]) -> str:
    """How the q-values were corrected: one family (report version 2) or a primary and a secondary family."""
    if not family:
        return ""
    if "size" in family:
        method = METHODS.get(family.get("method"), family.get("method"))
        return f"q-values corrected over the family of {family['size']} verdicts by {method}. "
    parts = [f"{name} family: {group.get('size')} verdicts, {METHODS.get(group.get('method'), group.get('method'))}"
             for name, group in family.items() if isinstance(group, dict)]
    return "q-values corrected within each family (" + "; ".join(parts) + "). " if parts else ""


def _legend(report: dict[str, Any]) -> str:
    keys = " ".join(f'<span class="key" style="background:{COLOURS[css]}">{symbol} {word}</span>'
                    for css, symbol, word in STATES.values())
    text = _family_text(report.get("family") or {})
    return (f'<p class="note">{keys} {_escape(text)}Hover a cell for the effect, CI, p, n and power. '
            "† the alternate window disagrees.</p>")


def _verdict_sections(report: dict[str, Any]) -> tuple[str, list[str]]:
    """The summary, and the verdict tables: primary first, secondary collapsed in ``<details>``."""
    groups = {case["id"]: case.get("verdicts") or {} for case in report["cases"]}
    precision = report.get("precision") or {}
    precision_column = f"precision {precision.get('case', '')}".strip()
    precision_groups = {precision_column: precision["verdicts"]} if precision.get("verdicts") else {}
    primary = primary_verdicts(groups)
    primary_precision = primary_verdicts(precision_groups) if _has_families(precision_groups) else {}
    summary_groups = {**primary, **{column: {f"precision: {name}": item for name, item in verdicts.items()}
                                    for column, verdicts in primary_precision.items()}}
    tables = []
    if primary:
        which = "Primary verdicts" if _has_families(groups) else "Verdicts"
        tables.append(verdict_table(primary, "verdicts", f"{which} per case (rows: claims; columns: cases)"))
    secondary = _secondary_verdicts(groups, primary)
    if secondary:
        count = sum(len(verdicts) for verdicts in secondary.values())
        tables.append(f'<details class="secondary" id="secondary"><summary>Secondary verdicts ({count}): every other '
                      "comparison</summary>" + verdict_table(secondary, "secondary-verdicts", "Secondary verdicts per "
                                                             "case") + "</details>")
    if precision_groups:
        tables.append(verdict_table(precision_groups, "precision-verdicts",
                                    "Precision verdicts (low precision against float32)"))
    return _summary(report, summary_groups), tables


def _provenance(report: dict[str, Any]) -> str:
    provenance = report.get("provenance") or {}
    if not provenance:
        return '<h2 id="provenance">Provenance</h2>\n<p class="missing">This report records no provenance.</p>'
    rows = []
    for key, value in provenance.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
        rows.append(f"<dt>{_escape(key)}</dt><dd>{_escape(value)}</dd>")
    return '<h2 id="provenance">Provenance</h2>\n<dl class="provenance">' + "".join(rows) + "</dl>"


def _meta(report: dict[str, Any]) -> str:
    provenance = report.get("provenance") or {}
    facts = [f"spectral {provenance['spectral']}" if provenance.get("spectral") else "",
             f"device {provenance['device']}" if provenance.get("device") else "",
             provenance.get("date") or ""]
    seeds = sorted({len(case.get("seeds", [])) for case in report["cases"]})
    facts.insert(0, f"{len(report['cases'])} cases" + (f", {'/'.join(map(str, seeds))} seeds each" if seeds else ""))
    return '<p class="meta">' + _escape(" · ".join(f for f in facts if f)) + "</p>"


def render_html(report: dict[str, Any], root: Path, markdown: str) -> str:
    """The page's text; images in ``markdown`` are read relative to ``root`` and embedded.

    Examples
    --------
    >>> from pathlib import Path
    >>> from spectral.claim._html import render_html
    >>> report = {"cases": [{"id": "1d-tanh", "seeds": [0, 1], "verdicts": {"shrink_removes_high_frequencies": {
    ...     "holds": True, "reason": None, "q_value": 0.01, "p_value": 0.004, "effect": -0.2, "ci": [-0.3, -0.1],
    ...     "relative_effect": -0.9, "n": 8}}}], "family": {"size": 1, "method": "bh"}}
    >>> page = render_html(report, Path("."), "# Claim check\\n\\n## Case 1d-tanh\\n\\nText with `code`.")
    >>> page.index('id="summary"') < page.index('class="verdicts"') < page.index('id="case-1d-tanh"')
    True
    """
    images = _Images(root)
    body, sections = markdown_to_html(markdown, images)
    summary, tables = _verdict_sections(report)
    nav = "".join(f'<a href="#{anchor}">{_escape(text)}</a>' for anchor, text in sections + [("provenance", "Provenance")])
    title = _title(markdown)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        # Nothing may be fetched: images are data URIs, the style is inline.
        ("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
         "style-src 'unsafe-inline'\">"),
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_escape(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
        f"<h1>{_escape(title)}</h1>", _meta(report), summary, _legend(report),
        '<div class="tables">', *tables, "</div>", f"<nav>{nav}</nav>",
        body, _provenance(report), "</body>", "</html>", ""])


def write_html(report: dict[str, Any], out: str | os.PathLike, figures: dict[str, dict[str, str]],
               markdown: str) -> Path:
    """Write ``out/report.html``: the verdict table first, then ``markdown`` as HTML, then the provenance.

    Parameters
    ----------
    report : dict
        What ``report.json`` holds: ``cases`` (each with ``id``, ``seeds`` and
        ``verdicts``, name -> ``holds`` (True, False or None), ``reason``,
        ``q_value``, ``p_value``, ``effect``, ``ci``, ``relative_effect``,
        ``n``), and optionally ``precision`` (with ``verdicts``),
        ``provenance`` and ``family`` (``size``, ``method``).
    out : path
        The run's folder; figure paths are relative to it.
    figures : dict
        ``{section: {name: path}}`` as written by the figure writer. Figures
        the Markdown does not show are added at the end, so none is lost.
    markdown : str
        ``report.md``'s text. Its headline verdict table and provenance section
        are replaced by ones built from ``report``.

    Returns
    -------
    Path
        ``out/report.html``, written atomically, UTF-8, with every image
        embedded as a data URI: the page opens without the folder or a network.

    Raises
    ------
    TypeError
        If ``report`` is not a dict or ``markdown`` is not a string.
    ValueError
        If ``report`` has no ``cases`` list.
    """
    if not isinstance(report, dict):
        raise TypeError(f"report must be a dict (report.json's content), got {type(report).__name__}")
    if not isinstance(report.get("cases"), list):
        raise ValueError("report has no 'cases' list: not a claim-check report")
    if not isinstance(markdown, str):
        raise TypeError(f"markdown must be a str, got {type(markdown).__name__}")
    out = Path(out)
    shown = {source for _, source in IMAGE.findall(markdown)}
    extra = [f"![{name}]({path})" for group in figures.values() for name, path in group.items() if path not in shown]
    if extra:
        markdown += "\n\n## More figures\n\n" + "\n\n".join(extra) + "\n"
    text = render_html(report, out, markdown)
    return atomic_write(out / "report.html", lambda file: file.write(text.encode("utf-8")))
