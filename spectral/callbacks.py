"""A PyTorch Lightning callback that records a probe during ``Trainer.fit``.

Needs the ``lightning`` extra (``lightning.pytorch``, or the older
``pytorch_lightning`` package). This module imports without it; building a
:class:`SpectrumCallback` then raises ``ImportError``.
"""

from __future__ import annotations

from typing import Any

from ._probe import SpectrumProbe

try:
    from lightning.pytorch import Callback as _Callback
except ImportError:
    try:
        from pytorch_lightning import Callback as _Callback
    except ImportError:
        _Callback = object

__all__ = ["SpectrumCallback"]

INSTALL_HINT = 'pip install "spectral-probes[lightning]"'


class SpectrumCallback(_Callback):
    """Records a :class:`~spectral.SpectrumProbe` while a Lightning ``Trainer`` fits.

    The probe evaluates the ``LightningModule`` itself, so its ``forward`` must
    map ``(N, d)`` points to ``(N,)`` or ``(N, 1)`` values. It records:

    * ``probe.snapshot(module, "train start")`` when training starts,
    * ``probe.update(module, trainer.global_step)`` after each optimizer step,
      so every ``probe.every`` global steps (once per step under gradient
      accumulation),
    * ``probe.snapshot(module, "train end")`` when training ends.

    Only the global rank zero process probes. The module is evaluated in eval
    mode without gradients, and every submodule's training flag is restored.

    Parameters
    ----------
    probe : SpectrumProbe
        The probe to record into; read the result from ``probe.history``.

    Raises
    ------
    ImportError
        If neither ``lightning`` nor ``pytorch_lightning`` is installed.
    TypeError
        If ``probe`` is not a :class:`~spectral.SpectrumProbe`.

    Examples
    --------
    With ``module`` a ``LightningModule`` and ``loader`` its training data
    (the lines marked ``+SKIP`` need Lightning and the two of them):

    >>> from spectral import Grid, SpectrumProbe
    >>> from spectral.callbacks import SpectrumCallback
    >>> probe = SpectrumProbe(Grid.uniform(256), every=100)
    >>> from lightning.pytorch import Trainer  # doctest: +SKIP
    >>> trainer = Trainer(max_steps=1000, callbacks=[SpectrumCallback(probe)], logger=False)  # doctest: +SKIP
    >>> trainer.fit(module, loader)  # doctest: +SKIP
    >>> probe.history.labels[[0, -1]]  # doctest: +SKIP
    array(['train start', 'train end'], dtype=object)
    """

    def __init__(self, probe: SpectrumProbe) -> None:
        if _Callback is object:
            raise ImportError(f"SpectrumCallback needs PyTorch Lightning: {INSTALL_HINT}")
        if not isinstance(probe, SpectrumProbe):
            raise TypeError(f"probe must be a spectral.SpectrumProbe, got {type(probe).__name__}")
        self.probe = probe
        self._step: int | None = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._step = trainer.global_step
        if trainer.is_global_zero:
            self.probe.snapshot(pl_module, "train start", step=trainer.global_step)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step == self._step:  # no optimizer step since the last call
            return
        self._step = trainer.global_step
        if trainer.is_global_zero:
            self.probe.update(pl_module, trainer.global_step)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.is_global_zero:
            self.probe.snapshot(pl_module, "train end", step=trainer.global_step)
