import base64
import html.parser
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from spectral.claim._html import COLOURS, write_html

CHROMIUM = Path("/usr/bin/chromium")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny_png(rgb=(30, 120, 200), size=4):
    """A valid size x size PNG of one colour."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return PNG_MAGIC + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def verdict(holds, q=0.01, reason="case did not overfit"):
    if holds is None:
        return {"holds": None, "reason": reason, "q_value": None, "p_value": None, "effect": None, "ci": [None, None],
                "relative_effect": None, "n": 3}
    return {"holds": holds, "reason": None, "q_value": q, "p_value": q / 2, "effect": -0.1, "ci": [-0.2, -0.01],
            "relative_effect": -0.5 if holds else 0.1, "n": 8}


CASES = ("1d-tanh", "2d-relu", "1d-<b>odd")


def make_report():
    states = [True, False, None]
    cases = []
    for i, case_id in enumerate(CASES):
        verdicts = {"shrink_removes_high_frequencies": verdict(states[i % 3], q=0.001 * (i + 1)),
                    "slingshot_beats_control": verdict(states[(i + 1) % 3], q=0.3 + i / 10),
                    "slingshot_beats_fresh": verdict(states[(i + 2) % 3], reason="fewer than 6 finite seeds (4)")}
        cases.append({"id": case_id, "seeds": list(range(8)), "verdicts": verdicts})
    return {"version": 2, "cases": cases, "family": {"size": 7, "method": "bh"},
            "precision": {"case": "1d-tanh", "verdicts": {"bfloat16": verdict(False, q=0.6),
                                                          "float16": verdict(None, reason="no seed overfit")}},
            "provenance": {"spectral": "0.1.0", "python": "3.11.7", "torch": "2.13.0", "device": "cpu",
                           "date": "2025-01-01T00:00:00+00:00", "wall_time_s": {"cases": 12.5, "figures": 3.0}}}


def make_markdown(cases=CASES):
    lines = ["# Claim check: the slingshot maneuver", "", "Each verdict compares two arms **seed by seed**.", "",
             "## Verdicts", "", "| case | shrink cuts HF |", "|---|---|", "| 1d-tanh | yes (-96%) |", "",
             "### The slingshot against every reference", "", "| case | control |", "|---|---|", "| 1d-tanh | no |", ""]
    for case_id in cases:
        lines += [f"## Case {case_id}", "", "Text with `code`, a <script>alert(1)</script> and a | pipe.", "",
                  "- a list item", "  continued", "- another", "",
                  f"![retraining curves](figures/{case_id}-curves.png)", ""]
    lines += ["## Low-precision weights (1d-tanh)", "", "![lost updates](figures/precision-lost-updates.png)", "",
              "## Provenance", "", "| item | value |", "|---|---|", "| torch | 2.13.0 |", ""]
    return "\n".join(lines)


@pytest.fixture
def run_folder(tmp_path):
    (tmp_path / "figures").mkdir()
    figures = {case_id: {"retraining curves": f"figures/{case_id}-curves.png"} for case_id in CASES}
    figures["sweep"] = {"sweep": "figures/sweep.png"}  # not in the Markdown: must still be on the page
    for group in figures.values():
        for path in group.values():
            (tmp_path / path).write_bytes(tiny_png())
    (tmp_path / "figures" / "precision-lost-updates.png").write_bytes(tiny_png((200, 50, 50)))
    return tmp_path, figures


class Page(html.parser.HTMLParser):
    """Images, headings, tags and the verdict tables' cells of a page."""

    def __init__(self, text):
        super().__init__()
        self.images, self.headings, self.tags, self.cells = [], [], [], {}
        self._cell = self._heading = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "td" and "data-verdict" in attrs:
            self._cell = {"class": attrs["class"], "text": ""}
            self.cells[attrs["data-case"], attrs["data-verdict"]] = self._cell
        elif tag in ("h1", "h2", "h3"):
            self._heading = [tag, attrs.get("id"), ""]
            self.headings.append(self._heading)

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        elif tag in ("h1", "h2", "h3"):
            self._heading = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if self._heading is not None:
            self._heading[2] += data


def test_every_image_is_embedded_and_decodes_to_a_png(run_folder):
    out, figures = run_folder
    path = write_html(make_report(), out, figures, make_markdown())
    assert path == out / "report.html"
    page = Page(path.read_text(encoding="utf-8"))
    assert len(page.images) == len(CASES) + 2  # the curves, the precision figure, and the sweep the Markdown lacks
    for source in page.images:
        prefix = "data:image/png;base64,"
        assert source.startswith(prefix)
        assert base64.b64decode(source[len(prefix):], validate=True).startswith(PNG_MAGIC)
    assert any(text == "More figures" for _, _, text in page.headings)


