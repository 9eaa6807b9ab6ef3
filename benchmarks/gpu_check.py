"""A short GPU check of the claim check: the digits case and a synthetic case on CUDA, seed independence there.

    python benchmarks/gpu_check.py --out DIR     # writes DIR/gpu_check.json; about a minute on one H200

Seeds 0-4 run alone and beside a sixth seed on the same device: on the CPU a
seed's numbers are bit-identical either way (tests/claim); on a GPU the
batched kernels may pick another algorithm for another batch size, so this
reports the largest relative difference per metric instead of asserting it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from spectral.claim._check import run_case
from spectral.claim._config import load_config

CASES = {"digits-relu-n256": {"signal": "digits", "activation": "relu", "bias": True, "train_points": 256},
         "1d-tanh": {"signal": "1d", "activation": "tanh", "bias": True}}


def _largest_difference(few: dict, many: dict) -> dict[str, float]:
    worst = {}
    for metric, arms in few["metrics"].items():
        a = np.concatenate([np.asarray(v, dtype=float) for v in arms.values()])
        b = np.concatenate([np.asarray(many["metrics"][metric][arm][:len(v)], dtype=float) for arm, v in arms.items()])
        finite = np.isfinite(a) & np.isfinite(b)
        scale = np.maximum(np.abs(a[finite]), 1e-12)
        worst[metric] = float(np.max(np.abs(a[finite] - b[finite]) / scale)) if finite.any() else float("nan")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    torch.set_num_threads(1)
    report = {"device": args.device, "torch": torch.__version__,
              "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None, "cases": {}}
    for name, case in CASES.items():
        config = load_config(overrides={"seeds": 6, "sweep": {"case": ""}, "cases": [case]})
        entry = {}
        for device in ("cpu", args.device):
            started = time.perf_counter()
            few, _ = run_case(config.cases[0], config, list(range(5)), device=device)
            entry[f"{device}_seconds_5_seeds"] = round(time.perf_counter() - started, 2)
            many, _ = run_case(config.cases[0], config, list(range(6)), device=device)
            entry[f"{device}_seed_independence_max_relative_difference"] = _largest_difference(few, many)
            entry[f"{device}_verdicts"] = {k: v["holds"] for k, v in few["verdicts"].items()
                                           if k in ("shrink_removes_high_frequencies", "slingshot_beats_control")}
            entry[f"{device}_overfit_steps"] = few["overfit"]["steps"]
        report["cases"][name] = entry
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
