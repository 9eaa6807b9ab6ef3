"""``filtering``: Xu et al.'s filtering method on the 8x8 digits, the low-frequency part converges first."""

from __future__ import annotations

import numpy as np
import torch

from .._datasets import digits, missing_data_message
from .._filter_probe import FilterProbe, plot_filter_history
from ._common import Outcome, Reproduction, Setting, network, train
from ._convergence import CONVERGED, first_step_below
from ._f_principle import XU, XU_SHORT

FILTERING = 'the "filtering" reproduction'
DATA_MISSING = missing_data_message(FILTERING)


def run(setting: Setting) -> Outcome:
    steps = (10 if setting.quick else 400) if setting.steps is None else setting.steps
    pixels, labels = digits(FILTERING)
    one_hot = np.eye(10)[labels]
    widths = [0.5, 1.0, 2.0]  # nearest-neighbour distance about 1.0, median pairwise distance about 3.1
    net = network([64, 200, 200, 10], torch.nn.ReLU, setting.seed).to(setting.device)
    classifier = torch.nn.Sequential(net, torch.nn.Softmax(dim=1))  # the probe sees probabilities, as published
    probe = FilterProbe(pixels, one_hot, widths, every=5)
    x = torch.as_tensor(pixels, dtype=torch.float32, device=setting.device)
    y = torch.as_tensor(labels, device=setting.device)
    train(net, x, y, steps=steps, lr=1e-3, every=5, loss=torch.nn.functional.cross_entropy,
          record=lambda step: probe.update(classifier, step), quiet=setting.quiet, description="filtering")
    history = probe.history
    low = first_step_below(history.low_error(), history.steps)
    high = first_step_below(history.high_error(), history.steps)
    earlier = [lo is not None and (hi is None or lo < hi) for lo, hi in zip(low, high)]
    with torch.no_grad():
        accuracy = float((net(x).argmax(1) == y).float().mean())
    fig, ax = plot_filter_history(history)
    ax.axhline(CONVERGED, color="grey", linewidth=0.8)
    ax.set_title("Filtering method on 8x8 digits: low (solid) vs high (dashed) frequency error")
    ours = {"step_low_error_below_0.1": low, "step_high_error_below_0.1": high,
            "final_low_error": history.low_error()[-1].tolist(),
            "final_high_error": history.high_error()[-1].tolist(), "training_accuracy": accuracy}
    setup = {"data": "scikit-learn 8x8 digits, 1797 images, pixels / 16", "widths": widths,
             "network": "64-200-200-10 ReLU, softmax outputs compared with one-hot labels",
             "optimizer": "Adam lr 1e-3, full batch, cross-entropy", "steps": steps, "record_every": 5,
             "seed": setting.seed}
    return Outcome(ours, setup, all(earlier), f"low below 0.1 at {low}, high at {high}", fig)


FILTERING_METHOD = Reproduction(
    name="filtering", paper=XU_SHORT, reference=XU,
    claim="on real data the low-frequency part of the fit converges before the high-frequency part",
    published=("With a Gaussian filter over the training inputs (MNIST, CIFAR10), the relative error of the "
               "low-frequency part converges faster than that of the high-frequency part, for every filter "
               "width tried (Figs. 3-4)."),
    published_numbers=None,
    tolerance="for every width, the low-frequency error falls below 0.1 before the high-frequency error does",
    run=run, needs_data=True)
