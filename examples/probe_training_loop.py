"""Probing a training loop in 1D
=============================

Probe a plain PyTorch training loop on a 1D signal, shrink, retrain.

Writes ``before_after_1d.png`` (spectra before and after the shrink) and
``error_heatmap_1d.png`` (relative error per frequency over training) to the
folder given as the first argument (default: the current folder).
"""

import sys
from pathlib import Path

import torch

from spectral import Grid, SpectrumProbe, plot, shrink_
from spectral.models import mlp
from spectral.signals import default_1d

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
out.mkdir(parents=True, exist_ok=True)

signal = default_1d()
x, y = signal.sample(64, noise=0.2, seed=0)
x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)

net = mlp(1, width=64, depth=3, activation="tanh", seed=0)
probe = SpectrumProbe(Grid.uniform(256), every=50, target=signal, window="hann")


def train(steps, start):
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for step in range(start, start + steps):
        optimizer.zero_grad()
        loss = (net(x)[:, 0] - y).pow(2).mean()
        loss.backward()
        optimizer.step()
        probe.update(net, step)
    return start + steps, loss.item()


step, loss = train(3000, 0)
print(f"overfit: training MSE {loss:.4f} (noise variance 0.04)")
probe.snapshot(net, "before shrink")
shrink_(net, 0.2)
probe.snapshot(net, "after shrink")
step, loss = train(300, step)
probe.snapshot(net, "retrained")
print(f"retrained: training MSE {loss:.4f}")

cutoff = signal.max_frequency + 2
for label, hf in zip(probe.history.labels, probe.history.high_frequency_fraction(cutoff)):
    if label:
        print(f"{label:>14}: power above {cutoff} cycles = {hf:.2%} of non-DC power")

paths = [out / "before_after_1d.png", out / "error_heatmap_1d.png"]
plot.before_after(probe.history).savefig(paths[0], dpi=120)
plot.error_heatmap(probe.history).savefig(paths[1], dpi=120)
for path in paths:
    print(f"wrote {path}")
