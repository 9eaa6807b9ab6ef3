import numpy as np
import pytest
import torch

from spectral.claim._training import MemberOptimizer, Trainer
from spectral.ensemble import MLPEnsemble


def _data(members=3, points=20, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(members, points, 1, generator=generator), torch.randn(members, points, generator=generator)


def _alone(model, x, y, steps, optimizer):
    for _ in range(steps):
        optimizer.zero_grad()
        (model(x).squeeze(-1) - y).pow(2).mean().backward()
        optimizer.step()


@pytest.mark.parametrize(("kind", "decay"), [("adam", 0.0), ("adam", 0.5), ("sgd", 0.0)])
def test_each_member_trains_as_torch_trains_it_alone(kind, decay):
    x, y = _data()
    ensemble = MLPEnsemble(1, members=3, width=16, depth=2, seeds=[0, 1, 2])
    alone = [ensemble.member(i) for i in range(3)]
    trainer = Trainer(ensemble, x, y, 0.01, kind=kind, weight_decay=decay)
    trainer.run(20, torch.tensor([True, False, True]))
    trainer.run(30, torch.tensor([True, True, False]))
    assert trainer.optimizer.steps.tolist() == [50, 30, 20]
    for i, steps in enumerate((50, 30, 20)):
        model = alone[i]
        optimizer = (torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=decay) if kind == "adam"
                     else torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
        _alone(model, x[i], y[i], steps, optimizer)
        for ours, theirs in zip(ensemble.member(i).parameters(), model.parameters()):
            torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_a_frozen_member_does_not_move_at_all():
    x, y = _data()
    ensemble = MLPEnsemble(1, members=3, width=8, depth=2, seeds=[0, 1, 2])
    trainer = Trainer(ensemble, x, y, 0.01, weight_decay=0.3)
    trainer.run(5)
    frozen = [p[1].clone() for p in ensemble.parameters()]
    state = trainer.optimizer.select([1])
    trainer.run(10, torch.tensor([True, False, True]))
    for before, parameter in zip(frozen, ensemble.parameters()):
        assert torch.equal(before, parameter[1])
    after = trainer.optimizer.select([1])
    for name in ("first_moment", "second_moment"):
        for a, b in zip(state[name], after[name]):
            assert torch.equal(a, b)
    assert after["steps"].tolist() == [5]


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_a_member_ignores_its_neighbours_bit_for_bit(kind):
    # The same seeds among 5 or 13 members (not multiples of a SIMD width), some frozen part of the way, follow
    # exactly the same trajectory: a fused kernel that rounds a tensor's vector part and tail differently fails this.
    x, y = _data(members=13)
    runs = {}
    for members in (5, 13):
        ensemble = MLPEnsemble(1, members=members, width=16, depth=2, seeds=list(range(members)))
        trainer = Trainer(ensemble, x[:members], y[:members], 0.01, kind=kind)
        trainer.run(150)
        trainer.run(150, torch.arange(members) % 3 != 1)
        runs[members] = ensemble
    for a, b in zip(runs[5].parameters(), runs[13].parameters()):
        assert torch.equal(a, b[:5])


def test_state_moves_between_optimisers():
    x, y = _data()
    ensemble = MLPEnsemble(1, members=3, width=8, depth=2, seeds=[0, 1, 2])
    first = Trainer(ensemble, x, y, 0.01)
    first.run(7)
    other = MemberOptimizer(MLPEnsemble(1, members=6, width=8, depth=2, seeds=list(range(6))), "adam", 0.01)
    other.load(first.optimizer.select([2, 0, 1]), slice(3, 6))
    assert other.steps.tolist() == [0, 0, 0, 7, 7, 7]
    torch.testing.assert_close(other.first_moment[0][3], first.optimizer.first_moment[0][2])


def test_bad_kind():
    with pytest.raises(ValueError, match="kind"):
        MemberOptimizer(MLPEnsemble(1, members=1, width=4, depth=1), "lbfgs", 0.1)
    assert np.array_equal(MemberOptimizer(MLPEnsemble(1, members=2, width=4, depth=1), "sgd", 0.1).steps, [0, 0])
