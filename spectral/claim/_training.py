"""Full-batch training of an :class:`~spectral.ensemble.MLPEnsemble` whose members never see each other.

Every member of an ensemble is one seed (or one arm of one seed). Its
optimiser state, step count, learning rate and weight decay are its own, and a
member that is frozen does not move at all (weights and optimiser state), so a
seed's numbers never depend on which other members train beside it.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np
import torch
from torch.optim.adam import adam
from torch.optim.sgd import sgd

from ..ensemble import MLPEnsemble

OPTIMIZERS = ("adam", "sgd")
BETAS = (0.9, 0.999)
EPSILON = 1e-8
SGD_MOMENTUM = 0.9
#: Torch's fused CPU Adam rounds a tensor's vectorised part and its tail differently; a parameter whose
#: per-member size is a multiple of this (64 floats: any SIMD width up to 2048 bits) never puts a member in a tail.
FUSED_ALIGNMENT = 64
_FUSED: dict[str, bool] = {}


def fused_adam_available(device: torch.device) -> bool:
    """Whether this torch has a fused Adam kernel for ``device`` (the CPU needs torch >= 2.4); checked once."""
    if device.type not in _FUSED:
        probe = torch.zeros(1, device=device)
        try:
            adam([probe], [torch.zeros_like(probe)], [torch.zeros_like(probe)], [torch.zeros_like(probe)], [],
                 [torch.zeros((), device=device)], fused=True, amsgrad=False, beta1=BETAS[0], beta2=BETAS[1], lr=0.0,
                 weight_decay=0.0, eps=EPSILON, maximize=False)
            _FUSED[device.type] = True
        except RuntimeError:
            _FUSED[device.type] = False
    return _FUSED[device.type]


class MemberOptimizer:
    """Adam (AdamW with a weight decay) or SGD with momentum, member by member.

    Each parameter's leading axis is the member axis. Every member has its
    own moments and step count, and a member's update reads only its own
    gradient, state and hyperparameters: Adam's bias correction uses the
    member's own step count. The update runs torch's own Adam or SGD kernels
    over runs of consecutive members that are active and share a step count,
    so it costs little more than one optimiser over the whole ensemble; with
    one torch thread a member's result is bit for bit the same whichever
    members run beside it (the fused Adam kernel only takes parameters whose
    per-member size is a multiple of :data:`FUSED_ALIGNMENT`). The weight decay is decoupled
    (``w *= 1 - lr * decay`` before the step, as in AdamW). Members outside
    ``active`` are not touched.

    Parameters
    ----------
    ensemble : MLPEnsemble
    kind : {"adam", "sgd"}
    learning_rate : float
    weight_decay : float or tensor of shape (members,), default 0
    """

    def __init__(self, ensemble: MLPEnsemble, kind: str, learning_rate: float,
                 weight_decay: float | torch.Tensor = 0.0) -> None:
        if kind not in OPTIMIZERS:
            raise ValueError(f"kind must be one of {OPTIMIZERS}, got {kind!r}")
        self.kind, self.learning_rate = kind, float(learning_rate)
        self.parameters = list(ensemble.parameters())
        first = self.parameters[0]
        self.members = ensemble.members
        decay = torch.as_tensor(weight_decay, dtype=first.dtype, device=first.device)
        self.weight_decay = decay.expand(self.members).clone() if decay.ndim == 0 else decay.clone()
        self.first_moment = [torch.zeros_like(p) for p in self.parameters]
        self.second_moment = [torch.zeros_like(p) for p in self.parameters] if kind == "adam" else []
        self.steps = np.zeros(self.members, dtype=np.int64)  # updates taken, per member
        self._fused = kind == "adam" and fused_adam_available(first.device)
        self._cache: tuple[Any, list[tuple[Any, ...]]] | None = None

    def _runs(self, active: np.ndarray) -> list[tuple[int, int]]:
        """Maximal ``[start, stop)`` ranges of active members with equal step counts."""
        runs: list[tuple[int, int]] = []
        for member in np.flatnonzero(active):
            if runs and runs[-1][1] == member and self.steps[member] == self.steps[runs[-1][0]]:
                runs[-1] = (runs[-1][0], member + 1)
            else:
                runs.append((member, member + 1))
        return runs

    @torch.no_grad()
    def step(self, active: torch.Tensor | np.ndarray | None = None) -> None:
        """One update of every active member (boolean mask of shape ``(members,)``; None: all)."""
        active = np.ones(self.members, dtype=bool) if active is None else np.asarray(torch.as_tensor(active).cpu())
        runs = self._runs(active)
        if not runs:
            return
        if bool(self.weight_decay.any()):
            factor = torch.where(torch.as_tensor(active, device=self.weight_decay.device),
                                 1 - self.learning_rate * self.weight_decay, 1.0)
            for parameter in self.parameters:
                parameter.mul_(factor.reshape(-1, *([1] * (parameter.ndim - 1))))

        for group in self._chunks(runs):
            self._update(*group)
        self.steps[active] += 1

    @torch.no_grad()
    def intended_update(self, active: torch.Tensor | np.ndarray | None = None) -> list[torch.Tensor]:
        """What :meth:`step` would add to each parameter, without adding it: the optimiser state advances.

        For storing the update some other way (another dtype, another rounding): the parameters are left as
        they were, the returned tensors hold ``after - before`` (zero for members outside ``active``).
        """
        before = [p.detach().clone() for p in self.parameters]
        self.step(active)
        updates = [p.detach() - b for p, b in zip(self.parameters, before)]
        for parameter, value in zip(self.parameters, before):
            parameter.copy_(value)
        return updates

    def _chunks(self, runs: list[tuple[int, int]]) -> list[tuple[bool, list[torch.Tensor], ...]]:
        """Views of every run of members in the parameters, gradients and moments, with the runs' step counters.

        Two groups: parameters whose per-member size is a multiple of :data:`FUSED_ALIGNMENT` (every member's
        elements then take the fused kernel's vectorised path, wherever its run starts) and the others (the
        multi-tensor kernel, which rounds every element alike). Kept while the runs and the gradient tensors stay
        the same (the kernels advance the step counters in place), rebuilt otherwise.
        """
        for parameter in self.parameters:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
        grads = [p.grad for p in self.parameters]
        key = (tuple(runs), tuple(id(g) for g in grads))
        if self._cache is None or self._cache[0] != key:
            device = self.parameters[0].device
            groups = []
            for fused in (True, False):
                indices = [i for i, p in enumerate(self.parameters)
                           if (p[0].numel() % FUSED_ALIGNMENT == 0 and self._fused) == fused]

                def chunks(tensors: list[torch.Tensor], indices: list[int] = indices) -> list[torch.Tensor]:
                    return [tensors[i].detach()[a:b] for a, b in runs for i in indices] if tensors else []

                steps = [torch.tensor(float(self.steps[a]), device=device) for a, _ in runs for _ in indices]
                groups.append((fused, chunks(self.parameters), chunks(grads), chunks(self.first_moment),
                               chunks(self.second_moment), steps))
            self._cache = (key, [group for group in groups if group[1]])
        return self._cache[1]

    def _update(self, fused: bool, params: list[torch.Tensor], grads: list[torch.Tensor], first: list[torch.Tensor],
                second: list[torch.Tensor], steps: list[torch.Tensor]) -> None:
        if self.kind == "sgd":
            sgd(params, grads, first, momentum=SGD_MOMENTUM, lr=self.learning_rate, dampening=0.0, nesterov=False,
                weight_decay=0.0, maximize=False, foreach=True)
            return
        adam(params, grads, first, second, [], steps, amsgrad=False, beta1=BETAS[0], beta2=BETAS[1],
             lr=self.learning_rate, weight_decay=0.0, eps=EPSILON, maximize=False,
             **({"fused": True} if fused else {"foreach": True}))

    def select(self, members: list[int]) -> dict[str, Any]:
        """A copy of the state of ``members`` (in that order), to start other members from."""
        index = torch.as_tensor(members, device=self.parameters[0].device)
        return {"first_moment": [m[index].clone() for m in self.first_moment],
                "second_moment": [v[index].clone() for v in self.second_moment],
                "steps": self.steps[members].copy()}

    def load(self, state: dict[str, Any], members: slice) -> None:
        """Give ``members`` the state from :meth:`select`."""
        for own, given in zip(self.first_moment, state["first_moment"]):
            own[members] = given
        for own, given in zip(self.second_moment, state["second_moment"]):
            own[members] = given
        self.steps[members] = state["steps"]
        self.clear_cache()

    def clear_cache(self) -> None:
        """Forget the kernels' views and step counters (after the step counts changed from outside)."""
        self._cache = None  # rebuilt from the new counts at the next step


