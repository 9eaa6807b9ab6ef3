"""Tests of what the probes on sample sets share: renamed keywords, float64 devices, target columns."""

import numpy as np
import pytest
import torch

from spectral._samples import as_float64, as_target, renamed_keywords, supports_float64


@renamed_keywords(old="new")
def _takes_new(value, *, new=0):
    return value + new


def test_a_renamed_keyword_is_refused_naming_the_new_one():
    assert _takes_new(1, new=2) == 3
    with pytest.raises(TypeError, match=r"_takes_new\(\) got old=, which is now called new="):
        _takes_new(1, old=2)
    assert _takes_new.__name__ == "_takes_new"


def test_float64_is_used_on_the_cpu_for_devices_without_it():
    assert not supports_float64(torch.device("mps"))
    assert supports_float64(torch.device("cpu")) and supports_float64(torch.device("cuda", 0))
    values = torch.tensor([1.0, 2.0], dtype=torch.float16)
    converted = as_float64(values)
    assert converted.dtype == torch.float64 and converted.tolist() == [1.0, 2.0]


def test_target_becomes_finite_float64_columns_named_target():
    assert as_target(np.arange(3), 3).shape == (3, 1)
    with pytest.raises(ValueError, match="target must have shape"):
        as_target(np.zeros(4), 3)
    with pytest.raises(ValueError, match="target has NaN"):
        as_target(np.array([0.0, np.nan, 1.0]), 3)
