"""The claim check's configuration: frozen, typed, validated on construction.

A :class:`ClaimConfig` is a tree of frozen dataclasses. Every field is
checked when it is built; an error is a :class:`ConfigError` naming the
dotted key (``'training.width'``). :func:`load_config` starts from the
built-in default and applies a TOML or JSON file and then nested overrides,
table by table; :meth:`ClaimConfig.to_dict` gives back the JSON-able tree (the
form results and digests record) and :meth:`ClaimConfig.to_toml` a TOML file
that loads into the same config.

The activations come from :data:`spectral.models.ACTIVATIONS`, the default
signals from :func:`spectral.signals.default_1d` and
:func:`~spectral.signals.default_2d`, the precision schemes from
:data:`SCHEME_NAMES`: one source each.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._spectrum import window_array
from ..models import ACTIVATIONS
from ..signals import default_1d, default_2d
from ._config_checks import (
    ConfigError,
    FrozenMap,
    _choice,
    _flag,
    _integer,
    _is_integer,
    _is_number,
    _list_of,
    _non_negative,
    _number,
    _positive,
    _positive_int,
    _require,
    _spec,
    _Table,
    _table,
)
from ._toml import NO_VALUE, parse_toml, toml_document
from ._training import BETAS

__all__ = ["ACTIVATIONS", "CORRECTIONS", "DEFAULT_CONFIG", "OPTIMIZERS", "SCHEME_NAMES", "CaseConfig", "ClaimConfig",
           "ConfigError", "DigitsConfig", "FrozenMap", "Mnist1dConfig", "PrecisionConfig", "SignalConfig", "TrainingConfig", "case_id", "load_config",
           "merge_overrides", "parse_assignments", "parse_case_id", "read_config_file"]

OPTIMIZERS = ("adam", "sgd")
CORRECTIONS = ("bh", "holm", "none")
#: Synthetic signals (sums of sinusoids / plane waves) and the real data set.
WAVES = ("1d", "2d")
SIGNALS = (*WAVES, "digits", "mnist1d")
#: Precision schemes by name: a dtype name alone stores the weights in it (no master copy); "bfloat16+master"
#: computes in bfloat16 on a float32 master copy. The order is the order of the report.
SCHEME_NAMES = ("float32", "bfloat16", "float16", "bfloat16+master")
#: Largest amplitude a signal may have: far above any signal of interest, far below float32 overflow of its power.
MAX_AMPLITUDE = 1e6
#: What a run may allocate for its largest ensemble (parameters, gradients, optimiser state, activations).
MEMORY_LIMIT_BYTES = 8 * 2**30
#: Images in scikit-learn's 8x8 digits, and their classes.
DIGIT_IMAGES, DIGIT_CLASSES = 1797, 10
#: MNIST-1D's standard split (its generator's defaults: 5000 signals of length 40, seed 42): training pool, test set.
MNIST1D_POOL, MNIST1D_TEST = 4000, 1000
#: A window written as this string in TOML (which has no null) means no window.
NO_WINDOW = NO_VALUE
#: The training dtype's range: a step size, decay or scale outside it is 0 or inf in float32 (torch refuses inf).
FLOAT32_TINY, FLOAT32_MAX = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max)
#: Adam's first step is learning_rate / (1 - beta1): it too must be a float32.
MAX_LEARNING_RATE = FLOAT32_MAX * (1 - BETAS[0])
#: Smallest significance level: the exact signed-rank test reaches it only with 20 seeds or more, and the run corrects
#: for multiplicity itself, so a lower level is a mistake (5e-324 made the seeds needed overflow).
MIN_ALPHA = 1e-6
#: Filter widths of the digits (pixel units, pixels in [0, 1]): distinct 8x8 digit images lie 1/16 to 8 apart, so
#: below the lower end the Gaussian low-pass is the identity and above the upper end the mean, to float64
#: precision, and 1 / (2 width^2) stays finite throughout (1e-160 gave NaN, 1e300 and 1e-300 crashed).
FILTER_WIDTHS = (1e-3, 1e3)


def _window(value: Any, key: str) -> Any:
    """``None`` (or ``"none"``), a window name, or a ``(name, parameters...)`` tuple scipy knows.

    A ``"none"`` parameter is a null (``("exponential", None, 3.0)``: the default centre), as TOML writes it.
    """
    if value is None or value == NO_WINDOW:
        return None
    _require(isinstance(value, (str, list, tuple)), key, "a window name, [name, parameter] or \"none\"", value)
    if not isinstance(value, str) and len(value) > 0:
        value = (value[0], *(None if parameter == NO_VALUE else parameter for parameter in value[1:]))
    try:
        values = window_array(value, (16,))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"config key {key!r}: {error}", key) from None
    _require(np.all(np.isfinite(values)) and values.sum() > 0, key, "a window with finite values and a positive sum",
             value)
    return tuple(value) if isinstance(value, list) else value


def _float32(*, zero: bool = False, high: float = FLOAT32_MAX) -> Callable[[Any, str], float]:
    """A number the training dtype holds: in [float32's smallest normal, ``high``], or 0 when ``zero``."""
    expected = ("0 or " if zero else "") + f"in [{FLOAT32_TINY:.3g}, {high:.3g}] (a normal float32)"

    def check(value: Any, key: str) -> float:
        _require(_is_number(value), key, "a finite number", value)
        _require((zero and value == 0) or FLOAT32_TINY <= value <= high, key, expected, value)
        return float(value)
    return check


_learning_rate = _float32(high=MAX_LEARNING_RATE)
_scale = _float32()
_filter_width = _number(*FILTER_WIDTHS, open_low=False, expected=f"in [{FILTER_WIDTHS[0]:g}, {FILTER_WIDTHS[1]:g}] "
                        "(pixel units: outside it the filter is the identity or the mean)")

#: MNIST-1D's filter widths: its standardised signals lie a few units apart (nearest neighbour ~4, farthest ~20).
_signal_filter_width = _number(*FILTER_WIDTHS, open_low=False, expected=f"in [{FILTER_WIDTHS[0]:g}, "
                               f"{FILTER_WIDTHS[1]:g}] (signal units: outside it the filter is the identity or the mean)")


def _per_activation(value: Any, key: str, base: Mapping[str, float]) -> Mapping[str, float]:
    """A learning rate per activation; a partial table overrides ``base`` key by key."""
    _require(isinstance(value, Mapping), key, "a table of activation = learning rate", value)
    unknown = sorted(set(value) - set(ACTIVATIONS))
    if unknown:
        raise ConfigError(f"unknown config key in {key!r}: {unknown[0]!r}; expected one of {list(ACTIVATIONS)}", key)
    return FrozenMap({name: _learning_rate(value[name], f"{key}.{name}") if name in value else base[name]
                             for name in ACTIVATIONS})


@dataclass(frozen=True)
class ShrinkPerturbConfig(_Table):
    """Shrink-and-perturb (Ash & Adams): weights x ``shrink`` + ``perturb`` x a fresh initialisation."""

    shrink: float = _spec(0.4, _scale)
    perturb: float = _spec(0.1, _float32(zero=True))


@dataclass(frozen=True)
class ScopeGridConfig(_Table):
    """The data-size x width grid that scope "full" adds."""

    cases: tuple[str, ...] = _spec(("1d-tanh", "1d-relu"))
    train_points: tuple[int, ...] = _spec((12, 24, 48), _list_of(_positive_int, "a non-empty list of positive integers"))
    widths: tuple[int, ...] = _spec((32, 64, 128), _list_of(_positive_int, "a non-empty list of positive integers"))

    def _check(self) -> None:
        _require(isinstance(self.cases, (list, tuple)) and len(self.cases) > 0, "cases",
                 "a non-empty list of 1D case names", self.cases)
        seen = set()
        for name in self.cases:
            try:
                case = parse_case_id(name)
            except ConfigError as error:
                raise ConfigError(f"config key 'cases': {error}", "cases") from None
            _require(case.signal == "1d", "cases", "1D cases", name)
            # The grid sets the training points: a sized name would override them and mislabel its cells.
            _require(case.train_points is None, "cases", "case names without a size (the grid's train_points set "
                     f"it): {case.replace(train_points=None).id!r}", name)
            _require(case.id not in seen, "cases", "distinct case names (a duplicate counts twice in the family)",
                     name)
            seen.add(case.id)
        object.__setattr__(self, "cases", tuple(self.cases))


@dataclass(frozen=True)
class SweepConfig(_Table):
    """The shrink-factor sweep of one case (``case = ""``: none)."""

    case: str = _spec("1d-tanh")
    factors: tuple[float, ...] = _spec((0.1, 0.2, 0.3, 0.5, 0.7, 1.0),
                                       _list_of(_scale, "a non-empty list of positive numbers a float32 holds"))


def _rates(**values: float) -> Mapping[str, float]:
    return FrozenMap(values)


@dataclass(frozen=True)
class TrainingConfig(_Table):
    """Network size, optimiser step sizes, the overfit stopping rule and retraining."""

    width: int = _spec(64, _positive_int)
    depth: int = _spec(3, _positive_int)
    learning_rate: Mapping[str, float] = _spec(factory=lambda: _rates(relu=0.01, tanh=0.003, gelu=0.003, sine=0.0001))
    sgd_learning_rate: Mapping[str, float] = _spec(factory=lambda: _rates(relu=0.05, tanh=0.05, gelu=0.05, sine=0.002))
    overfit_max_steps: int = _spec(3000, _positive_int)
    #: Overfit: every training point fitted to a tenth of the noise variance (most of the noise memorised).
    overfit_ratio: float = _spec(0.1, _positive)
    #: A seed overfits when it reached the threshold and its test MSE at the stop is this x its phase-1 minimum.
    min_test_gap: float = _spec(1.5, _positive)
    #: A case's generalisation verdicts are testable when at least this fraction of its seeds overfit.
    min_overfit_fraction: float = _spec(0.75, _number(0.0, 1.0, expected="in (0, 1]"))
    check_every: int = _spec(50, _positive_int)
    #: Every arm retrains this many steps (the essay's "few epochs": the comparison at the end) ...
    retrain_steps: int = _spec(400, _positive_int)
    #: ... then each member not yet back at its seed's overfit training MSE trains on alone, up to this many steps.
    recovery_max_steps: int = _spec(4000, _positive_int)
    curve_points: int = _spec(10, _positive_int)
    #: The replication check: every initial weight moved up or down by this many units in the last place.
    init_jitter_ulps: int = _spec(0, _integer(0))
    #: SIREN's frequency scale; the paper's 30 is for [-1, 1], and on [0, 1) it memorises without ever generalising.
    omega_0: float = _spec(10.0, _positive)

    @classmethod
    def _merge_field(cls, name: str, value: Any, current: Any, key: str) -> Any:
        return _per_activation(value, key, current) if name.endswith("learning_rate") else value

    def _check(self) -> None:
        _require(self.check_every <= self.overfit_max_steps, "check_every",
                 f"at most overfit_max_steps ({self.overfit_max_steps})", self.check_every)
        _require(self.recovery_max_steps >= self.retrain_steps, "recovery_max_steps",
                 f"at least retrain_steps ({self.retrain_steps})", self.recovery_max_steps)
        for name in ("learning_rate", "sgd_learning_rate"):
            rates = getattr(self, name)
            _require(isinstance(rates, Mapping) and set(rates) == set(ACTIVATIONS), name,
                     f"a table with one rate per activation {ACTIVATIONS}", rates)
            object.__setattr__(self, name, _per_activation(rates, name, rates))


def _frequencies(dims: int, grid: int) -> tuple[Callable[[Any], bool], str]:
    nyquist = grid // 2
    if dims == 1:
        return ((lambda k: _is_integer(k) and 0 < k < nyquist),
                f"a non-empty list of integers in [1, {nyquist - 1}] (below the grid's Nyquist frequency)")
    return ((lambda k: isinstance(k, (list, tuple)) and len(k) == 2 and all(map(_is_integer, k)) and any(k)
             and max(map(abs, k)) < nyquist),
            f"a non-empty list of non-zero [k_y, k_x] integer pairs with |k| < {nyquist} (the grid's Nyquist)")


@dataclass(frozen=True)
class SignalConfig(_Table):
    """A sum of sinusoids (1D) or plane waves (2D), its noisy samples and the evaluation grid.

    ``dims`` is not a key of the file: it comes from the signal's name (``1d``/``2d``).
    """

    frequencies: tuple = _spec(tuple(int(k) for k in default_1d().wavevectors[:, 0]))
    amplitudes: tuple[float, ...] = _spec(tuple(default_1d().amplitudes.tolist()))
    phases: tuple[float, ...] = _spec(tuple(default_1d().phases.tolist()))
    train_points: int = _spec(16, _positive_int)
    validation_points: int = _spec(8, _positive_int)
    #: Without noise there is nothing to overfit, and the overfit threshold (a fraction of its variance) is 0.
    noise: float = _spec(1.0, _number(0.0, MAX_AMPLITUDE, expected=f"in (0, {MAX_AMPLITUDE:g}]"))
    grid: int = _spec(256, _integer(8))
    cutoff_margin: float = _spec(3.0, _non_negative)
    dims: int = field(default=1, metadata={"check": None, "internal": True})

    def _check(self) -> None:
        valid, expected = _frequencies(self.dims, self.grid)
        frequencies = self.frequencies
        _require(isinstance(frequencies, (list, tuple)) and len(frequencies) > 0 and all(map(valid, frequencies)),
                 "frequencies", expected, frequencies)
        object.__setattr__(self, "frequencies", tuple(tuple(k) if self.dims == 2 else k for k in frequencies))
        for part in ("amplitudes", "phases"):
            values = getattr(self, part)
            _require(isinstance(values, (list, tuple)) and all(map(_is_number, values))
                     and len(values) == len(frequencies), part, "finite numbers, one per frequency", values)
            object.__setattr__(self, part, tuple(float(v) for v in values))
        _require(all(0 < abs(a) <= MAX_AMPLITUDE for a in self.amplitudes), "amplitudes",
                 f"non-zero with |a| <= {MAX_AMPLITUDE:g}", self.amplitudes)
        top = self.max_frequency
        _require(top + self.cutoff_margin < self.grid // 2, "cutoff_margin",
                 f">= 0 and leaving the cutoff (highest frequency {top:g} + margin) below the grid's Nyquist "
                 f"frequency {self.grid // 2}", self.cutoff_margin)

    @property
    def noise_variance(self) -> float:
        """Variance of the noise on the training targets."""
        return self.noise**2

    @property
    def max_frequency(self) -> float:
        """The largest ``|k|``."""
        return max(math.hypot(*k) if self.dims == 2 else k for k in self.frequencies)



@dataclass(frozen=True)
class DigitsConfig(_Table):
    """The claim on real data: scikit-learn's 8x8 digits, an MLP on one-hot targets, the filtering method.

    A fixed ``test_points`` images (clean labels) are the test set; each seed
    draws its own ``train_points + validation_points`` from the rest, and
    replaces a ``label_noise`` fraction of their labels by a uniformly random
    class (Zhang et al. 2017's memorisation setting: without noise there is
    little to overfit). Spectral numbers use the filtering method (Xu et al.)
    over the seed's training inputs, at ``filter_width`` and, as the second
    measurement choice, ``alternate_filter_width``: the Gaussian
    ``exp(-|x|^2 / (2 delta^2))``, ``delta`` its standard deviation (Xu et al.
    write ``exp(-|x|^2 / (2 delta))``, their ``delta`` a variance, so their
    2.25 is our 1.5). The widths are in pixel
    units (pixels scaled to [0, 1]): a training image's nearest neighbour is
    about 1.3-1.7 away and the median pair about 3.1, so at 1.5 about two
    thirds of the one-hot targets' variance lies in the high-pass part.
    """

    train_points: int = _spec(64, _positive_int)
    validation_points: int = _spec(64, _positive_int)
    test_points: int = _spec(597, _positive_int)
    label_noise: float = _spec(0.2, _number(0.0, 1.0, expected="in (0, 1]"))
    filter_width: float = _spec(1.5, _filter_width)
    alternate_filter_width: float = _spec(2.0, _filter_width)
    #: Step sizes for every activation: 64 inputs need smaller steps than the 1D/2D signals (the training table's).
    learning_rate: float = _spec(1e-3, _learning_rate)
    sgd_learning_rate: float = _spec(0.05, _learning_rate)
    dims: int = field(default=64, metadata={"check": None, "internal": True})

    def _check(self) -> None:
        _require(self.test_points + self.train_points + self.validation_points <= DIGIT_IMAGES, "test_points",
                 f"at most {DIGIT_IMAGES} images with train_points and validation_points", self.test_points)

    def room(self) -> tuple[int, str]:
        """Most training points a case may draw, and what bounds them (for the error)."""
        return (DIGIT_IMAGES - self.validation_points - self.test_points,
                f"leaving room in the {DIGIT_IMAGES} images for signals.digits.validation_points and test_points")

    @property
    def noise_variance(self) -> float:
        """Expected mean squared difference per output between noisy and clean one-hot labels."""
        changed = self.label_noise * (1 - 1 / DIGIT_CLASSES)
        return changed * 2 / DIGIT_CLASSES


@dataclass(frozen=True)
class Mnist1dConfig(DigitsConfig):
    """The claim on MNIST-1D (Greydanus 2020): the digits' keys, for 40-sample signals of 10 classes.

    The data are the generator's standard set (``mnist1d.data.make_dataset``
    with its default arguments, no download): a pool of 4000 training
    signals and 1000 test signals. ``test_points`` of the test signals (clean
    labels) are the test set; each seed draws ``train_points +
    validation_points`` from the pool and replaces a ``label_noise`` fraction
    of their labels by a uniformly random class. The filter widths are in the
    signals' units (the set is standardised to mean 0 and variance 1): a
    training signal's nearest neighbour is about 4.2 away and the median pair
    about 8.4, so at width 3 about three quarters (256 signals) to seven
    eighths (1024) of the one-hot targets' variance lies in the high-pass part.
    """

    train_points: int = _spec(256, _positive_int)
    test_points: int = _spec(MNIST1D_TEST, _positive_int)
    filter_width: float = _spec(3.0, _signal_filter_width)
    alternate_filter_width: float = _spec(4.0, _signal_filter_width)
    dims: int = field(default=40, metadata={"check": None, "internal": True})

    def _check(self) -> None:
        _require(self.test_points <= MNIST1D_TEST, "test_points", f"at most {MNIST1D_TEST} (MNIST-1D's test set)",
                 self.test_points)
        _require(self.train_points + self.validation_points <= MNIST1D_POOL, "train_points",
                 f"at most {MNIST1D_POOL} signals with validation_points", self.train_points)

    def room(self) -> tuple[int, str]:
        return (MNIST1D_POOL - self.validation_points,
                f"leaving room in MNIST-1D's {MNIST1D_POOL} training signals for signals.mnist1d.validation_points")


def _default_signals() -> Mapping[str, SignalConfig]:
    wave = default_2d()
    two = SignalConfig(frequencies=tuple(tuple(int(v) for v in k) for k in wave.wavevectors),
                       amplitudes=tuple(wave.amplitudes.tolist()), phases=tuple(wave.phases.tolist()),
                       train_points=32, validation_points=16, grid=32, dims=2)
    return FrozenMap({"1d": SignalConfig(), "2d": two, "digits": DigitsConfig(), "mnist1d": Mnist1dConfig()})


@dataclass(frozen=True)
class CaseConfig(_Table):
    """One case: a signal, a network (activation, bias) and an optimiser."""

    signal: str = _spec("1d", _choice(SIGNALS))
    activation: str = _spec("relu", _choice(ACTIVATIONS))
    bias: bool = _spec(True, _flag)
    optimizer: str = _spec("adam", _choice(OPTIMIZERS))
    #: Training points, when not the signal's ``train_points`` (e.g. two data-set sizes of the same signal).
    train_points: int | None = _spec(None, lambda value, key: None if value is None else _positive_int(value, key))

    @property
    def id(self) -> str:
        """``"1d-relu"``, ``"2d-relu-nobias"``, ``"digits-relu-n64"``, ``"1d-tanh-sgd"``: the name in files and reports."""
        return (f"{self.signal}-{self.activation}" + ("" if self.bias else "-nobias")
                + ("" if self.train_points is None else f"-n{self.train_points}")
                + ("" if self.optimizer == "adam" else f"-{self.optimizer}"))

    def to_dict(self) -> dict[str, Any]:
        """As results record it: ``optimizer`` only when it is not Adam, ``train_points`` only when set."""
        defaults = {"optimizer": "adam", "train_points": None}
        return {k: v for k, v in super().to_dict().items() if k not in defaults or v != defaults[k]}

    @classmethod
    def from_dict(cls, data: Any, base: Any = None, key: str = "") -> CaseConfig:
        _require(isinstance(data, Mapping) and {"signal", "activation", "bias"} <= set(data), key,
                 "a table with keys signal, activation, bias and optionally optimizer and train_points", data)
        return super().from_dict(data, base, key)


def _default_cases() -> tuple[CaseConfig, ...]:
    return tuple(CaseConfig(signal, activation, bias) for signal in WAVES
                 for activation, bias in (("relu", True), ("tanh", True), ("sine", True), ("relu", False)))


@dataclass(frozen=True)
class ManifoldConfig(_Table):
    """The small over-parameterised float64 network trained to interpolation for the manifold measurement."""

    width: int = _spec(16, _positive_int)
    depth: int = _spec(2, _positive_int)
    points: int = _spec(12, _positive_int)
    mse_ratio: float = _spec(1e-10, _number(0.0, 1.0, open_high=True, expected="in (0, 1)"))
    max_iterations: int = _spec(100, _positive_int)


@dataclass(frozen=True)
class PrecisionConfig(_Table):
    """The precision study: which case, which storage dtypes, the manifold study."""

    enabled: bool = _spec(True, _flag)
    case: str = _spec("1d-tanh")
    #: Trained in their storage dtype (slingshot and control) only at scope "full"; float32 always runs.
    schemes: tuple[str, ...] = _spec(SCHEME_NAMES)
    #: Steps before and after the shrink over which lost updates are pooled.
    window_steps: int = _spec(20, _positive_int)
    #: Steps of continued training at the interpolating minimum, per storage dtype.
    continue_steps: int = _spec(200, _positive_int)
    #: The slingshot retrained with weights stored in each low-precision dtype and rounding, in the default run.
    slingshot_cases: tuple[str, ...] = _spec(("1d-tanh", "2d-tanh"))
    #: Width of those networks (their own phase 1 in float32, then every storage dtype and rounding retrains).
    slingshot_width: int = _spec(32, _positive_int)
    slingshot_retrain_steps: int = _spec(300, _positive_int)
    manifold: ManifoldConfig = _table(ManifoldConfig)

    def _check(self) -> None:
        schemes = self.schemes
        _require(isinstance(schemes, (list, tuple)) and all(s in SCHEME_NAMES for s in schemes)
                 and len(set(schemes)) == len(schemes) and "float32" in schemes, "schemes",
                 f'a list of distinct schemes from {list(SCHEME_NAMES)} with "float32"', schemes)
        object.__setattr__(self, "schemes", tuple(schemes))
        try:
            case = parse_case_id(self.case)
        except ConfigError as error:
            raise ConfigError(f"config key 'case': {error}", "case") from None
        _require(case.signal in WAVES, "case", f"a case on a synthetic signal {WAVES}", self.case)
        names = self.slingshot_cases
        _require(isinstance(names, (list, tuple)) and len(set(names)) == len(names)
                 and all(isinstance(n, str) and _wave_case(n) for n in names), "slingshot_cases",
                 f"a list of distinct case names on synthetic signals {WAVES}", names)
        object.__setattr__(self, "slingshot_cases", tuple(names))


def _wave_case(name: str) -> bool:
    """Whether ``name`` is a case on a synthetic signal (the precision study measures on its grid)."""
    try:
        return parse_case_id(name).signal in WAVES
    except ConfigError:
        return False


def _signal_tables(value: Any, key: str) -> Mapping[str, Any]:
    """One table per signal name: a SignalConfig of its dimension for ``1d``/``2d``, a DigitsConfig for ``digits``,
    a Mnist1dConfig for ``mnist1d``."""
    expected = {"1d": (SignalConfig, 1), "2d": (SignalConfig, 2), "digits": (DigitsConfig, 64),
                "mnist1d": (Mnist1dConfig, 40)}
    _require(isinstance(value, Mapping) and set(value) == set(SIGNALS), key,
             f"a table with one entry per signal {list(SIGNALS)}", value)
    for name, (kind, dims) in expected.items():
        _require(isinstance(value[name], kind) and value[name].dims == dims, f"{key}.{name}",
                 f"a {kind.__name__} of dimension {dims}", value[name])
    return FrozenMap(value)


def _case_tables(value: Any, key: str) -> tuple[CaseConfig, ...]:
    _require(isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(c, CaseConfig) for c in value),
             key, "a non-empty list of CaseConfig tables", value)
    return tuple(value)


