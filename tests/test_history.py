import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from spectral import Grid, SpectrumHistory, SpectrumProbe


def make_history(ndim=1, target=True):
    grid = Grid.uniform(32) if ndim == 1 else Grid.uniform((8, 10), extent=2.0)
    target_fn = (lambda x: np.sin(2 * np.pi * x.sum(axis=1))) if target else None
    probe = SpectrumProbe(grid, every=2, target=target_fn, window="hann")
    for step in range(5):
        probe.update(lambda x, s=step: (1 + s) * np.sin(2 * np.pi * x.sum(axis=1)) + 0.1 * x[:, 0], step)
    probe.snapshot(lambda x: np.full(len(x), np.nan), "diverged")
    return probe.history


@pytest.mark.parametrize("ndim", [1, 2])
@pytest.mark.parametrize("target", [True, False])
def test_save_load_round_trip(tmp_path, ndim, target):
    history = make_history(ndim, target)
    path = tmp_path / "history.npz"
    history.save(path)
    loaded = SpectrumHistory.load(path)
    for name in ("steps", "labels", "amplitude", "power", "finite"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(history, name))
    assert loaded.shape == history.shape and loaded.extent == history.extent and loaded.window == "hann"
    if target:
        np.testing.assert_array_equal(loaded.relative_error(), history.relative_error())
        np.testing.assert_array_equal(loaded.target_freqs, history.target_freqs)
    with np.load(path, allow_pickle=False) as archive:
        assert json.loads(str(archive["metadata"]))["schema_version"] == 3


def test_high_frequency_fraction_per_record():
    history = make_history(1, False)
    hf = history.high_frequency_fraction(3)
    assert hf.shape == (len(history),) and np.isnan(hf[-1]) and np.all(hf[:-1] < 0.1)


def test_relative_error_without_target():
    with pytest.raises(ValueError, match="target"):
        make_history(1, False).relative_error()


def test_unknown_label():
    with pytest.raises(KeyError, match="diverged"):
        make_history().index("nope")


def test_empty_history_arrays():
    history = SpectrumProbe(Grid.uniform((4, 6))).history
    assert history.power.shape == (0, 4, 6) and history.steps.shape == (0,)


