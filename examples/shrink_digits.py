"""Shrinking a network trained on real data: 8x8 digits
=====================================================

The filtering method (Xu et al.) splits a function known at the training
images into a low- and a high-frequency part with a Gaussian low-pass over the
images. Here a ReLU MLP memorises 256 digits, a fifth of them with a wrong
label, then every weight is multiplied by 0.2 and it retrains. One
:class:`~spectral.FilterProbe` follows the relative error of each part
against the (noisy) one-hot targets; a second one, with zero targets, measures
the network's own output (less its mean over the images), so its high-pass
share before and after the shrink is scale-free. Needs scikit-learn (``pip install "spectral-probes[data]"``).

Writes ``digits_filter_errors.png`` and ``digits_shrink_bands.png`` to the
folder given as the first argument (default: the current folder).
"""

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits

from spectral import FilterProbe, shrink_
from spectral.models import mlp

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
out.mkdir(parents=True, exist_ok=True)

# %%
# Data: 256 images, pixels in [0, 1], a fifth of the labels replaced by a random class.
rng = np.random.default_rng(0)
images, labels = load_digits(return_X_y=True)
chosen = rng.choice(len(images), size=256, replace=False)
pixels = images[chosen] / 16.0
noisy = labels[chosen].copy()
flipped = rng.random(256) < 0.2
noisy[flipped] = rng.integers(0, 10, size=int(flipped.sum()))
targets = np.eye(10)[noisy]
x, y = torch.tensor(pixels, dtype=torch.float32), torch.tensor(targets, dtype=torch.float32)

WIDTH = 1.5  # the Gaussian's standard deviation, in pixel units
fit = FilterProbe(pixels, targets, widths=WIDTH, every=25)
output = FilterProbe(pixels, np.zeros_like(targets), widths=WIDTH)  # residual = the output itself
net = mlp(64, width=64, depth=3, activation="relu", seed=0, out_features=10)


def centred(points):
    """The network's output less its mean over the images: the constant part is no frequency."""
    with torch.no_grad():
        values = net(torch.as_tensor(points, dtype=torch.float32))
    return values - values.mean(0)



def train(steps, start):
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for step in range(start, start + steps):
        optimizer.zero_grad()
        loss = (net(x) - y).pow(2).mean()
        loss.backward()
        optimizer.step()
        fit.update(net, step)
    return start + steps, loss.item()


# %%
# Overfit, shrink, retrain.
step, loss = train(600, 0)
print(f"overfit: training MSE {loss:.4f}")
fit.snapshot(net, "before shrink")
output.snapshot(centred, "before shrink")
shrink_(net, 0.2)
fit.snapshot(net, "after shrink")
output.snapshot(centred, "after shrink")
step, loss = train(300, step)
print(f"retrained: training MSE {loss:.4f}")

# %%
# The output's low and high bands before and after the shrink. A uniform
# scaling would lower both by the same factor and leave the share unchanged.
low, high = output.history.residual_low[:, 0], output.history.residual_high[:, 0]
share = high**2 / (low**2 + high**2)
for label, s, lo, hi in zip(output.history.labels, share, low, high):
    print(f"{label:>13}: output RMS low {lo:.4f}, high {hi:.4f}, high-pass share of power {s:.1%}")

fig, ax = plt.subplots(figsize=(6, 3.5))
positions = np.arange(2)
ax.bar(positions - 0.2, low, width=0.4, label="low-pass part")
ax.bar(positions + 0.2, high, width=0.4, label="high-pass part")
ax.set_xticks(positions, [f"{label}\nhigh share {s:.0%}" for label, s in zip(output.history.labels, share)])
ax.set_yscale("log")
ax.set_ylabel("RMS of the output's part")
ax.set_title(f"Output at the training images, filter width {WIDTH}")
ax.legend()
fig.tight_layout()
fig.savefig(out / "digits_shrink_bands.png", dpi=110)

# %%
# The errors of the two parts against the targets over training; the shrink
# sets both back near 1 (an output near 0), and retraining refits the
# low-frequency part first.
history = fit.history
shrunk = history.steps[history.index("after shrink")]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(history.steps, history.low_error()[:, 0], label="low-frequency error")
ax.plot(history.steps, history.high_error()[:, 0], linestyle="--", label="high-frequency error")
ax.axvline(shrunk, color="grey", linewidth=1)
ax.set_xlabel("step")
ax.set_ylabel("relative error")
ax.set_ylim(bottom=0)
ax.legend()
fig.tight_layout()
fig.savefig(out / "digits_filter_errors.png", dpi=110)
for name in ("digits_shrink_bands.png", "digits_filter_errors.png"):
    print(f"wrote {out / name}")