def test_the_verdict_table_comes_first_and_equals_the_report(run_folder):
    out, figures = run_folder
    report = make_report()
    text = write_html(report, out, figures, make_markdown()).read_text(encoding="utf-8")
    page = Page(text)
    assert text.index('id="verdicts"') < text.index("<h2")
    expected = {(case["id"], name): item for case in report["cases"] for name, item in case["verdicts"].items()}
    expected.update({("precision 1d-tanh", name): item for name, item in report["precision"]["verdicts"].items()})
    assert set(page.cells) == set(expected)
    for key, item in expected.items():
        cell = page.cells[key]
        if item["holds"] is True:
            assert cell["class"] == "holds" and "✓ holds" in cell["text"] and f"q = {item['q_value']:.2g}" in cell["text"]
        elif item["holds"] is False:
            assert cell["class"] == "fails" and "✗ does not hold" in cell["text"]
            assert f"q = {item['q_value']:.2g}" in cell["text"]
        else:
            assert cell["class"] == "untestable" and f"? untestable{item['reason']}" in cell["text"]


def test_every_case_has_its_section_and_the_markdown_copies_are_replaced(run_folder):
    out, figures = run_folder
    page = Page(write_html(make_report(), out, figures, make_markdown()).read_text(encoding="utf-8"))
    titles = [text for tag, _, text in page.headings if tag == "h2"]
    for case_id in CASES:
        assert f"Case {case_id}" in titles
    assert titles.count("Provenance") == 1 and "Verdicts" not in titles  # built from the data, not the Markdown
    assert "The slingshot against every reference" in [text for tag, _, text in page.headings]
    tags = {tag for tag, _ in page.tags}
    assert "script" not in tags and "b" not in tags  # a case id and Markdown text are escaped, never markup
    assert "ul" in tags and "code" in tags and "strong" in tags
    assert not [a for _, a in page.tags if str(a.get("href", "#")).startswith(("http", "//"))]
    assert {"link", "iframe"}.isdisjoint(tags)


def test_provenance_block_and_a_missing_figure_are_shown(run_folder):
    out, figures = run_folder
    (out / "figures" / "2d-relu-curves.png").unlink()
    text = write_html(make_report(), out, figures, make_markdown()).read_text(encoding="utf-8")
    assert "missing figure: figures/2d-relu-curves.png" in text
    assert "<dt>wall_time_s</dt><dd>cases 12.5, figures 3.0</dd>" in text and "<dt>torch</dt><dd>2.13.0</dd>" in text
    report = make_report()
    del report["provenance"]
    assert "records no provenance" in write_html(report, out, {}, make_markdown()).read_text(encoding="utf-8")


def test_write_html_refuses_what_is_not_a_report(tmp_path):
    with pytest.raises(TypeError, match="report must be a dict"):
        write_html([], tmp_path, {}, "")
    with pytest.raises(ValueError, match="'cases'"):
        write_html({"config": {}}, tmp_path, {}, "")
    with pytest.raises(TypeError, match="markdown must be a str"):
        write_html({"cases": []}, tmp_path, {}, None)


def colour(hex_code):
    return np.array([int(hex_code[i:i + 2], 16) for i in (1, 3, 5)])


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs headless Chromium at /usr/bin/chromium "
                                                   "(Debian: apt-get install -y chromium)")
@pytest.mark.slow
def test_the_page_renders_in_a_browser_with_the_verdicts_on_the_first_screen(run_folder, tmp_path_factory):
    import matplotlib.image

    out, figures = run_folder
    page = write_html(make_report(), out, figures, make_markdown())
    screenshot = tmp_path_factory.mktemp("browser") / "screen.png"
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={screenshot.parent / 'profile'}", f"--screenshot={screenshot}",
               "--window-size=1280,900", page.resolve().as_uri()]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert screenshot.is_file(), f"no screenshot (exit {result.returncode}): {result.stderr[-2000:]}"
    pixels = np.round(matplotlib.image.imread(screenshot)[..., :3] * 255).astype(int)
    assert pixels.shape[:2] == (900, 1280)
    assert pixels.std() > 10  # not a blank page
    for state, hex_code in COLOURS.items():
        match = np.all(np.abs(pixels - colour(hex_code)) <= 3, axis=-1)
        assert match.sum() > 200, f"no {state} verdict cell on the first screen"
        assert np.flatnonzero(match.any(axis=1))[0] < 450, f"the first {state} cell is not near the top"