class Trainer:
    """Full-batch training on the sum of per-member mean squared errors.

    Parameters
    ----------
    ensemble : MLPEnsemble
    x, y : tensor
        ``(members, N, d)`` inputs and ``(members, N)`` targets.
    learning_rate : float
    kind : {"adam", "sgd"}, default "adam"
    weight_decay : float or tensor of shape (members,), default 0
    """

    def __init__(self, ensemble: MLPEnsemble, x: torch.Tensor, y: torch.Tensor, learning_rate: float,
                 *, kind: str = "adam", weight_decay: float | torch.Tensor = 0.0) -> None:
        self.ensemble, self.x, self.y = ensemble, x, y
        self.optimizer = MemberOptimizer(ensemble, kind, learning_rate, weight_decay)

    def run(self, steps: int, active: torch.Tensor | np.ndarray | None = None) -> None:
        """``steps`` updates of the ``active`` members (all when None); the others stay exactly as they are.

        Frozen members cost nothing: while some are frozen, the active ones
        train as an ensemble of their own (their weights, moments and step
        counts gathered, trained, scattered back), with the same numbers bit
        for bit on one machine (every kernel computes a member from its own
        rows alone; torch's batched matmul takes another kernel for a batch
        of one, so a lone active member keeps a frozen one beside it).
        """
        members = None if active is None else np.asarray(torch.as_tensor(active).cpu(), dtype=bool)
        if members is None or members.all():
            self._train(steps, None)
        elif members.any():
            selected = np.flatnonzero(members)
            if selected.size == 1:  # torch multiplies a batch of one with another kernel: a frozen member rides along
                selected = np.union1d(selected, [1 if selected[0] == 0 else 0])
            part = self._gather(selected)
            part._train(steps, members[selected])
            self._scatter(part, selected)

    def _train(self, steps: int, active: torch.Tensor | np.ndarray | None) -> None:
        """Forward and backward of every member, ``steps`` times, updating the ``active`` ones."""
        for _ in range(steps):
            grads = [p.grad for p in self.optimizer.parameters if p.grad is not None]
            if grads:
                torch._foreach_zero_(grads)  # in place: the optimiser keeps its views of them
            (self.ensemble(self.x) - self.y).pow(2).flatten(1).mean(dim=1).sum().backward()
            self.optimizer.step(active)

    def _gather(self, members: np.ndarray) -> Trainer:
        """A trainer of ``members`` alone: copies of their weights, data, hyperparameters and optimiser state."""
        optimizer = self.optimizer
        index = torch.as_tensor(members, device=optimizer.parameters[0].device)
        part = Trainer(self.ensemble.select(members.tolist()), _inputs_of(self.x, index), self.y[index],
                       optimizer.learning_rate, kind=optimizer.kind, weight_decay=optimizer.weight_decay[index])
        part.optimizer.load(optimizer.select(members.tolist()), slice(None))
        for own, theirs in zip(optimizer.parameters, part.optimizer.parameters):
            if own.grad is not None:  # the next step accumulates into zeroed gradients, as the whole ensemble's does
                theirs.grad = torch.zeros_like(theirs)
        return part

    @torch.no_grad()
    def _scatter(self, part: Trainer, members: np.ndarray) -> None:
        """Put ``part``'s weights and optimiser state back into ``members`` of this trainer."""
        optimizer = self.optimizer
        index = torch.as_tensor(members, device=optimizer.parameters[0].device)
        pairs = [(optimizer.parameters, part.optimizer.parameters),
                 (optimizer.first_moment, part.optimizer.first_moment),
                 (optimizer.second_moment, part.optimizer.second_moment)]
        for own, theirs in ((a, b) for whole, piece in pairs for a, b in zip(whole, piece)):
            own.index_copy_(0, index, theirs)
        optimizer.steps[members] = part.optimizer.steps
        optimizer.clear_cache()

    def train_mse(self):
        return mse(self.ensemble, self.x, self.y)


