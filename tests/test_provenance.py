import datetime
import json

import numpy as np
import pytest
import torch

import spectral
from spectral._provenance import cpu_name, provenance


def test_provenance_names_versions_machine_device_and_date():
    facts = provenance()
    assert facts["spectral"] == spectral.__version__
    assert facts["numpy"] == np.__version__ and facts["torch"] == torch.__version__
    assert facts["scipy"] and facts["matplotlib"] and facts["python"].count(".") == 2
    assert facts["device"] == "cpu" and facts["dtype"] == "float32" and facts["gpu"] is None
    assert facts["torch_threads"] == torch.get_num_threads() >= 1
    assert facts["cpu"] == cpu_name() and facts["cpu"] and facts["platform"]
    date = datetime.datetime.fromisoformat(facts["date"])
    assert date.utcoffset() == datetime.timedelta(0)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - date).total_seconds()) < 3600
    assert json.loads(json.dumps(facts)) == facts


def test_provenance_records_the_device_and_dtype_it_is_given():
    facts = provenance("cuda:0", "bfloat16")
    assert facts["device"] == "cuda:0" and facts["dtype"] == "bfloat16"
    if torch.cuda.is_available():
        assert facts["gpu"] == torch.cuda.get_device_name(0)
    else:
        assert facts["gpu"] is None
    assert provenance("mps")["gpu"] == "Apple GPU (MPS)"


@pytest.mark.parametrize("kwargs, error, match", [
    ({"device": "tpu"}, ValueError, "device='tpu'"),
    ({"device": "cuda:x"}, ValueError, "device='cuda:x'"),
    ({"device": "cpu:0"}, ValueError, "device='cpu:0'"),
    ({"dtype": "int8"}, ValueError, "dtype='int8'"),
    ({"device": torch.device("cpu")}, TypeError, "device must be a string"),
    ({"dtype": torch.float32}, TypeError, "dtype must be a string"),
])
def test_provenance_refuses_unknown_devices_and_dtypes(kwargs, error, match):
    with pytest.raises(error, match=match):
        provenance(**kwargs)
