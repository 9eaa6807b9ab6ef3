"""Fuzzing SpectrumHistory.load: damaged bytes give back the original history or a ValueError, nothing else."""

import functools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spectral import Grid, SpectrumHistory, SpectrumProbe

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@functools.lru_cache(maxsize=1)
def original() -> SpectrumHistory:
    probe = SpectrumProbe(Grid.uniform(16), target=lambda x: np.sin(2 * np.pi * x[:, 0]), window="hann")
    for step in range(3):
        probe.update(lambda x, s=step: (1 + s) * np.sin(2 * np.pi * x[:, 0]) + x[:, 0] ** 2, step)
    probe.snapshot(lambda x: np.full(len(x), np.nan), "diverged\x00")
    return probe.history


def saved_bytes(folder) -> bytes:
    return original().save(folder / "good.npz").read_bytes()


def check(path) -> None:
    """``load(path)`` returns exactly the original history, or raises ValueError."""
    history = original()
    try:
        loaded = SpectrumHistory.load(path)
    except ValueError:
        return
    assert (loaded.shape, loaded.extent, loaded.window) == (history.shape, history.extent, history.window)
    assert loaded.labels.tolist() == history.labels.tolist()
    for name in ("steps", "amplitude", "power", "finite", "target_freqs"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(history, name), err_msg=name)
    np.testing.assert_array_equal(loaded.relative_error(), history.relative_error())


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "random.npz"
    path.write_bytes(data)
    check(path)


@FUZZ
@given(fraction=st.floats(0, 1, exclude_max=True))
def test_truncations(tmp_path_factory, fraction):
    folder = tmp_path_factory.mktemp("fuzz")
    data = saved_bytes(folder)
    (folder / "cut.npz").write_bytes(data[: int(fraction * len(data))])
    check(folder / "cut.npz")


@FUZZ
@given(position=st.floats(0, 1, exclude_max=True), mask=st.integers(1, 255), insert=st.booleans())
def test_flipped_or_inserted_bytes(tmp_path_factory, position, mask, insert):
    folder = tmp_path_factory.mktemp("fuzz")
    data = bytearray(saved_bytes(folder))
    at = int(position * len(data))
    if insert:
        data.insert(at, mask)
    else:
        data[at] ^= mask
    (folder / "damaged.npz").write_bytes(bytes(data))
    check(folder / "damaged.npz")
