"""BatchSpectrumProbe: the spectrum of the fit and the residual at the training inputs."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from ._nudft import as_frequencies, as_points, as_samples, fourier_sums
from ._protocol import Probe
from ._samples import SampleHistory, as_float64, renamed_keywords
from ._validation import positive_int


class BatchSpectrumHistory(SampleHistory):
    """Amplitudes of the fit and the residual at the training inputs, one row per record.

    Built by :class:`BatchSpectrumProbe`; read back with :meth:`load` (which
    refuses negative amplitudes).

    Attributes
    ----------
    wavevectors : ndarray of int64
        The probed integer wavevectors, ``(K,)`` in 1D or ``(K, 2)`` in 2D.

    Notes
    -----
    Schema ``spectral.BatchSpectrumHistory`` version 2 (the array is called
    ``wavevectors``); files of version 1 (``freqs``) are read too.
    """

    FORMAT = "spectral.BatchSpectrumHistory"
    SCHEMA_VERSION = 2
    READS_SCHEMA_VERSIONS = (1, 2)

    def __init__(self, wavevectors: np.ndarray) -> None:
        self.wavevectors = wavevectors
        super().__init__()

    def _layout(self) -> dict[str, tuple[tuple[int, ...], type]]:
        return {"fit_amplitude": ((len(self.wavevectors),), np.float64),
                "residual_amplitude": ((len(self.wavevectors),), np.float64)}

    def _configuration(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {"wavevectors": self.wavevectors}

    @classmethod
    def _from_configuration(cls, metadata: dict[str, Any], arrays: dict[str, np.ndarray]) -> BatchSpectrumHistory:
        key = "freqs" if metadata["schema_version"] == 1 else "wavevectors"
        k = arrays[key]
        if k.dtype.kind not in "iu" or k.ndim not in (1, 2) or (k.ndim == 2 and k.shape[1] != 2):
            raise ValueError(f"array {key!r} has shape {k.shape} and dtype {k.dtype}, expected (K,) or (K, 2) "
                             "integers")
        return cls(k.astype(np.int64))

    @property
    def fit_amplitude(self) -> np.ndarray:
        """``(R, K)`` amplitudes of the model's outputs (NaN rows where they were not finite)."""
        return self._array("fit_amplitude")

    @property
    def residual_amplitude(self) -> np.ndarray:
        """``(R, K)`` amplitudes of ``outputs - targets`` (NaN rows where the outputs were not finite)."""
        return self._array("residual_amplitude")


