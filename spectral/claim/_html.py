"""report.html: the claim check as one self-contained page (figures embedded, no network).

The verdict table comes first and is built from the report's data, not from
the Markdown; the rest of the page is ``report.md`` converted by a small
Markdown subset converter (headings, paragraphs, lists, pipe tables, images,
code, bold, links) that escapes every character of its input.
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

#: Verdict states: ``holds`` value -> (CSS class, symbol, word). Colour, symbol and word all differ.
STATES = {True: ("holds", "✓", "holds"), False: ("fails", "✗", "does not hold"),
          None: ("untestable", "?", "untestable")}
#: Background colours of the verdict cells (also read by the browser test).
COLOURS = {"holds": "#b7e4c0", "fails": "#f7c1c1", "untestable": "#dcdcdc"}
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
               ".gif": "image/gif"}
#: Markdown sections the page builds from the report's data instead (the verdict table, the provenance).
REPLACED_SECTIONS = ("Verdicts", "Provenance")

STYLE = f"""
body {{ font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; margin: 0 auto;
       max-width: 1240px; padding: 12px 20px 40px; }}
h1 {{ font-size: 1.55em; margin: 0.2em 0 0.1em; }}
h2 {{ border-bottom: 1px solid #d0d7de; padding-bottom: 0.2em; margin-top: 1.6em; }}
p.meta, p.note {{ color: #57606a; margin: 0.2em 0 0.6em; font-size: 0.92em; }}
table {{ border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.9em; }}
th, td {{ border: 1px solid #d0d7de; padding: 3px 7px; vertical-align: top; text-align: left; }}
thead th {{ background: #f6f8fa; }}
table.verdicts td, table.verdicts th {{ padding: 3px 6px; }}
table.verdicts caption {{ text-align: left; font-weight: 600; padding-bottom: 2px; }}
table.verdicts th[scope=row] {{ font-weight: 500; white-space: nowrap; }}
td.holds {{ background: {COLOURS['holds']}; color: #0a4d1c; font-weight: 600; }}
td.fails {{ background: {COLOURS['fails']}; color: #7d0a0a; }}
td.untestable {{ background: {COLOURS['untestable']}; color: #3d3d3d; font-style: italic;
                 outline: 2px dashed #8c8c8c; outline-offset: -3px; }}
td .state {{ white-space: nowrap; }}
td .q, td .reason {{ display: block; font-size: 0.82em; font-weight: normal; }}
span.key {{ display: inline-block; padding: 0 6px; margin-right: 6px; }}
nav {{ font-size: 0.9em; margin: 0.4em 0 1em; }}
nav a {{ margin-right: 0.9em; }}
img {{ max-width: 100%; height: auto; display: block; margin: 0.5em 0 1em; }}
code {{ background: #f6f8fa; padding: 0 3px; border-radius: 3px; }}
.missing {{ color: #b00; font-weight: 600; }}
dl.provenance {{ display: grid; grid-template-columns: max-content auto; gap: 2px 14px; font-size: 0.9em; }}
dl.provenance dt {{ font-weight: 600; }}
dl.provenance dd {{ margin: 0; }}
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
        else:
            out.append("<p>" + " ".join(_inline(line.strip(), images) for line in value) + "</p>")
    return "\n".join(out), sections


def markdown_blocks(markdown: str) -> list[tuple[str, Any]]:
    """The Markdown's blocks without its title, headline verdict table and provenance section."""
    blocks = _without_replaced(_blocks(markdown))
    return [b for b in blocks if not (b[0] == "heading" and b[1][0] == 1)]


def _title(markdown: str) -> str:
    match = re.search(r"^#\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return match.group(1) if match else "Claim check"


def verdict_cell(item: dict[str, Any], case: str, name: str) -> str:
    """One ``<td>``: state symbol and word (or the reason it is untestable), q-value and relative effect."""
    holds = item.get("holds")
    css, symbol, word = STATES[holds if holds in (True, False) else None]
    details = (f"effect {number(item.get('effect'))}, 95% CI [{', '.join(number(v) for v in item.get('ci') or [])}], "
               f"p {number(item.get('p_value'))}, q {number(item.get('q_value'))}, n {item.get('n')}")
    dagger = " †" if item.get("window_dependent") else ""
    text = f"{symbol} {word}{dagger}"
    if holds is None:
        extra = f'<span class="reason">{_escape(item.get("reason") or "no reason given")}</span>'
    else:
        extra = (f'<span class="q">q = {number(item.get("q_value"), 2)}, '
                 f'rel. {number(item.get("relative_effect"), 2)}</span>')
    return (f'<td class="{css}" data-case="{_escape(case)}" data-verdict="{_escape(name)}" '
            f'title="{_escape(details)}"><span class="state">{_escape(text)}</span>{extra}</td>')


def _verdict_names(groups: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(name for verdicts in groups for name in verdicts))


def verdict_table(columns: dict[str, dict[str, dict[str, Any]]], table_id: str, caption: str) -> str:
    """Rows: verdicts; columns: ``columns`` (case id -> {verdict name -> verdict}). Missing verdicts are blank."""
    names = _verdict_names(list(columns.values()))
    lines = [f'<table class="verdicts" id="{table_id}"><caption>{_escape(caption)}</caption>',
             "<thead><tr><th>verdict</th>" + "".join(f'<th scope="col">{_escape(c)}</th>' for c in columns)
             + "</tr></thead><tbody>"]
    for name in names:
        cells = "".join(verdict_cell(verdicts[name], case, name) if name in verdicts else "<td></td>"
                        for case, verdicts in columns.items())
        lines.append(f'<tr><th scope="row">{_escape(name.replace("_", " "))}</th>{cells}</tr>')
    return "\n".join(lines + ["</tbody></table>"])


def _legend(report: dict[str, Any]) -> str:
    keys = " ".join(f'<span class="key" style="background:{COLOURS[css]}">{symbol} {word}</span>'
                    for css, symbol, word in STATES.values())
    family = report.get("family") or {}
    method = {"bh": "Benjamini-Hochberg", "holm": "Holm", "none": "no correction"}.get(family.get("method"),
                                                                                         family.get("method"))
    text = (f"q-values corrected over the family of {family['size']} verdicts by {method}. "
            if family else "")
    return (f'<p class="note">{keys} {_escape(text)}Hover a cell for the effect, CI, p and n. '
            "† the alternate window disagrees.</p>")


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
    >>> page.index('class="verdicts"') < page.index('id="case-1d-tanh"')
    True
    """
    images = _Images(root)
    body, sections = markdown_to_html(markdown, images)
    cases = {case["id"]: case.get("verdicts") or {} for case in report["cases"]}
    tables = [verdict_table(cases, "verdicts", "Verdicts per case (rows: claims; columns: cases)")]
    precision = (report.get("precision") or {}).get("verdicts")
    if precision:
        case = report["precision"].get("case", "")
        tables.append(verdict_table({f"precision {case}".strip(): precision}, "precision-verdicts",
                                    "Precision verdicts (low precision against float32)"))
    nav = "".join(f'<a href="#{anchor}">{_escape(text)}</a>' for anchor, text in sections + [("provenance", "Provenance")])
    title = _title(markdown)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        # Nothing may be fetched: images are data URIs, the style is inline.
        ("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
         "style-src 'unsafe-inline'\">"),
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_escape(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
        f"<h1>{_escape(title)}</h1>", _meta(report), _legend(report), *tables, f"<nav>{nav}</nav>",
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
    shown = set(re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", markdown))
    extra = [f"![{name}]({path})" for group in figures.values() for name, path in group.items() if path not in shown]
    if extra:
        markdown += "\n\n## More figures\n\n" + "\n\n".join(extra) + "\n"
    text = render_html(report, out, markdown)
    return atomic_write(out / "report.html", lambda file: file.write(text.encode("utf-8")))
