"""SpectrumCallback: probing inside a real Lightning Trainer, and without Lightning."""

from __future__ import annotations

import importlib
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import spectral
from spectral import Grid, SpectrumProbe
from spectral.models import mlp
from spectral.signals import default_1d

LIGHTNING_MODULES = ("lightning", "lightning.pytorch", "pytorch_lightning")


def _fresh_callbacks(monkeypatch: pytest.MonkeyPatch, missing: tuple[str, ...]):
    """Import spectral.callbacks anew with the ``missing`` packages hidden; the old module comes back after."""
    importlib.import_module("spectral.callbacks")  # so that monkeypatch records what to restore
    monkeypatch.delitem(sys.modules, "spectral.callbacks")
    monkeypatch.delattr(spectral, "callbacks")
    for name in missing:
        monkeypatch.setitem(sys.modules, name, None)
    return importlib.import_module("spectral.callbacks")


def test_importable_without_lightning_and_error_names_the_extra(monkeypatch):
    callbacks = _fresh_callbacks(monkeypatch, LIGHTNING_MODULES)
    with pytest.raises(ImportError, match=r'pip install "spectral-probes\[lightning\]"'):
        callbacks.SpectrumCallback(SpectrumProbe(Grid.uniform(8)))


def test_falls_back_to_pytorch_lightning(monkeypatch):
    pytorch_lightning = pytest.importorskip("pytorch_lightning")
    callbacks = _fresh_callbacks(monkeypatch, ("lightning", "lightning.pytorch"))
    assert isinstance(callbacks.SpectrumCallback(SpectrumProbe(Grid.uniform(8))), pytorch_lightning.Callback)


def test_rejects_a_non_probe():
    pytest.importorskip("lightning")
    from spectral.callbacks import SpectrumCallback

    with pytest.raises(TypeError, match="probe"):
        SpectrumCallback(Grid.uniform(8))


def test_only_rank_zero_probes():
    pytest.importorskip("lightning")
    from spectral.callbacks import SpectrumCallback

    probe = SpectrumProbe(Grid.uniform(8))
    callback = SpectrumCallback(probe)
    net = mlp(1, width=4, depth=1, seed=0)
    trainer = SimpleNamespace(global_step=0, is_global_zero=False)
    callback.on_train_start(trainer, net)
    trainer.global_step = 1
    callback.on_train_batch_end(trainer, net, None, None, 0)
    callback.on_train_end(trainer, net)
    assert len(probe.history) == 0


def _fit(probe: SpectrumProbe, max_steps: int, accumulate: int) -> list[bool]:
    """Fit a tiny MLP on the built-in 1D signal; return whether every submodule trained at every step."""
    lightning = pytest.importorskip("lightning")
    from spectral.callbacks import SpectrumCallback

    class Regressor(lightning.pytorch.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = mlp(1, width=16, depth=2, seed=0)
            self.train_modes: list[bool] = []

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            self.train_modes.append(all(module.training for module in self.modules()))
            x, y = batch
            return torch.nn.functional.mse_loss(self(x)[:, 0], y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters(), lr=1e-2)

    x, y = default_1d().sample(64, seed=0)
    data = torch.utils.data.TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
    module = Regressor()
    trainer = lightning.pytorch.Trainer(
        max_steps=max_steps, accumulate_grad_batches=accumulate, callbacks=[SpectrumCallback(probe)],
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=16))
    assert module.training
    return module.train_modes


@pytest.mark.parametrize(("every", "max_steps", "accumulate", "expected"), [
    (5, 20, 1, [0, 5, 10, 15, 20, 20]),
    (2, 6, 2, [0, 2, 4, 6, 6]),  # each global step spans two batches, yet is probed once
])
def test_probes_during_fit(every, max_steps, accumulate, expected):
    probe = SpectrumProbe(Grid.uniform(64), every=every, target=default_1d())
    train_modes = _fit(probe, max_steps, accumulate)
    history = probe.history
    assert history.steps.tolist() == expected
    assert history.labels.tolist() == ["train start"] + [""] * (len(expected) - 2) + ["train end"]
    assert history.finite.all()
    assert len(train_modes) == max_steps * accumulate and all(train_modes)
    assert not np.allclose(history.amplitude[0], history.amplitude[-1])  # the model did change