class BatchSpectrumProbe(Probe):
    """Records the spectrum of the fit and of the residual from the outputs a training step computed.

    No forward pass of its own: :meth:`update` takes the training inputs, the
    outputs the step already produced and the targets, and sums the
    non-uniform Fourier transform (:func:`spectral.nudft`) of the outputs
    and of the residual ``outputs - targets`` at the training inputs. A
    :class:`~spectral._protocol.Probe`: :meth:`update`, :meth:`snapshot`,
    :meth:`reset`, ``history``.

    Parameters
    ----------
    wavevectors : array_like of int, shape (K,) or (K, 2)
        Integer wavevectors ``k`` on the unit domain ``[0, 1)^d``: ``k_i``
        cycles per unit length along axis ``i`` (called ``freqs`` before,
        a name the other probes keep for real frequencies).
    every : int, default 1
        :meth:`update` records when ``step % every == 0``. Keyword-only.
    chunk_elements : int, optional
        Largest ``(rows, K)`` block of the exact sum formed at once, as in
        :func:`spectral.nudft` (its default: ``2**16`` on the CPU, ``2**22``
        on other devices).

    Notes
    -----
    Amplitudes are ``2 |c_k|`` (``|c_k|`` at ``k = 0``), with ``c_k`` the
    coefficient of :func:`spectral.nudft`: a sinusoid sampled densely and
    evenly reads its amplitude. With few or clustered training inputs the
    frequencies leak into each other, as any spectrum of scattered samples
    does; the probe reports what the training batch shows.

    Outputs may require grad: they are detached, never backpropagated
    through. Outputs holding NaN or inf, or so large that the sums overflow,
    are recorded as NaN rows with ``history.finite`` False; the probe never
    raises for them. Inputs ``x`` holding NaN or inf are refused.

    Examples
    --------
    >>> import torch
    >>> from spectral import BatchSpectrumProbe
    >>> from spectral.models import mlp
    >>> net = mlp(1, width=16, depth=2, seed=0)
    >>> x = torch.rand(64, 1, generator=torch.Generator().manual_seed(0))
    >>> y = torch.sin(2 * torch.pi * 3 * x[:, 0])
    >>> probe = BatchSpectrumProbe(range(8), every=5)
    >>> optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    >>> for step in range(10):
    ...     outputs = net(x)[:, 0]
    ...     loss = (outputs - y).pow(2).mean()
    ...     optimizer.zero_grad()
    ...     loss.backward()
    ...     optimizer.step()
    ...     _ = probe.update(x, outputs, y, step)  # True when it recorded
    >>> probe.history.steps
    array([0, 5])
    >>> probe.history.residual_amplitude.shape
    (2, 8)
    """

    @renamed_keywords(freqs="wavevectors")
    def __init__(self, wavevectors: Any, *, every: int = 1, chunk_elements: int | None = None) -> None:
        shape = np.shape(wavevectors.detach().cpu() if isinstance(wavevectors, torch.Tensor) else wavevectors)
        self.ndim = 2 if len(shape) == 2 and shape[1] != 1 else 1
        self._k = as_frequencies(wavevectors, self.ndim, torch.device("cpu"))
        self.chunk_elements = None if chunk_elements is None else positive_int(chunk_elements, "chunk_elements")
        self._weights = np.where((self._k == 0).all(dim=1).numpy(), 1.0, 2.0)
        integers = self._k.numpy()
        super().__init__(BatchSpectrumHistory(integers[:, 0] if self.ndim == 1 else integers), every)

    @renamed_keywords(targets="target")
    def update(self, x: Any, outputs: Any, target: Any, step: int) -> bool:
        """Record the spectra if ``step % every == 0``; return whether it did.

        Parameters
        ----------
        x : array_like or torch.Tensor, shape (M, d) or (M,) in 1D
            The training inputs, in ``[0, 1)^d``.
        outputs : array_like or torch.Tensor, shape (M,) or (M, 1)
            The model's outputs at ``x``, as the training step computed them.
        target : array_like or torch.Tensor, shape (M,) or (M, 1)
            The training targets at ``x`` (called ``targets`` before).
        step : int
            The training step.

        Raises
        ------
        TypeError, ValueError
            Naming the parameter: shapes that disagree with each other or
            with ``wavevectors``, complex or empty values, non-finite inputs or
            target, a ``step`` outside the int64 range.
        """
        return self._update(step, functools.partial(self._record, x, outputs, target))

    @renamed_keywords(targets="target")
    def snapshot(self, x: Any, outputs: Any, target: Any, label: str, step: int | None = None) -> None:
        """Always record, with a ``label``; ``step`` defaults to the last step passed to :meth:`update` (0 before any).

        The arguments are those of :meth:`update`.
        """
        self._snapshot(label, step, functools.partial(self._record, x, outputs, target))

    def _record(self, x: Any, outputs: Any, target: Any, step: int, label: str) -> None:
        points = as_points(x)
        if points.shape[1] != self.ndim:
            raise ValueError(f"x must have {self.ndim} column(s) to match wavevectors, got shape {tuple(points.shape)}")
        fit = as_samples(outputs, points.shape[0], "outputs")
        target = as_samples(target, points.shape[0], "target").to(fit.device)
        if not torch.isfinite(target).all():
            raise ValueError("target has NaN or inf values")
        amplitude = None
        if torch.isfinite(fit).all():
            fit = as_float64(fit)  # on the CPU for a device without float64 (MPS)
            values = torch.stack([fit, fit - as_float64(target).to(fit.device)], dim=1)
            sums = fourier_sums(points, values, self._k, chunk_elements=self.chunk_elements)
            amplitude = self._weights * sums.abs().cpu().numpy()
        if amplitude is None or not np.isfinite(amplitude).all():  # huge outputs overflow the sums
            self.history.append_filled(step, label, False, np.nan)
        else:
            self.history.append(step, label, True, fit_amplitude=amplitude[0], residual_amplitude=amplitude[1])