@dataclass(frozen=True)
class ClaimConfig(_Table):
    """Everything a claim check runs on. Build it with :func:`load_config` or :meth:`from_dict`.

    Examples
    --------
    >>> config = load_config(overrides={"seeds": 4, "training": {"width": 32}})
    >>> config.seeds, config.training.width, config.training.depth
    (4, 32, 3)
    >>> [case.id for case in config.cases][:2]
    ['1d-relu', '1d-tanh']
    >>> ClaimConfig.from_dict(config.to_dict()) == config
    True
    """

    seeds: int = _spec(32, _positive_int)
    #: Level of every test (the exact signed-rank tests and their 1 - 2 alpha intervals need alpha < 0.5).
    alpha: float = _spec(0.05, _number(MIN_ALPHA, 0.5, open_low=False, open_high=True,
                                       expected=f"in [{MIN_ALPHA:g}, 0.5)"))
    #: Multiplicity correction within each family of verdicts: Benjamini-Hochberg, Holm, or none.
    correction: str = _spec("bh", _choice(CORRECTIONS))
    #: The margin m: "yes" needs claim / reference <= 1 - m, "no" shows the improvement is smaller than m.
    min_relative_effect: float = _spec(0.05, _number(0.0, 1.0, open_low=False, open_high=True, expected="in [0, 1)"))
    shrink_factor: float = _spec(0.2, _scale)
    shrink_perturb: ShrinkPerturbConfig = _table(ShrinkPerturbConfig)
    window: Any = _spec("hann", _window)
    #: Every spectral verdict is also computed under this window and flagged where the two disagree.
    alternate_window: Any = _spec(("tukey", 0.5), _window)
    #: "full" adds the data-size x width grid (scope_grid) to the default run.
    scope: str = _spec("default", _choice(("default", "full")))
    scope_grid: ScopeGridConfig = _table(ScopeGridConfig)
    sweep: SweepConfig = _table(SweepConfig)
    training: TrainingConfig = _table(TrainingConfig)
    signals: Mapping[str, SignalConfig] = _spec(factory=_default_signals, check=_signal_tables)
    cases: tuple[CaseConfig, ...] = _spec(factory=_default_cases, check=_case_tables)
    precision: PrecisionConfig = _table(PrecisionConfig)

    @classmethod
    def _merge_field(cls, name: str, value: Any, current: Any, key: str) -> Any:
        if name == "signals":
            return _merge_signals(value, current, key)
        if name == "cases":
            _require(isinstance(value, (list, tuple)) and len(value) > 0, key, "a non-empty list of tables", value)
            return tuple(CaseConfig.from_dict(case, None, f"cases[{i}]") for i, case in enumerate(value))
        return value

    def _check(self) -> None:
        names = set()
        for i, case in enumerate(self.cases):
            _require(case.id not in names, f"cases[{i}]", "unique", case.id)
            names.add(case.id)
        for i, case in enumerate(self.cases):
            spec = self.signals[case.signal]
            if isinstance(spec, DigitsConfig):
                most, expected = spec.room()
                _require((case.train_points or spec.train_points) <= most, f"cases[{i}].train_points", expected,
                         case.train_points)
        synthetic = sorted(case.id for case in self.cases if case.signal in WAVES)
        _require(self.sweep.case in synthetic or self.sweep.case == "", "sweep.case",
                 f"one of the synthetic cases {synthetic} or \"\"", self.sweep.case)
        if self.precision.enabled:
            precision = parse_case_id(self.precision.case)
            points = self.signals[precision.signal].train_points
            _require(self.precision.manifold.points <= points, "precision.manifold.points",
                     f"at most the case's signals.{precision.signal}.train_points ({points})",
                     self.precision.manifold.points)
        _check_size(self)
        self._check_scope_cells()

    def _check_scope_cells(self) -> None:
        """At scope "full", every cell's config is built now, so a cell that cannot run is refused before training."""
        if self.scope != "full":
            return
        for points in self.scope_grid.train_points:
            for width in self.scope_grid.widths:
                try:
                    self.scope_cell(points, width)
                except ConfigError as error:
                    raise ConfigError(f"config key 'scope_grid': the cell with train_points={points} and "
                                      f"width={width} cannot run: {error}", "scope_grid") from None

    def scope_cell(self, train_points: int, width: int) -> ClaimConfig:
        """The config a cell of the data-size x width grid runs: this one with ``train_points`` on the 1D signal
        and ``width``, without the shrink-factor sweep, the precision study or the grid itself.

        Examples
        --------
        >>> cell = load_config().scope_cell(12, 32)
        >>> cell.signals["1d"].train_points, cell.training.width, cell.sweep.case, cell.scope
        (12, 32, '', 'default')
        """
        return self.replace(sweep=self.sweep.replace(case=""), precision=self.precision.replace(enabled=False),
                            scope="default", training=self.training.replace(width=width),
                            signals=FrozenMap({**self.signals, "1d": self.signals["1d"].replace(train_points=train_points)}))

    def signal(self, case: CaseConfig) -> SignalConfig | DigitsConfig:
        """The signal (or data set) ``case`` fits."""
        return self.signals[case.signal]

    def learning_rate(self, case: CaseConfig) -> float:
        """``case``'s step size: its data set's own for the digits, else the training table's for its activation."""
        spec = self.signal(case)
        if isinstance(spec, DigitsConfig):
            return spec.learning_rate if case.optimizer == "adam" else spec.sgd_learning_rate
        rates = self.training.learning_rate if case.optimizer == "adam" else self.training.sgd_learning_rate
        return rates[case.activation]

    def to_toml(self) -> str:
        """The config as a TOML document that :func:`load_config` reads back into an equal config."""
        return toml_document(self.to_dict())


