import base64
import html.parser

import matplotlib
import numpy as np
import pytest

from spectral import FilterHistory, Grid, SpectrumProbe
from spectral._repr import history_html, summary_rows, thumbnail_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Parsed(html.parser.HTMLParser):
    """The tags, the summary table's rows and the images of a history's HTML."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.rows, self.images, self._cell = [], [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("th", "td") and self.rows:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            self.rows[-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def sinusoid_history(shape=(64,), label="<b>after</b> & shrink"):
    probe = SpectrumProbe(Grid.uniform(shape), every=5)
    probe.update(lambda p: np.sin(2 * np.pi * 3 * p[:, 0]), 0)
    probe.update(lambda p: 0.5 * np.sin(2 * np.pi * 3 * p[:, 0]), 10)
    probe.snapshot(lambda p: np.zeros(len(p)), label)
    return probe.history


def png_of(source):
    prefix = "data:image/png;base64,"
    assert source.startswith(prefix)
    data = base64.b64decode(source[len(prefix):], validate=True)
    assert data.startswith(PNG_MAGIC)
    return data


def test_spectrum_history_shows_its_summary_and_a_thumbnail():
    history = sinusoid_history()
    page = Parsed(history._repr_html_())
    rows = {row[0]: row[1] for row in page.rows}
    assert rows["records"] == "3 (3 finite)"
    assert rows["steps"] == "0 to 10"
    assert rows["labels"] == "<b>after</b> & shrink"  # shown as text, not markup
    assert "b" not in page.tags
    assert len(page.images) == 1
    png_of(page.images[0])


def test_labels_and_configuration_are_escaped():
    history = sinusoid_history(label='"><script>alert(1)</script>')
    text = history_html(history)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "SpectrumHistory" in text


def test_the_thumbnail_is_drawn_without_pyplot_under_agg():
    import matplotlib.pyplot as plt

    assert matplotlib.get_backend().lower() == "agg"
    before = plt.get_fignums()
    png = thumbnail_png(sinusoid_history(shape=(16, 16)))  # 2D: the radial profile
    assert png.startswith(PNG_MAGIC)
    assert plt.get_fignums() == before  # no pyplot figure left open


def test_an_empty_history_has_a_summary_and_no_thumbnail():
    history = FilterHistory([0.5, 1.0])
    page = Parsed(history._repr_html_())
    rows = {row[0]: row[1] for row in page.rows}
    assert rows["records"] == "0 (0 finite)" and rows["steps"] == "none"
    assert page.images == []


def test_other_histories_draw_their_records_and_non_finite_rows_are_counted():
    history = FilterHistory([0.5])
    history.append(0, "", True, residual_low=[0.5], residual_high=[0.25])
    history.append_filled(5, "diverged", False, np.nan)
    rows = dict(summary_rows(history))
    assert rows["records"] == "2 (1 finite)"
    assert rows["residual_low"] == "per record, shape (1,)"
    png_of(Parsed(history._repr_html_()).images[0])


def test_a_history_with_nothing_finite_has_no_thumbnail():
    probe = SpectrumProbe(Grid.uniform(32), every=1)
    probe.update(lambda p: np.full(len(p), np.nan), 0)
    assert thumbnail_png(probe.history) is None
    assert "1 (0 finite)" in history_html(probe.history)


@pytest.mark.parametrize("shape", [(64,), (16, 16)])
def test_the_summary_states_the_grid(shape):
    rows = dict(summary_rows(sinusoid_history(shape=shape)))
    assert rows["shape"] == str(list(shape)).replace(" ", " ")


@pytest.mark.slow
def test_every_kind_of_history_shows_itself():
    import torch

    from spectral import BatchSpectrumProbe, ProjectionProbe
    from spectral.models import mlp
    from spectral.precision import LostUpdateProbe

    x = np.random.default_rng(0).uniform(size=(32, 1))
    y = np.sin(2 * np.pi * 3 * x[:, 0])
    net = mlp(1, width=8, depth=2, activation="tanh", seed=0)
    projection = ProjectionProbe(x, y, freqs=[1, 2, 3])
    projection.update(net, 0)
    batch = BatchSpectrumProbe(wavevectors=[1, 2, 3])
    batch.update(x, y, 0.5 * y, 0)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    with LostUpdateProbe(net, optimizer) as lost:  # records every optimizer step itself
        for _ in range(2):
            optimizer.zero_grad()
            net(torch.tensor(x, dtype=torch.float32)).pow(2).mean().backward()
            optimizer.step()
    for history in (projection.history, batch.history, lost.history):
        page = Parsed(history._repr_html_())
        assert type(history).__name__ in history._repr_html_()
        assert {row[0]: row[1] for row in page.rows}["records"].startswith(f"{len(history)} (")
