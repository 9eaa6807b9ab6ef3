"""Time and memory of one FilterProbe update at MNIST scale (50,000 inputs of dimension 784).

Usage::

    python benchmarks/filter_probe.py [--samples N] [--dimension D] [--outputs C] [--widths W ...]
                                      [--threads T] [--device DEVICE] [--repeats R]

Prints one line per repetition and, last, one JSON object: the time per
update (the minimum over repetitions), the forward passes' share of it, the
peak resident memory of the process and the kernel block size. The inputs are
seeded random pixels in [0, 1] (MNIST needs a download; the cost depends only
on N, d, C and the number of widths, not on the pixel values). No test
asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

import numpy as np
import torch

#: Inputs per forward pass, for the probe and for timing the forward passes alone.
DEFAULT_BATCH_SIZE = 16384

from spectral import FilterProbe


def peak_memory_gib() -> float:
    """Peak resident set size of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20


def forward_seconds(model: torch.nn.Module, inputs: np.ndarray, device: torch.device, batch_size: int) -> float:
    """Seconds of the forward passes one update makes: the model on every input, in batches, without gradients."""
    start = time.perf_counter()
    with torch.no_grad():
        for first in range(0, len(inputs), batch_size):
            model(torch.as_tensor(inputs[first:first + batch_size], device=device))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--dimension", type=int, default=784)
    parser.add_argument("--outputs", type=int, default=10)
    parser.add_argument("--widths", type=float, nargs="+", default=[4.0, 6.0, 8.0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--device", default="cpu", help="torch device of the model, e.g. cpu or cuda")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    rng = np.random.default_rng(0)
    inputs = rng.uniform(size=(args.samples, args.dimension)).astype(np.float32)
    labels = np.eye(args.outputs)[rng.integers(0, args.outputs, size=args.samples)]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(args.dimension, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, args.outputs)).to(device)
    probe = FilterProbe(inputs, labels, args.widths, batch_size=DEFAULT_BATCH_SIZE)
    baseline = peak_memory_gib()

    times, forward = [], float("inf")
    for step in range(args.repeats):
        start = time.perf_counter()
        probe.update(model, step)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
        forward = min(forward, forward_seconds(model, inputs, device, DEFAULT_BATCH_SIZE))
        print(f"update {step}: {times[-1]:.2f} s (forward passes {forward:.2f} s), "
              f"low error {np.round(probe.history.low_error()[-1], 3).tolist()}, "
              f"high error {np.round(probe.history.high_error()[-1], 3).tolist()}", flush=True)

    figures = {
        "samples": args.samples, "dimension": args.dimension, "outputs": args.outputs, "widths": args.widths,
        "seconds_per_update": min(times), "forward_seconds": forward,
        "kernel_rows_per_block": probe.chunk_elements // args.samples,
        "peak_memory_gib": round(peak_memory_gib(), 2), "memory_before_first_update_gib": round(baseline, 2),
        "device": str(device), "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "machine": platform.platform(),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