def _merge_signals(value: Any, current: Mapping[str, SignalConfig], key: str) -> Mapping[str, SignalConfig]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"config key {key!r} must be a table, got {value!r}", key)
    unknown = sorted(set(value) - set(SIGNALS))
    if unknown:
        raise ConfigError(f"unknown config key in {key!r}: {unknown[0]!r}; expected one of {list(SIGNALS)}",
                          f"{key}.{unknown[0]}")
    return FrozenMap({name: type(current[name]).from_dict(value[name], current[name], f"{key}.{name}")
                      if name in value else current[name] for name in SIGNALS})


def _check_size(config: ClaimConfig) -> None:
    """Refuse, before anything runs, a run whose largest ensemble cannot fit in :data:`MEMORY_LIMIT_BYTES`."""
    width, depth = config.training.width, config.training.depth
    widths = [width] + (list(config.scope_grid.widths) if config.scope == "full" else [])
    groups = 7 + len(config.sweep.factors)
    used = [config.signals[name] for name in {case.signal for case in config.cases}]
    points = max((s.test_points if isinstance(s, DigitsConfig) else s.grid ** s.dims) + s.validation_points
                 + max([s.train_points] + [c.train_points or 0 for c in config.cases]) for s in used)
    inputs = max(s.dims for s in used) + 1
    largest = 0
    for w in widths:
        parameters = inputs * w + (depth - 1) * w * (w + 1) + (w + 1) * 10
        members = config.seeds * groups
        # parameters, gradients, two optimiser moments, update temporaries; activations and their gradients
        largest = max(largest, 4 * members * (8 * parameters + 3 * points * w * depth))
    if largest > MEMORY_LIMIT_BYTES:
        raise ConfigError(
            f"config asks for about {largest / 2**30:.0f} GiB for its largest ensemble ({config.seeds} seeds x "
            f"{groups} arms and sweep factors, width up to {max(widths)}); the limit is "
            f"{MEMORY_LIMIT_BYTES / 2**30:.0f} GiB: lower 'seeds', 'training.width' or 'sweep.factors'", "seeds")