def train_until_below(trainer: Any, threshold: float, *, max_steps: int, every: int,
                      on_check: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
                      device: torch.device | str = "cpu") -> np.ndarray:
    """Phase 1 of every experiment: each member trains until its own training MSE is below ``threshold``.

    Every ``every`` steps the training MSE is read; a member below the
    threshold freezes there (weights, optimiser state and step count), the
    others go on, up to ``max_steps``. ``trainer`` is anything with
    ``train_mse()`` and ``run(steps, active)`` (:class:`Trainer`, the
    precision study's stored-weight trainer). ``on_check(step, active,
    train_mse)`` sees every check before the members that crossed freeze.

    Returns
    -------
    ndarray of int64
        Per member, the step of its check below the threshold, or the last
        step trained when it never got there.
    """
    train = trainer.train_mse()
    active = np.ones(train.shape[0], dtype=bool)
    stops = np.zeros(train.shape[0], dtype=np.int64)
    step = 0
    while True:
        if on_check is not None:
            on_check(step, active.copy(), train)
        crossed = active & (train < threshold)
        stops[crossed] = step
        active &= ~crossed
        if step >= max_steps or not active.any():
            stops[active] = step
            return stops
        trainer.run(every, torch.as_tensor(active, device=device))
        step += every
        train = trainer.train_mse()