def test_refuses_files_that_are_not_histories(tmp_path):
    text = tmp_path / "text.npz"
    text.write_text("hello")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.arange(3))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, metadata=np.array([{"format": "spectral.SpectrumHistory"}], dtype=object))
    pickle_file = tmp_path / "raw.pkl"
    pickle_file.write_bytes(pickle.dumps({"steps": [1]}))
    good = tmp_path / "good.npz"
    make_history().save(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    wrong_version = tmp_path / "v4.npz"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(wrong_version, "w") as target:
        for item in source.namelist():
            data = source.read(item)
            if item == "metadata.npy":
                continue
            target.writestr(item, data)
    arrays = dict(np.load(good, allow_pickle=False))
    arrays["metadata"] = np.array(str(arrays["metadata"]).replace('"schema_version": 3', '"schema_version": 4'))
    np.savez(wrong_version, **arrays)
    inconsistent = tmp_path / "inconsistent.npz"
    arrays = dict(np.load(good, allow_pickle=False))
    arrays["power"] = arrays["power"][:, :3]
    np.savez(inconsistent, **arrays)
    for path in (text, foreign, pickled, pickle_file, truncated, wrong_version, inconsistent):
        with pytest.raises(ValueError, match="path"):
            SpectrumHistory.load(path)
    with pytest.raises(FileNotFoundError):
        SpectrumHistory.load(tmp_path / "missing.npz")


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "h.npz"
    history = make_history()
    history.save(path)
    history.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["h.npz"]


def test_refuses_more_foreign_files(tmp_path):
    good = tmp_path / "good.npz"
    make_history().save(good)
    arrays = dict(np.load(good, allow_pickle=False))
    listed = tmp_path / "listed.npz"
    np.savez(listed, **{**arrays, "metadata": np.array(json.dumps([1, 2]))})
    npy = tmp_path / "array.npy"
    np.save(npy, np.arange(3))
    steps_2d = tmp_path / "steps2d.npz"
    np.savez(steps_2d, **{**arrays, "steps": np.zeros((len(arrays["steps"]), 2), dtype=np.int64)})
    float_steps = tmp_path / "float_steps.npz"
    np.savez(float_steps, **{**arrays, "steps": arrays["steps"] + 0.5})
    bad_extent = tmp_path / "extent.npz"
    metadata = json.loads(str(arrays["metadata"]))
    np.savez(bad_extent, **{**arrays, "metadata": np.array(json.dumps({**metadata, "extent": -1.0}))})
    for path in (listed, npy, steps_2d, float_steps, bad_extent):
        with pytest.raises(ValueError, match="path"):
            SpectrumHistory.load(path)


def test_saved_files_are_readable_by_others(tmp_path):
    import os
    import stat

    path = tmp_path / "h.npz"
    make_history().save(path)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def saved(tmp_path, name="good.npz"):
    """A saved 1D history with a target and its arrays and metadata as read back by numpy."""
    path = tmp_path / name
    make_history().save(path)
    with np.load(path, allow_pickle=False) as archive:
        arrays = dict(archive)
    return path, arrays, json.loads(str(arrays.pop("metadata")))


def write(path, arrays, metadata):
    np.savez(path, **arrays, metadata=np.array(metadata if isinstance(metadata, str) else json.dumps(metadata)))
    return path


def refused(path, match="path"):
    with pytest.raises(ValueError, match=match) as error:
        SpectrumHistory.load(path)
    return str(error.value)


def test_member_claiming_a_huge_shape_is_refused_before_allocating(tmp_path):
    good, _, _ = saved(tmp_path)
    crafted = tmp_path / "crafted.npz"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(crafted, "w") as target:
        for item in source.namelist():
            target.writestr(item, source.read(item))
        header = tmp_path / "header.npy"
        with open(header, "wb") as file:
            np.lib.format.write_array_header_1_0(file, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
            file.write(bytes(16))
        target.writestr("huge.npy", header.read_bytes())
    assert "(1000000000000,)" in refused(crafted)


def test_metadata_claiming_a_huge_grid_is_refused_before_allocating(tmp_path):
    _, arrays, metadata = saved(tmp_path)
    refused(write(tmp_path / "a.npz", arrays, {**metadata, "shape": [10**10], "window": "hann"}), "shape")
    empty = {"steps": np.zeros(0, np.int64), "amplitude": np.zeros((0, 5 * 10**9 + 1)),
             "power": np.zeros((0, 5 * 10**9 + 1)), "finite": np.zeros(0, bool)}
    refused(write(tmp_path / "b.npz", empty, {**metadata, "labels": [], "shape": [10**10], "window": "hann"}),
            "at most 16777216")


def test_deeply_nested_metadata_is_refused(tmp_path):
    _, arrays, _ = saved(tmp_path)
    refused(write(tmp_path / "deep.npz", arrays, "[" * 100_000 + "]" * 100_000), "nested too deeply")


@pytest.mark.parametrize("method", [8, 99])
def test_flipped_compression_method_is_refused(tmp_path, method):
    good, _, _ = saved(tmp_path)
    data = bytearray(good.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the first member's central directory record
    data[entry + 10 : entry + 12] = method.to_bytes(2, "little")
    flipped = tmp_path / "flipped.npz"
    flipped.write_bytes(bytes(data))
    assert "compressed" in refused(flipped)


def test_steps_beyond_int64_on_disk_are_refused(tmp_path):
    _, arrays, metadata = saved(tmp_path)
    steps = arrays["steps"].astype(np.uint64)
    steps[-1] = 2**63
    refused(write(tmp_path / "u.npz", {**arrays, "steps": steps}, metadata), "int64")
    steps[-1] = 2**63 - 1
    assert SpectrumHistory.load(write(tmp_path / "ok.npz", {**arrays, "steps": steps}, metadata)).steps[-1] == 2**63 - 1


def test_schema_version_true_is_refused(tmp_path):
    _, arrays, metadata = saved(tmp_path)
    refused(write(tmp_path / "t.npz", arrays, {**metadata, "schema_version": True}), "schema version True")


def test_records_flagged_finite_must_be_finite(tmp_path):
    _, arrays, metadata = saved(tmp_path)
    power = arrays["power"].copy()
    power[0, 1] = np.inf
    refused(write(tmp_path / "f.npz", {**arrays, "power": power}, metadata), "finite")


def test_fifo_is_refused_without_blocking(tmp_path):
    import os
    import threading

    fifo = tmp_path / "history.npz"
    os.mkfifo(fifo)
    errors = []
    thread = threading.Thread(target=lambda: errors.append(refused(fifo, "regular file")), daemon=True)
    thread.start()
    thread.join(timeout=10)
    if thread.is_alive():  # it blocked on open: release it before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert errors


def test_text_file_is_refused_without_numpy_pickle_hint(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("print('hello')\n")
    message = refused(script, "not a spectral.SpectrumHistory file")
    assert "pickle" not in message


def test_labels_keep_trailing_nul_characters(tmp_path):
    history = make_history()
    history.append(99, "after\x00", True, amplitude=history.amplitude[0], power=history.power[0],
                   relative_error=history.relative_error()[0])
    history.save(tmp_path / "h.npz")
    loaded = SpectrumHistory.load(tmp_path / "h.npz")
    assert loaded.labels[-1] == "after\x00" and loaded.index("after\x00") == len(loaded) - 1
    assert loaded.labels.tolist() == history.labels.tolist()


def test_save_appends_npz_like_numpy(tmp_path):
    history = make_history()
    assert history.save(tmp_path / "name") == tmp_path / "name.npz"
    assert history.save(tmp_path / "other.npz") == tmp_path / "other.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["name.npz", "other.npz"]
    assert len(SpectrumHistory.load(tmp_path / "name.npz")) == len(history)


def test_schema_version_1_files_still_load(tmp_path):
    _, arrays, metadata = saved(tmp_path)
    history = make_history()
    old = {**arrays, "labels": np.array(history.labels.tolist())}
    del metadata["labels"]
    loaded = SpectrumHistory.load(write(tmp_path / "v1.npz", old, {**metadata, "schema_version": 1}))
    assert loaded.labels.tolist() == history.labels.tolist()
    np.testing.assert_array_equal(loaded.power, history.power)


DATA = Path(__file__).parent / "data"


def test_files_written_by_the_version_2_layout_still_load(tmp_path):
    # Written by spectral 0.1.0's SpectrumHistory.save (schema version 2), before histories shared one base, on
    # another machine. The same records taken now agree to rounding: an FFT's last bits depend on the CPU's code
    # path (an Intel Xeon differs from the AMD EPYC that wrote the files by 1.4e-17 on a 0.25 peak), so the
    # spectra compare with a tolerance; what the file itself holds (its steps, flags, labels) compares exactly.
    sine = lambda x: np.sin(2 * np.pi * 3 * x[:, 0])
    probe = SpectrumProbe(Grid.uniform(16), every=2, target=sine, window="hann")
    for step in range(4):
        probe.update(lambda x, s=step: (1 + s) / 4 * sine(x) + 0.1 * x[:, 0], step)
    probe.snapshot(lambda x: np.full(len(x), np.nan), "diverged\x00")
    wave = lambda x: np.cos(2 * np.pi * (x[:, 0] + x[:, 1] / 2))
    square = SpectrumProbe(Grid.uniform((4, 6), extent=2.0))
    square.snapshot(wave, "before shrink")
    square.snapshot(lambda x: 0.5 * wave(x), "after shrink", step=7)
    for name, now in (("1d", probe.history), ("2d", square.history)):
        old = SpectrumHistory.load(DATA / f"spectrum_history_v2_{name}.npz")
        assert (old.shape, old.extent, old.window) == (now.shape, now.extent, now.window)
        assert old.labels.tolist() == now.labels.tolist()
        for key in ("steps", "finite"):
            np.testing.assert_array_equal(getattr(old, key), getattr(now, key), err_msg=key)
        for key in ("amplitude", "power"):
            assert_close_across_machines(getattr(old, key), getattr(now, key), err_msg=key)
        again = SpectrumHistory.load(old.save(tmp_path / f"{name}.npz"))  # and it saves in the current layout
        np.testing.assert_array_equal(again.power, old.power)
    np.testing.assert_array_equal(old.power[:, 2, 1], [0.25, 0.0625])  # (1/2, 1/2) cycles per unit length
    old = SpectrumHistory.load(DATA / "spectrum_history_v2_1d.npz")
    assert old.labels.tolist() == ["", "", "diverged\x00"] and old.finite.tolist() == [True, True, False]
    np.testing.assert_array_equal(old.target_freqs, [3.0])
    assert_close_across_machines(old.relative_error(), probe.history.relative_error())


def assert_close_across_machines(stored, computed, err_msg=""):
    """Floats computed here against floats stored by another machine: equal to 1e-12 of the array's scale."""
    scale = np.nanmax(np.abs(stored))
    np.testing.assert_allclose(computed, stored, rtol=1e-12, atol=1e-12 * scale, err_msg=err_msg)
