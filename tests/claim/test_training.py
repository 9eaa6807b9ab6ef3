import copy

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


def _freezing_run(trainer, train):
    """Steps as phase 1 and a retrain-until-recovered phase 2 take them: members freezing one after another."""
    members = trainer.optimizer.members
    train(trainer, 20, None)
    for step, kept in enumerate((0.9, 0.5, 0.1, 0.1, 0.0)):
        active = torch.arange(members) < max(1, round(kept * members))
        train(trainer, 15, active.roll(step))


@pytest.mark.parametrize(("kind", "activation", "width", "points", "decay"),
                         [("adam", "tanh", 64, 12, 0.3), ("adam", "sine", 16, 24, 0.0), ("sgd", "relu", 8, 20, 0.0)])
def test_frozen_members_are_left_out_with_the_same_numbers_bit_for_bit(kind, activation, width, points, decay):
    x, y = _data(members=11, points=points)
    ensemble = MLPEnsemble(1, members=11, width=width, depth=2, activation=activation, seeds=list(range(11)))
    compact = Trainer(ensemble, x, y, 0.01, kind=kind, weight_decay=decay)
    whole = Trainer(copy.deepcopy(ensemble), x, y, 0.01, kind=kind, weight_decay=decay)
    _freezing_run(compact, lambda trainer, steps, active: trainer.run(steps, active))
    _freezing_run(whole, lambda trainer, steps, active: trainer._train(steps, active))  # every member computed
    assert compact.optimizer.steps.tolist() == whole.optimizer.steps.tolist()
    assert len(set(compact.optimizer.steps.tolist())) > 3
    for name in ("parameters", "first_moment", "second_moment"):
        for ours, theirs in zip(getattr(compact.optimizer, name), getattr(whole.optimizer, name)):
            assert torch.equal(ours, theirs), name


def test_a_run_with_no_member_active_changes_nothing():
    x, y = _data()
    ensemble = MLPEnsemble(1, members=3, width=8, depth=2, seeds=[0, 1, 2])
    trainer = Trainer(ensemble, x, y, 0.01)
    before = [p.clone() for p in ensemble.parameters()]
    trainer.run(5, np.zeros(3, dtype=bool))
    assert all(torch.equal(a, b) for a, b in zip(before, ensemble.parameters()))
    assert trainer.optimizer.steps.tolist() == [0, 0, 0]


@pytest.mark.slow
def test_a_case_of_the_claim_check_is_unchanged_by_leaving_frozen_members_out(tmp_path, monkeypatch):
    from claim_config import tiny

    from spectral.claim._check import run_cases
    from spectral.claim._config import load_config

    config = load_config(None, tiny(cases=[{"signal": "2d", "activation": "tanh", "bias": True}],
                                    sweep={"case": "2d-tanh", "factors": [0.2, 0.5]}))
    compact = run_cases(config, tmp_path / "compact")
    monkeypatch.setattr(Trainer, "run", lambda self, steps, active=None: self._train(steps, active))
    assert run_cases(config, tmp_path / "whole") == compact
