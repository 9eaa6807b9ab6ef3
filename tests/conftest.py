import json

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")


@pytest.fixture
def rewritten_history(tmp_path):
    """``rewrite(history, change)``: the path of ``history`` saved with the arrays ``change(arrays)`` returns replaced."""
    from spectral._io import save_npz

    def rewrite(history, change):
        path = history.save(tmp_path / "good.npz")
        with np.load(path, allow_pickle=False) as archive:
            arrays = dict(archive)
        metadata = json.loads(str(arrays.pop("metadata")))
        return save_npz(tmp_path / "bad.npz", {**arrays, **change(arrays)}, metadata)

    return rewrite