def case_id(case: CaseConfig | Mapping[str, Any]) -> str:
    """``"1d-relu"``, ``"2d-relu-nobias"``, ``"1d-tanh-sgd"``: a case's name in files and reports."""
    return case.id if isinstance(case, CaseConfig) else CaseConfig.from_dict(case).id


def parse_case_id(name: str) -> CaseConfig:
    """The case a name like ``"1d-tanh"``, ``"digits-relu-n64"`` or ``"1d-tanh-sgd"`` stands for; ``ConfigError`` if none."""
    parts = name.split("-") if isinstance(name, str) else []
    optimizer = parts.pop() if parts[-1:] == ["sgd"] else "adam"
    size = parts[-1] if parts and parts[-1][:1] == "n" and parts[-1][1:].isdigit() else None
    parts = parts if size is None else parts[:-1]
    bias = parts[-1:] != ["nobias"]
    parts = parts if bias else parts[:-1]
    if len(parts) != 2 or parts[0] not in SIGNALS or parts[1] not in ACTIVATIONS or size in ("n", "n0"):
        raise ConfigError(f"{name!r} is not a case name like '1d-tanh', '2d-relu-nobias', 'digits-relu-n64' or "
                          "'1d-tanh-sgd'")
    return CaseConfig(parts[0], parts[1], bias, optimizer, None if size is None else int(size[1:]))