def mse(ensemble: MLPEnsemble, x: torch.Tensor, y: torch.Tensor):
    """Every member's mean squared error on ``(x, y)`` (over points and outputs), float64 numpy."""
    with torch.no_grad():
        return (ensemble(x) - y).pow(2).flatten(1).mean(dim=1).double().cpu().numpy()


def evaluate64(ensemble: MLPEnsemble, *inputs: torch.Tensor) -> Any:
    """Every member's outputs at each of ``inputs`` (shared ``(N, d)`` or per member), in float64 from its float32
    weights: one tensor for one input, a list for several (the weights are converted once).

    Evaluating in float64 keeps rounding out of the measurement: a member's
    numbers then do not depend on how many members share the batched matmul,
    even for the tiny high-frequency power of a shrunk net.
    """
    device = next(ensemble.parameters()).device
    device = torch.device("cpu") if device.type == "mps" else device  # MPS has no float64
    model = copy.deepcopy(ensemble).to(device, torch.float64)
    with torch.no_grad():
        outputs = [model(points.to(device, torch.float64)).cpu() for points in inputs]
    return outputs[0] if len(outputs) == 1 else outputs


def _inputs_of(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The inputs of the members at ``index``: their rows of per-member ``(E, N, d)`` inputs, or shared ``(N, d)``."""
    return x[index] if x.ndim == 3 else x


def repeat_members(tensor: torch.Tensor, times: int) -> torch.Tensor:
    """``tensor`` (members first) repeated ``times`` along the member axis."""
    return tensor.repeat(times, *([1] * (tensor.ndim - 1)))
