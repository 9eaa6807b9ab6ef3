"""What each probe adds to a real training step, by tracking interval: the table Cockpit publishes.

Usage::

    python benchmarks/run.py --overhead-table [--quick]

Two workloads on scikit-learn's bundled 8x8 digits (1797 images of 64
pixels, the ``data`` extra): an MLP (64-128-128-10) and a small CNN (two 3x3
convolutions, 16 and 32 channels, then a linear layer), each trained by Adam
on minibatches of 128 with the mean squared error to one-hot labels. A block
is 64 consecutive training steps; a probe with interval ``every`` records
``64 / every`` of them. Overhead = wall time of a block with the probe /
wall time of the block without it run just before, the median over rounds
(the pairs interleaved round by round, so a busy machine slows both sides of
a ratio alike). The probes:

- ``SpectrumProbe``: 32 x 32 grid on the plane of the data's two principal
  directions through the mean image (+-2 standard deviations), output 0.
- ``BatchSpectrumProbe``: the step's own minibatch outputs (output 0) at the
  minibatch projected on those two directions, 8 x 8 wavevectors.
- ``FilterProbe``: every one of the 1797 images, widths 0.5 and 1.0.
- ``ProjectionProbe``: every image, the first principal direction, 9 frequencies.
- ``LostUpdateProbe``: float16, bfloat16 and float32 on every parameter, by the optimiser's hooks.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from spectral import BatchSpectrumProbe, FilterProbe, Grid, ProjectionProbe, SpectrumProbe
from spectral._datasets import digits
from spectral.precision import LostUpdateProbe

INTERVALS = (1, 4, 16, 64)
BLOCK_STEPS = 64
BATCH = 128
PROBES = ("SpectrumProbe", "BatchSpectrumProbe", "FilterProbe", "ProjectionProbe", "LostUpdateProbe")
#: Cockpit's published overhead against the tracking interval (Schneider et al. 2021, NeurIPS, Fig. 5).
COCKPIT = {"Cockpit economy": {1: "1.5", 4: "1.2", 16: "1.0", 64: "1.0"},
           "Cockpit full": {1: "21", 4: "-", 16: "2.3", 64: "-"}}


class Images(nn.Module):
    """A CNN that takes flattened ``(N, 64)`` pixels, as the probes hand them."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1),
                                    nn.ReLU(), nn.Flatten(), nn.Linear(32 * 64, 10))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.layers(pixels.reshape(-1, 1, 8, 8))


class PlaneSlice(nn.Module):
    """Output 0 of ``model`` on the plane ``origin + (a - 1/2) span u + (b - 1/2) span v``, ``(a, b)`` in ``[0, 1)^2``."""

    def __init__(self, model: nn.Module, origin: torch.Tensor, directions: torch.Tensor, span: float) -> None:
        super().__init__()
        self.model, self.span = model, span
        self.register_buffer("origin", origin)
        self.register_buffer("directions", directions)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.model(self.origin + ((points - 0.5) * self.span) @ self.directions)[:, 0]


def _models() -> dict[str, Callable[[], nn.Module]]:
    def perceptron() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(64, 128), nn.Tanh(), nn.Linear(128, 128), nn.Tanh(), nn.Linear(128, 10))

    def convolutional() -> nn.Module:
        torch.manual_seed(0)
        return Images()

    return {"MLP": perceptron, "CNN": convolutional}


