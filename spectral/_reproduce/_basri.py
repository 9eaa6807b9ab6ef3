"""``basri``: the steps a two-layer ReLU network with bias takes to learn ``cos(k theta)`` grow like ``k^2``."""

from __future__ import annotations

import numpy as np
import torch

from .._plotting import figure_axes
from .._progress import Progress
from ._common import Outcome, Reproduction, Setting

BASRI = ("Basri, Jacobs, Kasten, Kritchman, \"The Convergence Rate of Neural Networks for Learned Functions of "
         "Different Frequencies\", NeurIPS 2019")
#: Frequencies fitted. From k = 4 on the infinite-width kernel's eigenvalues are near c / k^2 (lambda_k k^2
#: is 0.080 at k = 4, 0.074 at k = 8, tending to 1 / (sqrt(2) pi^2) = 0.072: the kernel's own slope over
#: 4..8 is 2.14), while k = 2's is 7.4 times k = 4's, the low-frequency mismatch the paper notes.
FREQUENCIES = (4, 5, 6, 7, 8)
#: Amplitude of the target harmonics. The weights travel in proportion to it, so 0.1 keeps a width-1024
#: network in the kernel regime the theory describes, as amplitude 1 would a 100 times wider one: at
#: amplitude 1 the same network learned 7 of 25 fits (k <= 6) in 3000 steps, the theory predicting 75-330.
AMPLITUDE = 0.1
#: A harmonic is learned once the training loss over the target's mean square falls below this.
THRESHOLD = 0.05
#: Gradient-descent step: below 2 / 0.40, the largest eigenvalue (k = 0) of the infinite-width kernel.
LEARNING_RATE = 4.0
SLOPE_RANGE = (1.6, 2.4)


def loglog_slope(frequencies: np.ndarray, steps: np.ndarray) -> float:
    """Least-squares slope of ``log(steps)`` on ``log(frequencies)``: the exponent ``p`` of ``steps ~ k^p``.

    Examples
    --------
    >>> k = np.array([4, 5, 6, 7, 8])
    >>> round(loglog_slope(k, 7 * k**2), 12)
    2.0
    """
    return float(np.polyfit(np.log(np.asarray(frequencies, dtype=np.float64)),
                            np.log(np.asarray(steps, dtype=np.float64)), 1)[0])


def bootstrap_slope(frequencies: np.ndarray, steps: np.ndarray, *, resamples: int = 2000, confidence: float = 0.95,
                    seed: int = 0) -> list[float]:
    """Percentile bootstrap interval of :func:`loglog_slope` over seeds.

    Parameters
    ----------
    frequencies : array_like, shape (K,)
    steps : array_like, shape (S, K)
        Steps to learn each frequency, one row per seed; each resample draws
        ``S`` rows with replacement and fits the slope of their mean.
    resamples, confidence, seed
        Number of resamples, two-sided level, seed of the resampling.

    Returns
    -------
    list of two floats
        ``[low, high]``.

    Examples
    --------
    >>> k = np.array([4, 6, 8, 10, 12])
    >>> low, high = bootstrap_slope(k, np.stack([3 * k**2, 5 * k**2]))
    >>> round(low, 9), round(high, 9)
    (2.0, 2.0)
    """
    steps = np.asarray(steps, dtype=np.float64)
    rows = np.random.default_rng(seed).integers(0, steps.shape[0], size=(resamples, steps.shape[0]))
    slopes = [loglog_slope(frequencies, steps[chosen].mean(0)) for chosen in rows]
    tail = 100 * (1 - confidence) / 2
    return [float(np.percentile(slopes, tail)), float(np.percentile(slopes, 100 - tail))]


