"""Where a real-data case overfits: phase 1 of the claim check over label noise x training size x width.

Usage::

    python benchmarks/overfitting_map.py                       # the committed digits map (slow: tens of minutes)
    python benchmarks/overfitting_map.py --signal mnist1d --noise 0.4 --sizes 256 --widths 64
    python benchmarks/overfitting_map.py --render-only         # redraw docs/ from the saved JSON

Each cell runs phase 1 only (``spectral.claim._check._overfit``: train every
seed until its training MSE is below the threshold, or the step cap) with
the given ``seeds``, and records the median test gap (test MSE at the stop /
its phase-1 minimum) and the fraction of seeds that overfit: reached the
threshold *and* test gap >= ``training.min_test_gap`` (the check's own gate,
unchanged). A case's generalisation verdicts are testable when that fraction
is at least ``training.min_overfit_fraction`` (0.75), so the cases of the
real-data examples are chosen from cells at or above it. Cells are saved to
the JSON as they finish (a rerun skips those already there); the table
(``.md``) and the heat map (``.png``) are drawn from the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spectral.claim._check import Case, _overfit
from spectral.claim._config import load_config

DOCS = Path(__file__).resolve().parent.parent / "docs"


def measure_cell(signal: str, noise: float, size: int, width: int, seeds: int) -> dict[str, Any]:
    """Phase 1 of one ``signal`` case (relu, bias, Adam) at label noise ``noise``, ``size`` images, ``width``."""
    config = load_config(None, {"seeds": seeds, "training": {"width": width}, "sweep": {"case": ""},
                                "signals": {signal: {"label_noise": noise}},
                                "cases": [{"signal": signal, "activation": "relu", "bias": True, "train_points": size}]})
    started = time.perf_counter()
    summary = _overfit(Case(config.cases[0], config, list(range(seeds))), lambda: None).summary
    gap = np.array(summary["test_gap"], dtype=float)
    return {"signal": signal, "label_noise": noise, "train_points": size, "width": width, "seeds": seeds,
            "reached": int(np.sum(summary["reached"])), "overfit": summary["seeds_overfitting"],
            "overfit_fraction": summary["seeds_overfitting"] / seeds, "median_test_gap": float(np.nanmedian(gap)),
            "median_stop": float(np.median(summary["steps"])), "max_steps": config.training.overfit_max_steps,
            "min_test_gap": summary["min_test_gap"], "seconds": time.perf_counter() - started}


def render(cells: list[dict[str, Any]], stem: Path) -> None:
    """The table ``stem.md`` and the heat map ``stem.png`` (one panel per width) of the measured cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = sorted(cells, key=lambda c: (c["width"], c["label_noise"], c["train_points"]))
    rows = [(f"| {c['width']} | {c['label_noise']:g} | {c['train_points']} | {c['overfit']}/{c['seeds']} "
             f"({c['overfit_fraction']:.2f}) | {c['reached']}/{c['seeds']} | {c['median_test_gap']:.2f} | "
             f"{c['median_stop']:.0f} / {c['max_steps']} |") for c in cells]
    header = ("| width | label noise | training images | seeds overfit (fraction) | reached threshold | "
              "median test gap | median stop / cap |")
    table = [header, "|---|---|---|---|---|---|---|", *rows]
    signal, seeds, gate = cells[0]["signal"], cells[0]["seeds"], cells[0]["min_test_gap"]
    name = {"digits": "the 8x8 digits", "mnist1d": "MNIST-1D"}.get(signal, signal)
    command = "python benchmarks/overfitting_map.py" + ("" if signal == "digits" else f" --signal {signal}")
    paragraph = (f"Phase 1 of the claim check (relu, bias, Adam, depth 3, the default training table), {seeds} seeds "
                 "per cell. A seed overfits when it reached the threshold (training MSE below a tenth of the label "
                 "noise's variance) and its test gap (test MSE at the stop / its phase-1 minimum) is at least "
                 f"{gate:g}: the check's own gate. A case's generalisation verdicts are testable when at least 0.75 "
                 f"of its seeds overfit. Regenerate with `{command}` (`--render-only` redraws this page and "
                 f"`{stem.name}.png` from `{stem.name}.json`).")
    # orphan: the page is reached from the user guide's real-data page, not from a table of contents
    intro = ["---", "orphan: true", "---", "", f"# Where {name} overfit", "", paragraph, "", f"![fraction of seeds overfit]({stem.name}.png)", ""]
    stem.with_suffix(".md").write_text("\n".join(intro + table) + "\n")
    widths = sorted({c["width"] for c in cells})
    noises, sizes = sorted({c["label_noise"] for c in cells}), sorted({c["train_points"] for c in cells})
    fig, axes = plt.subplots(1, len(widths), figsize=(4.6 * len(widths), 3.8), squeeze=False)
    for ax, width in zip(axes[0], widths):
        fraction = np.full((len(noises), len(sizes)), np.nan)
        for c in (c for c in cells if c["width"] == width):
            row, column = noises.index(c["label_noise"]), sizes.index(c["train_points"])
            fraction[row, column] = c["overfit_fraction"]
            ax.text(column, row, f"{c['overfit_fraction']:.2f}\ngap {c['median_test_gap']:.2f}", ha="center",
                    va="center", fontsize=8, color="black" if c["overfit_fraction"] > 0.5 else "white")
        image = ax.imshow(fraction, vmin=0, vmax=1, cmap="viridis", origin="lower", aspect="auto")
        ax.set_xticks(range(len(sizes)), [str(s) for s in sizes])
        ax.set_yticks(range(len(noises)), [f"{n:g}" for n in noises])
        ax.set_xlabel("training examples")
        ax.set_ylabel("label noise")
        ax.set_title(f"width {width}")
    fig.suptitle(f"{name}: fraction of seeds that overfit (median test gap); blank: not run")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
    fig.savefig(stem.with_suffix(".png"), dpi=110, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--signal", default="digits")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.2, 0.4, 0.6])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--out", type=Path, default=None, help="stem of the .json/.md/.png (default docs/overfitting-map[-signal])")
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    stem = args.out or DOCS / ("overfitting-map" if args.signal == "digits" else f"overfitting-map-{args.signal}")
    saved = stem.with_suffix(".json")
    cells = json.loads(saved.read_text()) if saved.exists() else []
    if not args.render_only:
        done = {(c["signal"], c["label_noise"], c["train_points"], c["width"], c["seeds"]) for c in cells}
        for width in args.widths:
            for noise in args.noise:
                for size in args.sizes:
                    if (args.signal, noise, size, width, args.seeds) in done:
                        continue
                    cells.append(measure_cell(args.signal, noise, size, width, args.seeds))
                    c = cells[-1]
                    print(f"width {width} noise {noise:g} n {size}: overfit {c['overfit']}/{c['seeds']} reached "
                          f"{c['reached']} median gap {c['median_test_gap']:.2f} stop {c['median_stop']:.0f} "
                          f"{c['seconds']:.0f} s", flush=True)
                    saved.write_text(json.dumps(cells, indent=1) + "\n")
    render(cells, stem)
    print(f"wrote {stem.with_suffix('.md')} and {stem.with_suffix('.png')}")


if __name__ == "__main__":
    main()