class Workload:
    """A model, its optimiser, the digits and the minibatch order; ``block(probe)`` runs 64 steps."""

    def __init__(self, build: Callable[[], nn.Module]) -> None:
        pixels, labels = digits("the overhead table")
        self.x = torch.as_tensor(pixels, dtype=torch.float32)
        self.y = torch.nn.functional.one_hot(torch.as_tensor(labels), 10).to(torch.float32)
        self.model = build()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        centred = self.x - self.x.mean(0)
        _, scales, directions = torch.linalg.svd(centred, full_matrices=False)
        self.directions, self.origin = directions[:2].contiguous(), self.x.mean(0)
        self.span = float(4 * scales[0] / np.sqrt(len(self.x)))
        projected = centred @ self.directions.T
        low, high = projected.min(0).values, projected.max(0).values
        self.unit = ((projected - low) / (high - low) * 0.999).contiguous()  # in [0, 1)^2 for BatchSpectrumProbe
        self.order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(0))
        self.step = 0

    def probe(self, name: str, every: int) -> Any:
        if name == "SpectrumProbe":
            return SpectrumProbe(Grid.uniform((32, 32)), every=every)
        if name == "BatchSpectrumProbe":
            return BatchSpectrumProbe([(i, j) for i in range(8) for j in range(8)], every=every)
        if name == "FilterProbe":
            return FilterProbe(inputs=self.x, target=self.y, widths=[0.5, 1.0], every=every)
        if name == "ProjectionProbe":
            return ProjectionProbe(inputs=self.x, target=self.y, freqs=np.linspace(0.0, 2.0, 9), every=every)
        return LostUpdateProbe(self.model, self.optimizer, every=every)

    def block(self, probe: Any = None) -> float:
        """Wall seconds of 64 training steps, ``probe`` recording at its interval."""
        sliced = PlaneSlice(self.model, self.origin, self.directions, self.span)
        started = time.perf_counter()
        for step in range(BLOCK_STEPS):  # a fresh probe: steps from 0, so it records 64 / every of them
            start = (self.step * BATCH) % (len(self.x) - BATCH)
            index = self.order[start:start + BATCH]
            outputs = self.model(self.x[index])
            loss = (outputs - self.y[index]).pow(2).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()  # a LostUpdateProbe records here, through the optimiser's hooks
            if isinstance(probe, BatchSpectrumProbe):
                probe.update(self.unit[index], outputs[:, 0], self.y[index, 0], step)
            elif isinstance(probe, SpectrumProbe):
                probe.update(sliced, step)
            elif isinstance(probe, (FilterProbe, ProjectionProbe)):
                probe.update(self.model, step)
            self.step += 1
        seconds = time.perf_counter() - started
        if isinstance(probe, LostUpdateProbe):
            probe.remove()
        return seconds


def overhead_table(rounds: int) -> dict[str, Any]:
    """Per workload, probe and interval: the median-of-interleaved-blocks overhead."""
    table: dict[str, Any] = {}
    for workload_name, build in _models().items():
        workload = Workload(build)
        workload.block()  # warm-up
        base: list[float] = []
        ratios: dict[tuple[str, int], list[float]] = {(p, e): [] for p in PROBES for e in INTERVALS}
        for _ in range(rounds):
            for (name, every), values in ratios.items():
                base.append(workload.block())
                probe = workload.probe(name, every)
                values.append(workload.block(probe) / base[-1])  # against the block just before: the same load
        table[workload_name] = {"step_ms": statistics.median(base) / BLOCK_STEPS * 1e3,
                                **{name: {every: statistics.median(ratios[name, every]) for every in INTERVALS}
                                   for name in PROBES}}
    return table


def markdown(table: dict[str, Any]) -> str:
    """The table as Markdown, Cockpit's published figures beneath."""
    header = "| probe | workload | " + " | ".join(f"every {e}" for e in INTERVALS) + " |"
    lines = [header, "|" + "---|" * (len(INTERVALS) + 2)]
    for name in PROBES:
        for workload, figures in table.items():
            cells = " | ".join(f"{figures[name][e]:.2f}x" for e in INTERVALS)
            lines.append(f"| `{name}` | {workload} ({figures['step_ms']:.2f} ms/step) | {cells} |")
    for name, figures in COCKPIT.items():
        lines.append(f"| {name} (published) | their benchmarks | " + " | ".join(
            f"{figures[e]}x" if figures[e] != "-" else "-" for e in INTERVALS) + " |")
    return "\n".join(lines)