def kernel_eigenvalues(frequencies: np.ndarray, points: int = 4096) -> np.ndarray:
    """Eigenvalues at ``frequencies`` of the infinite-width kernel that gradient descent on ``W, b`` follows.

    With ``w ~ N(0, I_2)``, ``b ~ N(0, 1)`` and inputs ``x = (cos theta, sin theta)`` the kernel is
    ``K(psi) = (1 + cos psi) (pi - arccos((1 + cos psi) / 2)) / (2 pi)`` for the angle ``psi`` between two
    inputs; on uniformly spaced points its eigenvalue for ``cos(k theta)`` (over the mean square loss) is its
    ``k``-th Fourier coefficient, computed here on ``points`` angles.

    Examples
    --------
    >>> k = np.arange(-2048, 2048)
    >>> round(float(kernel_eigenvalues(k).sum()), 9)  # sum over every frequency: K(0) = 1
    1.0
    """
    psi = 2 * np.pi * np.arange(points) / points
    kernel = (1 + np.cos(psi)) * (np.pi - np.arccos(np.clip((1 + np.cos(psi)) / 2, -1, 1))) / (2 * np.pi)
    return np.fft.fft(kernel).real[np.asarray(frequencies) % points] / points


def kernel_steps(frequencies: np.ndarray) -> np.ndarray:
    """Steps the infinite-width kernel predicts: the loss ratio ``(1 - eta lambda_k)^(2t)`` reaches ``THRESHOLD``."""
    return np.log(THRESHOLD) / (2 * np.log1p(-LEARNING_RATE * kernel_eigenvalues(frequencies)))


