import base64
import html
import html.parser
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from spectral.claim._html import (
    COLOURS,
    STATES,
    outcome_of,
    primary_verdicts,
    summary_sentences,
    write_html,
)

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
    # a case's verdict rows as report.md writes them: ten columns of long, unbreakable names
    row = ("| slingshot_beats_shrink_perturb_at_best_validation | test_mse@best_validation: slingshot vs shrink_perturb "
           "| inconclusive | 0.0458 | 0.0662 | -0.026 [-0.0507, -0.00317] | -0.0256 | 15 (1 dropped) "
           "| 0.87 (~25 seeds for 0.8) | inconclusive with 28 seeds after the family correction |")
    for case_id in cases:
        lines += [f"## Case {case_id}", "", "Text with `code`, a <script>alert(1)</script> and a | pipe.", "",
                  "- a list item", "  continued", "- another", "",
                  "| verdict | metric: claim vs reference | outcome | q (effect) | q (absent) | estimate [CI] | "
                  "relative effect | n | power at -20% (uncorrected) | note |", "|---" * 10 + "|", row, "",
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


def test_the_summary_and_the_verdict_table_come_first_and_equal_the_report(run_folder):
    out, figures = run_folder
    report = make_report()
    text = write_html(report, out, figures, make_markdown()).read_text(encoding="utf-8")
    page = Page(text)
    assert text.index('id="summary"') < text.index("<table") < text.index('id="verdicts"') < text.index("<h2")
    assert "<details" not in text  # a report without families has no secondary verdicts
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
        if state == "inconclusive":  # a report without outcomes has none
            continue
        match = np.all(np.abs(pixels - colour(hex_code)) <= 3, axis=-1)
        assert match.sum() > 200, f"no {state} verdict cell on the first screen"
        assert np.flatnonzero(match.any(axis=1))[0] < 450, f"the first {state} cell is not near the top"


# --- The summary and the verdict contract's outcomes and families ----------------------------------------------------


def contract_verdict(outcome, family="primary", reason=None, **extra):
    holds = {"yes": True, "no": False}.get(outcome)
    return {"outcome": outcome, "holds": holds, "family": family, "reason": reason, "q_value": 0.01, "p_value": 0.005,
            "effect": -0.2, "ci": [-0.3, -0.1], "relative_effect": -0.18, "n": 16, "power": 0.9, "seeds_needed": 10,
            **extra}


def test_outcome_prefers_the_contract_and_reads_old_reports():
    assert outcome_of({"outcome": "inconclusive", "holds": None}) == "inconclusive"
    assert [outcome_of({"holds": h}) for h in (True, False, None)] == ["yes", "no", "untestable"]
    assert outcome_of({}) == "untestable"
    assert set(STATES) == {"yes", "no", "inconclusive", "untestable"}


def test_summary_counts_each_claim_over_the_cases():
    shrink = "shrink_removes_high_frequencies"
    groups = {f"1d-{a}": {shrink: contract_verdict("yes")} for a in ("relu", "tanh", "sine")}
    groups.update({f"2d-{a}": {shrink: contract_verdict("yes")} for a in ("relu", "tanh", "sine")})
    groups["1d-relu-nobias"] = {shrink: contract_verdict("no")}
    groups["2d-relu-nobias"] = {shrink: contract_verdict("no")}
    expected = ('"shrink removes high frequencies" holds in 6 of 8 cases; does not hold in 2 '
                '(1d-relu-nobias, 2d-relu-nobias).')
    assert summary_sentences(groups) == [expected]


def test_summary_says_untestable_and_inconclusive_as_such():
    beats = "slingshot_beats_control"
    groups = {"2d-sine": {beats: contract_verdict("untestable", reason="case did not overfit")},
              "1d-tanh": {beats: contract_verdict("inconclusive", reason="about 40 seeds would decide it")},
              "1d-relu": {beats: contract_verdict("yes")}}
    expected = ('"slingshot beats control" holds in 1 of 3 cases (1d-relu); inconclusive in 1 (1d-tanh) (about 40 '
                'seeds would decide it); untestable in 1 (2d-sine) (case did not overfit).')
    assert summary_sentences(groups) == [expected]
    every = {case: {beats: contract_verdict("untestable", reason="case did not overfit")} for case in ("a", "b")}
    assert summary_sentences(every) == ['"slingshot beats control" is untestable in all 2 cases (case did not overfit).']
    every["a"]["x"] = every["b"]["x"] = contract_verdict("untestable", reason="case did not overfit")
    every["a"]["y"] = contract_verdict("yes")
    every["b"]["y"] = contract_verdict("inconclusive")
    assert summary_sentences(every) == [
        '"slingshot beats control" and "x" are untestable in all 2 cases (case did not overfit).',
        '"y" holds in 1 of 2 cases (a); inconclusive in 1 (b).']
    assert summary_sentences({}) == []


def test_summary_claims_keep_their_order_and_old_reports_use_holds():
    groups = {"a": {"second": {"holds": False}, "first": {"holds": True}}, "b": {"first": {"holds": None, "reason": "x"}}}
    assert summary_sentences(groups) == ['"second" does not hold in the 1 case.',
                                         '"first" holds in 1 of 2 cases (a); untestable in 1 (b) (x).']


def test_primary_verdicts_fall_back_to_all_when_no_verdict_has_a_family():
    old = {"a": {"x": {"holds": True}}, "b": {}}
    assert primary_verdicts(old) == {"a": {"x": {"holds": True}}}
    new = {"a": {"x": contract_verdict("yes"), "y": contract_verdict("no", family="secondary")},
           "b": {"y": contract_verdict("no", family="secondary")}}
    assert primary_verdicts(new) == {"a": {"x": new["a"]["x"]}}


LONG_CASES = ("1d-relu", "1d-tanh", "1d-sine", "1d-relu-nobias", "2d-relu", "2d-tanh", "2d-sine", "2d-relu-nobias",
              "digits-relu-n256-sgd", "1d-<i>tanh</i>-n1024")
PRIMARY = ("shrink_removes_high_frequencies", "shrink_removes_high_frequencies_more_than_low",
           "slingshot_beats_control", "slingshot_beats_early_stop", "slingshot_beats_control_at_matched_fit",
           "slingshot_beats_control_at_best_validation")


def contract_report():
    """A report as the verdict contract writes it: 10 cases, primary and secondary families, every outcome."""
    outcomes = ("yes", "no", "inconclusive", "untestable")
    cases = []
    for i, case_id in enumerate(LONG_CASES):
        verdicts = {name: contract_verdict(outcomes[(i + j) % 4], reason=None if (i + j) % 4 < 2 else
                                           "fewer than 5 seeds with finite values at the matched training fit")
                    for j, name in enumerate(PRIMARY)}
        verdicts.update({f"slingshot_beats_{arm}_on_test_error": contract_verdict(outcomes[(i + j) % 4], "secondary",
                                                                                  reason="r")
                         for j, arm in enumerate(("fresh", "weight_decay", "output_scale", "shrink_perturb"))})
        cases.append({"id": case_id, "seeds": list(range(16)), "verdicts": verdicts})
    family = {"primary": {"size": 60, "method": "holm", "alpha": 0.05},
              "secondary": {"size": 40, "method": "bh", "alpha": 0.05}}
    return {"version": 3, "cases": cases, "family": family, "provenance": {"spectral": "0.2.0"}}


def test_primary_table_first_secondary_collapsed_and_a_sentence_per_primary_claim(tmp_path):
    text = write_html(contract_report(), tmp_path, {}, make_markdown(LONG_CASES)).read_text(encoding="utf-8")
    page = Page(text)
    summary = text[text.index('id="summary"'):text.index("</section>")]
    assert text.index('id="summary"') < text.index("<table")
    assert summary.count("<li>") == 4  # claims with the same answers in the same cases share a sentence
    for name in PRIMARY:
        assert f"&quot;{name.replace('_', ' ')}&quot;" in summary
    assert "holds in" in summary and "untestable in" in summary and "inconclusive in" in summary
    assert "on test error" not in summary  # secondary claims are not summarised
    assert text.index('id="verdicts"') < text.index('<details class="secondary"') < text.index('id="secondary-verdicts"')
    assert '<details class="secondary" id="secondary" open' not in text
    primary_cells = {key for key in page.cells if not key[1].endswith("_on_test_error")}
    assert len(primary_cells) == len(LONG_CASES) * len(PRIMARY)
    assert {page.cells[key]["class"] for key in page.cells} == {"holds", "fails", "inconclusive", "untestable"}
    assert "i" not in {tag for tag, _ in page.tags}  # the odd case id is text
    assert "primary family: 60 verdicts, Holm; secondary family: 40 verdicts, Benjamini-Hochberg" in text
    assert "power 0.9" in text and "seeds needed 10" in text


def test_figures_sit_in_a_gallery_with_captions_and_there_is_a_print_stylesheet(run_folder):
    out, figures = run_folder
    text = write_html(make_report(), out, figures, make_markdown()).read_text(encoding="utf-8")
    assert text.count("<figure>") == len(CASES) + 2
    assert "<figcaption>retraining curves</figcaption>" in text and "<figcaption>sweep</figcaption>" in text
    assert '<div class="gallery"><figure>' in text
    assert "@media print" in text


MEASURE = """<script>
window.addEventListener("load", () => {
  const table = document.getElementById("verdicts").getBoundingClientRect();
  document.body.setAttribute("data-measure", JSON.stringify({table_right: table.right, table_width: table.width,
    scroll_width: document.documentElement.scrollWidth, client_width: document.documentElement.clientWidth}));
});
</script>"""


def chromium(*arguments, profile):
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--window-size=1280,800", *arguments]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs headless Chromium at /usr/bin/chromium "
                                                   "(Debian: apt-get install -y chromium)")