def merge_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with nested ``overrides`` applied, tables merged key by key (values are checked by :func:`load_config`)."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_overrides(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """Nested overrides from ``KEY=VALUE`` strings with dotted keys (``training.width=32``).

    A value is read as JSON when it parses (numbers, ``true``, lists such as
    ``[0.1,0.5]``, ``null``) and as a string otherwise (``window=hann``); the
    config then checks its type like any other value. Later assignments win.

    Examples
    --------
    >>> parse_assignments(["seeds=4", "training.width=32", "window=hann", "sweep.factors=[0.2,1.0]"])
    {'seeds': 4, 'training': {'width': 32}, 'window': 'hann', 'sweep': {'factors': [0.2, 1.0]}}
    """
    overrides: dict[str, Any] = {}
    for text in assignments:
        key, separator, raw = text.partition("=")
        parts = key.strip().split(".")
        if not separator or not all(parts):
            raise ConfigError(f"--set expects KEY=VALUE with a dotted config key, got {text!r}")
        try:
            value = json.loads(raw, object_pairs_hook=_json_object)
        except ConfigError as error:
            raise ConfigError(f"--set {text!r}: {error}", error.key) from None
        except ValueError:
            value = raw
        table = overrides
        for part in parts[:-1]:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ConfigError(f"--set {text!r}: {part!r} was set to a value, not a table, by an earlier --set")
        table[parts[-1]] = value
    return overrides


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> ClaimConfig:
    """The default configuration, overridden by a TOML or JSON file and then by ``overrides``.

    Parameters
    ----------
    path : path, optional
        A ``.toml`` or ``.json`` file whose tables override the default key by key.
    overrides : mapping, optional
        Nested overrides applied after the file (``{"training": {"width": 32}}``).

    Returns
    -------
    ClaimConfig
        Frozen and checked.

    Raises
    ------
    ConfigError
        Missing or malformed file, unknown keys, wrong types or out-of-range values; the message names the key.

    Examples
    --------
    >>> load_config(overrides={"seeds": 0})
    Traceback (most recent call last):
    ...
    spectral.claim._config_checks.ConfigError: config key 'seeds' must be a positive integer, got 0
    """
    config = ClaimConfig()
    if path is not None:
        config = ClaimConfig.from_dict(read_config_file(Path(path)), config)
    if overrides:
        config = ClaimConfig.from_dict(overrides, config)
    return config


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are distinct (JSON would silently keep the last; TOML refuses them too)."""
    table: dict[str, Any] = {}
    for key, value in pairs:
        if key in table:
            raise ConfigError(f"duplicate config key {key!r}", key)
        table[key] = value
    return table


def read_config_file(path: Path) -> dict[str, Any]:
    """A config file's table: TOML (``.toml``) or JSON (``.json``) only; ``ConfigError`` for anything else."""
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ConfigError(f"config file {str(path)!r}: TOML (.toml) or JSON (.json) only, got {suffix or 'no suffix'!r}")
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    kind = "TOML" if suffix == ".toml" else "JSON"
    try:
        text = path.read_bytes().decode("utf-8")
        return parse_toml(text) if kind == "TOML" else json.loads(text, object_pairs_hook=_json_object)
    except ConfigError as error:
        raise ConfigError(f"config file {str(path)!r}: {error}", error.key) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as error:  # JSONDecodeError, TOMLDecodeError: ValueError
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error).splitlines()[0]
        raise ConfigError(f"config file {str(path)!r} is not valid {kind}: {reason}") from None


#: The built-in default, as the plain tree a file overrides.
DEFAULT_CONFIG: dict[str, Any] = ClaimConfig().to_dict()