class _TwoLayerReLUs(torch.nn.Module):
    """``B`` independent networks ``f(x) = sum_r a_r relu(w_r . x + b_r) / sqrt(m)``; ``W`` and ``b`` trained.

    Neurons come in pairs with the same ``(w, b)`` and opposite ``a = +-1``, so every network starts at
    exactly zero (the target is the whole residual), and ``a`` stays fixed as in the analysed model.
    """

    def __init__(self, width: int, seeds: list[int]) -> None:
        super().__init__()
        weights, biases = [], []
        for seed in seeds:
            generator = torch.Generator().manual_seed(seed)
            w, b = torch.randn(width // 2, 2, generator=generator), torch.randn(width // 2, generator=generator)
            weights.append(torch.cat([w, w]))
            biases.append(torch.cat([b, b]))
        self.weight = torch.nn.Parameter(torch.stack(weights))
        self.bias = torch.nn.Parameter(torch.stack(biases))
        half = torch.ones(width // 2)
        self.register_buffer("output", torch.cat([half, -half]) / np.sqrt(width))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """``points (n, 2)`` -> ``(B, n)``."""
        hidden = torch.einsum("nd,bmd->bnm", points, self.weight) + self.bias[:, None, :]
        return torch.relu(hidden) @ self.output


def steps_to_learn(frequencies: tuple[int, ...], seeds: list[int], *, points: int, width: int, max_steps: int,
                   device: torch.device, quiet: bool) -> np.ndarray:
    """Gradient-descent steps until each ``cos(k theta)`` is learned: ``(S, K)``, NaN where never within ``max_steps``."""
    theta = 2 * np.pi * np.arange(points) / points
    x = torch.as_tensor(np.stack([np.cos(theta), np.sin(theta)], 1), dtype=torch.float32, device=device)
    y = torch.as_tensor(np.stack([AMPLITUDE * np.cos(k * theta) for _ in seeds for k in frequencies]),
                        dtype=torch.float32, device=device)
    net = _TwoLayerReLUs(width, [seed for seed in seeds for _ in frequencies]).to(device)
    mean_square = (y**2).mean(1)
    learned = torch.full((len(y),), float("nan"), device=device)
    progress = Progress(max_steps + 1, "basri", disable=quiet)
    try:
        for step in range(max_steps + 1):
            progress()
            net.zero_grad()
            loss = ((net(x) - y) ** 2).mean(1)  # one network per row: summing keeps each gradient its own
            learned = torch.where(torch.isnan(learned) & (loss.detach() / mean_square < THRESHOLD),
                                  torch.tensor(float(step), device=device), learned)
            if not torch.isnan(learned).any() or step == max_steps:
                break
            (loss.sum() / 2).backward()
            with torch.no_grad():
                for parameter in net.parameters():
                    parameter -= LEARNING_RATE * parameter.grad
    finally:
        progress.close()
    return learned.cpu().numpy().reshape(len(seeds), len(frequencies)).astype(np.float64)


def run(setting: Setting) -> Outcome:
    seeds = [setting.seed + i for i in range(2 if setting.quick else 5)]
    width, points = (256, 32) if setting.quick else (1024, 64)
    max_steps = (50 if setting.quick else 1500) if setting.steps is None else setting.steps
    frequencies = np.array(FREQUENCIES)
    steps = steps_to_learn(FREQUENCIES, seeds, points=points, width=width, max_steps=max_steps,
                           device=setting.device, quiet=setting.quiet)
    complete = not np.isnan(steps).any()
    slope = loglog_slope(frequencies, steps.mean(0)) if complete else float("nan")
    interval = bootstrap_slope(frequencies, steps, seed=setting.seed) if complete else [float("nan")] * 2
    agrees = bool(complete and SLOPE_RANGE[0] <= slope <= SLOPE_RANGE[1])
    predicted = kernel_steps(frequencies)
    fig, ax = figure_axes(None, figsize=(5, 4))
    for row in steps:
        ax.loglog(frequencies, row, "o", color="C0", alpha=0.4)
    if complete:
        mean = steps.mean(0)
        ax.loglog(frequencies, mean[0] * (frequencies / frequencies[0]) ** slope, color="C0",
                  label=f"fit: slope {slope:.2f}")
        ax.loglog(frequencies, mean[0] * (frequencies / frequencies[0]) ** 2.0, "--", color="grey", label="k^2")
        ax.loglog(frequencies, predicted, ":", color="C1", label="infinite-width kernel")
        ax.legend()
    ax.set_xlabel("frequency k")
    ax.set_ylabel("gradient-descent steps to learn cos(k theta)")
    ax.set_title("Basri et al.: steps to learn a harmonic on the circle")
    ours = {"frequencies": frequencies.tolist(), "steps_mean_over_seeds": steps.mean(0).tolist(),
            "steps_infinite_width_kernel": predicted.tolist(),
            "loglog_slope_kernel": loglog_slope(frequencies, predicted),
            "steps_per_seed": [[None if np.isnan(s) else int(s) for s in row] for row in steps],
            "loglog_slope": slope, "slope_bootstrap_95": interval}
    setup = {"inputs": f"{points} uniformly spaced points on the unit circle", "targets": f"{AMPLITUDE} cos(k theta), one network each",
             "network": f"2-{width}-1 ReLU with bias; second layer fixed at +-1/sqrt({width}), neurons in pairs "
                        "so f = 0 at initialisation; w, b ~ N(0, 1)",
             "optimizer": f"full-batch gradient descent, step {LEARNING_RATE}, loss mean square / 2",
             "learned_when": f"loss / mean square of the target < {THRESHOLD}", "max_steps": max_steps,
             "seeds": seeds}
    measured = (f"slope {slope:.3g}, bootstrap 95% [{interval[0]:.3g}, {interval[1]:.3g}] over {len(seeds)} seeds "
                f"(infinite-width kernel: {ours['loglog_slope_kernel']:.3g})" if complete else f"{int(np.isnan(steps).sum())} of {steps.size} fits unlearned in {max_steps} steps")
    return Outcome(ours, setup, agrees, measured, fig)


BASRI_LAW = Reproduction(
    name="basri", paper="Basri et al., NeurIPS 2019", reference=BASRI,
    claim="the steps a two-layer ReLU network with bias takes to learn a harmonic of frequency k grow like k^2",
    published=("For a two-layer ReLU network with bias trained by gradient descent on data uniform on the circle, "
               "the kernel's eigenvalue for frequency k decays like 1/k^2, so the time to learn cos(k theta) "
               "grows like k^2; their experiments with shallow and deep networks match the prediction "
               "(Sec. 5, Figs. 5-6), away from the lowest frequencies."),
    published_numbers={"loglog_slope_of_steps_against_frequency": 2.0},
    tolerance=(f"every fit learned, and the log-log slope of steps against k over {len(FREQUENCIES)} frequencies "
               f"(mean over seeds) lies in [{SLOPE_RANGE[0]}, {SLOPE_RANGE[1]}]"),
    run=run)
