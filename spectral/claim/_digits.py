"""The claim on real data: per-seed splits of the 8x8 digits and the filtering-method measure.

Each seed draws its own training and validation images (with its own label
noise) from a pool; the test set is fixed and clean. The networks regress
one-hot targets with the mean squared error, as in the filtering method of
Xu et al.; test loss (that MSE) and test error rate (1 - accuracy) are the
generalisation metrics. The spectral numbers split every function known at
a seed's training inputs into a Gaussian low-pass part and the rest
(:func:`spectral.low_pass`, the function :class:`spectral.FilterProbe` and
:func:`spectral.filter_error` use), at two filter widths.

The labelled split (:func:`split_labelled`), the measure and the kind
(:class:`FilterKind`) serve any such data set; :class:`DigitsKind` adds the
digits, and :mod:`spectral.claim._mnist1d` MNIST-1D.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from .._datasets import digits
from .._filter_probe import FilterHistory, FilterProbe, low_pass, plot_filter_history
from ..ensemble import MLPEnsemble
from ._arms import Verdicts, generalisation_verdicts, spectral_verdicts
from ._config import DigitsConfig
from ._format import number
from ._kinds import CaseKind
from ._training import evaluate64, repeat_members

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ._check import Case

#: Seed of the one permutation that sets the test images aside (the same for every seed and run).
TEST_SPLIT_SEED = 0


@dataclass(frozen=True)
class LabelledSplit:
    """Per-seed training and validation data (noisy labels) and the shared clean test set, float32."""

    x: torch.Tensor  # (seeds, n, features)
    y: torch.Tensor  # (seeds, n, classes) one-hot, noisy
    x_validation: torch.Tensor  # (seeds, v, features)
    y_validation: torch.Tensor  # (seeds, v, classes) one-hot, noisy
    x_test: torch.Tensor  # (T, features)
    labels_test: torch.Tensor  # (T,) int64, clean


def split_labelled(inputs: np.ndarray, labels: np.ndarray, test: np.ndarray, pool: np.ndarray, spec: DigitsConfig,
                   train_points: int, seeds: list[int], device: torch.device, classes: int = 10) -> LabelledSplit:
    """The examples ``test`` (fixed, clean) and, per seed, ``train_points + spec.validation_points`` of ``pool``.

    A seed's draw depends on that seed only: its examples are the first of
    its own permutation of the pool (indices into ``inputs``), and a
    ``spec.label_noise`` fraction of their labels is replaced by a class
    drawn uniformly from ``classes`` (possibly the true one).
    """
    drawn = train_points + spec.validation_points
    chosen_inputs, targets = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        chosen = rng.permutation(pool)[:drawn]
        noisy = labels[chosen].copy()
        flip = rng.random(drawn) < spec.label_noise
        noisy[flip] = rng.integers(0, classes, int(flip.sum()))
        chosen_inputs.append(inputs[chosen])
        targets.append(np.eye(classes)[noisy])

    def tensor(values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(values, dtype=torch.float32, device=device)

    x, y = tensor(np.stack(chosen_inputs)), tensor(np.stack(targets))
    return LabelledSplit(x[:, :train_points], y[:, :train_points], x[:, train_points:], y[:, train_points:],
                         tensor(inputs[test]), torch.as_tensor(labels[test], device=device))


def split_digits(spec: DigitsConfig, train_points: int, seeds: list[int], device: torch.device) -> LabelledSplit:
    """The test images (a fixed permutation's first ``spec.test_points``) and, per seed, others with noisy labels."""
    pixels, labels = digits("the digits case of the claim check")
    order = np.random.default_rng(TEST_SPLIT_SEED).permutation(len(labels))
    return split_labelled(pixels, labels, order[:spec.test_points], order[spec.test_points:], spec, train_points,
                          seeds, device)


class FilterMeasure:
    """Test loss, test error rate and filtering-method numbers of every member, in one batched pass.

    Member ``e`` of an ensemble belongs to seed ``e % seeds`` (the arms are
    stacked arm-major by :meth:`MLPEnsemble.concatenate`). For filter width
    ``delta`` and the normalised Gaussian kernel ``K`` over that seed's
    training inputs, a function ``h`` known there splits into ``K h`` (low)
    and ``h - K h`` (high). Per width (``primary``, ``alternate``):

    * ``hf_error``: ``|y_high - h_high| / |y_high|``, the filtering method's
      relative error of the high-frequency part against the training targets;
    * ``low_power``, ``high_power``: ``|K h_c|^2`` and ``|h - K h|^2`` with
      ``h_c`` the function minus its mean (the kernel keeps constants, so
      the mean is all low-pass), and ``hf_fraction`` = high / (low + high).

    The two parts are complementary as functions, ``K h_c + (h - K h) = h_c``,
    but ``K`` is not an orthogonal projection (a row-normalised Gaussian is
    neither idempotent nor symmetric), so their powers do not add up to the
    total: ``low_power + high_power = |h_c|^2 - 2 <K h_c, h - K h>``. The
    ``hf_fraction`` is therefore the high part's share of the sum of the two
    parts' powers, a number in ``[0, 1]`` that grows with the high part, not
    the fraction of ``|h_c|^2`` above a frequency (which the Gaussian does not
    define). Report it as "high-pass share", never as a fraction of the power.
    """

    def __init__(self, data: LabelledSplit, widths: dict[str, float]) -> None:
        self.data = data
        self.clean_test = torch.nn.functional.one_hot(data.labels_test.cpu(), data.y.shape[-1]).double()
        x = data.x.double().cpu()
        identity = torch.eye(x.shape[1], dtype=torch.float64)
        targets = data.y.double().cpu()
        # low_pass of the identity is the row-normalised kernel itself: (seeds, n, n) per width; the targets'
        # high-pass part does not change during training, so it is split once.
        self.kernels = {name: torch.stack([low_pass(points, identity, width)[0] for points in x])
                        for name, width in widths.items()}
        self.target_high = {name: targets - kernel @ targets for name, kernel in self.kernels.items()}

    def test(self, ensemble: MLPEnsemble) -> dict[str, np.ndarray]:
        """Test loss and test error rate alone, of any members (what a comparison at matched fit reads)."""
        test = evaluate64(ensemble, self.data.x_test)
        finite = torch.isfinite(test).flatten(1).all(1).numpy()
        return {name: np.where(finite, values, np.nan) for name, values in self._test_metrics(test).items()}

    def _test_metrics(self, test: torch.Tensor) -> dict[str, np.ndarray]:
        wrong = test.argmax(dim=-1) != self.data.labels_test.cpu()
        return {"test_mse": (test - self.clean_test).pow(2).flatten(1).mean(1).numpy(),
                "test_error": wrong.double().mean(1).numpy()}

    def __call__(self, ensemble: MLPEnsemble) -> dict[str, np.ndarray]:
        seeds = self.data.x.shape[0]
        groups = ensemble.members // seeds
        test, train = evaluate64(ensemble, self.data.x_test, repeat_members(self.data.x, groups))
        finite = (torch.isfinite(test).flatten(1).all(1) & torch.isfinite(train).flatten(1).all(1)).numpy()
        test, train = torch.nan_to_num(test), torch.nan_to_num(train)
        result = {**self._test_metrics(test), "rms": test.pow(2).flatten(1).mean(1).sqrt().numpy()}
        train = train.reshape(groups, seeds, *train.shape[1:])  # member e is seed e % seeds: kernels broadcast
        centred = train - train.mean(dim=2, keepdim=True)
        for name, kernel in self.kernels.items():
            high = train - kernel @ train
            low = kernel @ centred
            low_power, high_power = (part.pow(2).flatten(2).sum(2).flatten().numpy() for part in (low, high))
            total = low_power + high_power
            error = (self.target_high[name] - high).flatten(2).norm(dim=2) / self.target_high[name].flatten(1).norm(dim=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                result[f"hf_fraction:{name}"] = np.where(total > 0, high_power / np.where(total > 0, total, 1), np.nan)
            result[f"hf_error:{name}"] = error.flatten().numpy()
            result[f"low_power:{name}"], result[f"high_power:{name}"] = low_power, high_power
        return {name: np.where(finite, value, np.nan) for name, value in result.items()}


class FilterKind(CaseKind):
    """Cases on a labelled data set: label noise, one-hot MSE, the filtering method (subclasses give the data).

    The shrink verdicts use the high-pass share and the per-band retention of
    the filtering method's split (scale-free: a uniform scaling of the
    function changes neither). Its HF error ``|y_high - h_high| / |y_high|``
    is not scale-free (a shrunk net's tiny output reads about 1 whatever its
    shape, the homogeneous net's too), so it compares retrained nets only,
    which fit the same targets: "claim < reference" reads "the control fits the
    targets' high-frequency part better than the slingshot (or a fresh start)".
    Test error rate is judged beside test loss.
    """

    choice = "filter width"
    #: The data set and its examples, as the report's sentence names them.
    source, examples = "", "examples"
    measurement_numbers = ("train_points", "test_points", "label_noise")
    measurement_tables = ("filter_widths",)
    curve_names = ("test_mse", "test_error", "hf_error:primary", "hf_fraction:primary", "train_mse", "validation_mse")
    history_type = FilterHistory
    verdicts: ClassVar[Verdicts] = {**spectral_verdicts(),
                "slingshot_fits_high_frequencies_less": ("hf_error", "control", "slingshot"),
                "fresh_fits_high_frequencies_less": ("hf_error", "control", "fresh"),
                **generalisation_verdicts(),
                **generalisation_verdicts("test_error", ("end",), "_on_test_error")}

    def split(self, case: Case) -> LabelledSplit:
        """The case's per-seed data and its test set."""
        raise NotImplementedError

    def setup(self, case: Case) -> None:
        data = self.split(case)
        case.in_features, case.out_features = data.x.shape[2], data.y.shape[2]
        case.x, case.y, case.x_validation, case.y_validation = data.x, data.y, data.x_validation, data.y_validation
        case.widths = {"primary": case.spec.filter_width, "alternate": case.spec.alternate_filter_width}
        case.measure = FilterMeasure(data, case.widths)
        case.probe = FilterProbe(data.x[0], data.y[0], list(case.widths.values()))

    def measurement(self, case: Case) -> dict[str, Any]:
        return {"train_points": case.train_points, "filter_widths": case.widths,
                "label_noise": case.spec.label_noise, "test_points": case.spec.test_points,
                "noise_variance": case.noise_variance}

    def describe(self, result: dict[str, Any]) -> str:
        widths, examples = result["filter_widths"], self.examples
        return (f"Data: {result['train_points']} training {examples} per seed from {self.source}, "
                f"{number(result['label_noise'])} of their labels replaced by a random class; {result['test_points']} "
                f"held-out {examples} with clean labels are the test set. The net regresses one-hot targets: test MSE "
                "is the test loss, test error is 1 - accuracy. Spectral numbers by the filtering method (Xu et al.) "
                f"over the seed's training {examples}, Gaussian width {number(widths['primary'])} (and "
                f"{number(widths['alternate'])} as the second measurement choice): HF error is the relative error "
                "of the high-pass part against the training targets; high-frequency fraction is the high-pass "
                "share of the output's power.")

    def history_figures(self, result: dict[str, Any], history: FilterHistory) -> dict[str, Figure]:
        return {"filtering": plot_filter_history(history)[0]}


class DigitsKind(FilterKind):
    """Cases on scikit-learn's 8x8 digits (``signal = "digits"``)."""

    signals = ("digits",)
    source, examples = "scikit-learn's 8x8 digits", "images"

    def split(self, case: Case) -> LabelledSplit:
        return split_digits(case.spec, case.train_points, case.seeds, case.device)