@pytest.mark.slow
def test_the_primary_table_fits_a_1280_by_800_window(tmp_path):
    import json
    import re

    page = write_html(contract_report(), tmp_path, {}, make_markdown(LONG_CASES))
    screenshot = tmp_path / "report-1280x800.png"
    result = chromium(f"--screenshot={screenshot}", page.resolve().as_uri(), profile=tmp_path / "profile")
    assert screenshot.is_file(), f"no screenshot (exit {result.returncode}): {result.stderr[-2000:]}"
    print(f"screenshot of report.html at 1280 x 800: {screenshot}")
    # The page forbids scripts (its Content-Security-Policy); a copy without that line measures itself.
    text = page.read_text(encoding="utf-8")
    measured = tmp_path / "measured.html"
    measured.write_text(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
                        .replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    result = chromium("--dump-dom", "--virtual-time-budget=5000", measured.resolve().as_uri(),
                      profile=tmp_path / "profile2")
    found = re.search(r'data-measure="([^"]+)"', result.stdout)
    assert found, f"no measurement (exit {result.returncode}): {result.stderr[-2000:]}"
    size = json.loads(html.unescape(found.group(1)))
    assert size["client_width"] <= 1280
    assert size["scroll_width"] <= size["client_width"], f"the page scrolls sideways: {size}"
    assert size["table_right"] <= size["client_width"], f"the primary table is cut off: {size}"
