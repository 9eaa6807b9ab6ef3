"""Performance figures of spectral, measured as ratios in one process.

Usage::

    python benchmarks/run.py [--quick] [--json] [--threads N] [--claim-check]
    python benchmarks/run.py --overhead-table [--quick]

Prints a table; with ``--json`` the last line is one JSON object. Every
figure that matters is a ratio of two timings taken in the same run, each the
minimum over repetitions interleaved round by round, so a noisy, shared
machine slows both sides alike (the import time is the median over fresh
interpreters, interleaved the same way). Wall times are printed for
information only, except the default ``spectral run``'s (``--claim-check``),
whose goal is a wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from spectral import Grid, SpectrumProbe, nudft
from spectral.claim._check import run_cases
from spectral.claim._config import load_config
from spectral._nudft import finufft_installed
from spectral.ensemble import MLPEnsemble
from spectral.models import mlp

#: The goals of the issue: (figure, bound, "max" or "min").
GOALS = {"probe_overhead_ratio": (1.05, "max"), "ensemble_speedup": (4.0, "min"),
         "seeds32_vs_seeds8_cost_ratio": (2.0, "max"), "import_time_ratio": (1.15, "max"),
         "default_run_seconds": (180.0, "max")}
#: What ``import spectral`` is compared with: the libraries it cannot do without.
IMPORT_BASELINE = "numpy, torch"


def best_times(functions: dict[str, Callable[[], Any]], rounds: int, repeats: int = 1,
               statistic: Callable[[list[float]], float] = min) -> dict[str, float]:
    """Minimum (or ``statistic``) wall time of each function, the functions interleaved round by round."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            for _ in range(repeats):
                start = time.perf_counter()
                function()
                times[name].append(time.perf_counter() - start)
    return {name: statistic(values) for name, values in times.items()}


#: Where models train and run: ``--device`` (the nudft figures are CPU-only, as the exact sum is numpy).
DEVICE = torch.device("cpu")


def _synchronise() -> None:
    """Wait for queued GPU work, so a timing covers it."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def probe_cost(shape: tuple[int, ...], width: int, rounds: int) -> dict[str, Any]:
    """``probe.update`` against a bare ``no_grad`` forward pass plus FFT on the same grid: medians of interleaved runs."""
    grid = Grid.uniform(shape)
    model = mlp(len(shape), width=width, depth=3, seed=0).to(DEVICE)
    points = torch.as_tensor(grid.points, dtype=torch.float32, device=DEVICE)
    probe = SpectrumProbe(grid)

    def bare() -> None:
        with torch.no_grad():
            out = model(points)
            torch.fft.rfft(out[:, 0]) if len(shape) == 1 else torch.fft.fft2(out.reshape(shape))
        _synchronise()

    def probed() -> None:
        probe.update(model, 0)
        _synchronise()

    bare()  # warm-up: the first call at a shape allocates
    probed()
    # One call of each per round: three probe calls in a row read up to 1.18 on a 128 x 128 grid, from allocating
    # each record's 256 KB of history back to back, which a training loop never does.
    times = best_times({"bare": bare, "probe": probed}, 2 * rounds, statistic=statistics.median)
    return {"shape": list(shape), "width": width, "bare_s": times["bare"], "probe_s": times["probe"],
            "ratio": times["probe"] / times["bare"]}


def _ensemble_data(members: int, points: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.linspace(0, 1, points).unsqueeze(1)
    noise = torch.randn(members, points, generator=torch.Generator().manual_seed(0))
    return x.to(DEVICE), (torch.sin(2 * torch.pi * 3 * x[:, 0]) + 0.3 * noise).to(DEVICE)


def _fit(model: torch.nn.Module, predict: Callable[[], torch.Tensor], y: torch.Tensor, steps: int) -> torch.Tensor:
    """Full-batch Adam on the sum of per-member mean squared errors; the final outputs."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        (predict() - y).pow(2).mean(dim=-1).sum().backward()
        optimizer.step()
    with torch.no_grad():
        result = predict()
    _synchronise()
    return result


def train_batched(members: int, steps: int, width: int = 64) -> torch.Tensor:
    x, y = _ensemble_data(members)
    ensemble = MLPEnsemble(1, members=members, width=width, depth=3).to(DEVICE)
    return _fit(ensemble, lambda: ensemble(x), y, steps)


def train_sequential(members: int, steps: int, width: int = 64) -> torch.Tensor:
    x, y = _ensemble_data(members)
    outputs = []
    for e in range(members):
        net = mlp(1, width=width, depth=3, seed=e).to(DEVICE)
        outputs.append(_fit(net, lambda net=net: net(x)[:, 0], y[e], steps))
    return torch.stack(outputs)


def ensemble_speedup(members: int, steps: int, rounds: int) -> dict[str, Any]:
    """``members`` MLPs trained as one batched model against one after another; and 8 against 32 members."""
    # Warm-up: the first calls at a shape allocate; keep them out of the timings.
    train_batched(members, 2)
    train_sequential(2, 2)
    train_batched(8, 2)
    outputs: dict[str, torch.Tensor] = {}
    functions = {"batched": lambda: outputs.__setitem__("batched", train_batched(members, steps)),
                 "sequential": lambda: outputs.__setitem__("sequential", train_sequential(members, steps)),
                 "batched_8": lambda: train_batched(8, steps)}
    times = best_times(functions, rounds)
    difference = (outputs["batched"] - outputs["sequential"]).abs()
    return {"members": members, "steps": steps, "batched_s": times["batched"], "sequential_s": times["sequential"],
            "batched_8_s": times["batched_8"], "speedup": times["sequential"] / times["batched"],
            "members_32_vs_8_cost_ratio": times["batched"] / times["batched_8"],
            "max_abs_difference": float(difference.max()), "median_abs_difference": float(difference.median())}


def claim_check_cost(quick: bool, rounds: int) -> dict[str, Any]:
    """The claim check's cases with ``--seeds 32`` against ``--seeds 8``, on one reduced case."""
    training = {"overfit_max_steps": 100, "check_every": 50, "retrain_steps": 50, "recovery_max_steps": 50} if quick \
        else {"overfit_max_steps": 300, "check_every": 100, "retrain_steps": 100, "recovery_max_steps": 100}
    overrides = {"cases": [{"signal": "1d", "activation": "tanh", "bias": True}],
                 "training": dict(training, curve_points=2), "precision": {"enabled": False}}

    def run(seeds: int) -> None:
        with tempfile.TemporaryDirectory() as out:  # a fresh directory: nothing cached to resume
            run_cases(load_config(overrides=dict(overrides, seeds=seeds)), Path(out), device=str(DEVICE))

    times = best_times({"seeds_8": lambda: run(8), "seeds_32": lambda: run(32)}, rounds)
    return {"config": overrides, "seeds_8_s": times["seeds_8"], "seeds_32_s": times["seeds_32"],
            "ratio": times["seeds_32"] / times["seeds_8"]}


def frozen_members_cost(members: int, steps: int, rounds: int) -> dict[str, Any]:
    """Retraining until recovered, then freezing (phase 2's shape): 90% of the members freeze after a tenth of the
    steps. ``Trainer.run`` (the frozen members left out) against the forward and backward of every member."""
    from spectral.claim._training import Trainer

    generator = torch.Generator().manual_seed(0)
    x = torch.rand(members, 24, 1, generator=generator).to(DEVICE)
    y = torch.randn(members, 24, generator=generator).to(DEVICE)
    frozen_after = np.arange(members) % 10 != 0  # the members that recover early
    check_every = 50
    finals: dict[str, list[torch.Tensor]] = {}

    def retrain(name: str) -> None:
        ensemble = MLPEnsemble(1, members=members, width=64, depth=3, activation="tanh").to(DEVICE)
        trainer = Trainer(ensemble, x, y, 1e-3)
        train = trainer.run if name == "compact" else trainer._train
        for step in range(0, steps, check_every):
            active = np.ones(members, dtype=bool) if step < steps // 10 else ~frozen_after
            train(check_every, torch.as_tensor(active))
        _synchronise()
        finals[name] = [p.detach().clone() for p in ensemble.parameters()]

    times = best_times({"every_member": lambda: retrain("every_member"), "compact": lambda: retrain("compact")},
                       rounds)
    identical = all(torch.equal(a, b) for a, b in zip(finals["compact"], finals["every_member"]))
    return {"members": members, "steps": steps, "every_member_s": times["every_member"],
            "compact_s": times["compact"], "speedup": times["every_member"] / times["compact"],
            "bit_identical": identical}


def nudft_throughput(points: int, frequencies: int, rounds: int) -> dict[str, Any]:
    """Scattered points per second of the exact sum, and of finufft when installed."""
    rng = np.random.default_rng(0)
    x, y, k = rng.uniform(size=points), rng.normal(size=points), np.arange(-frequencies // 2, frequencies // 2)
    backends = ["exact"] + (["finufft"] if finufft_installed() else [])
    results: dict[str, np.ndarray] = {}
    functions = {name: (lambda name=name: results.__setitem__(name, nudft(x, y, k, backend=name))) for name in backends}
    times = best_times(functions, rounds)
    figures: dict[str, Any] = {"points": points, "frequencies": frequencies,
                               **{f"{name}_points_per_second": points / times[name] for name in backends}}
    if "finufft" in results:
        figures["finufft_max_abs_difference"] = float(np.abs(results["finufft"] - results["exact"]).max())
    return figures


def ensemble_scaling(members: list[int], steps: int, rounds: int) -> list[dict[str, Any]]:
    """Batched training cost per step as the number of members grows."""
    for m in members:
        train_batched(m, 2)  # warm-up
    functions = {str(m): (lambda m=m: train_batched(m, steps)) for m in members}
    times = best_times(functions, rounds)
    return [{"members": m, "seconds_per_step": times[str(m)] / steps,
             "seconds_per_member_step": times[str(m)] / steps / m} for m in members]


def _import_seconds(module: str) -> float:
    """Seconds a fresh interpreter takes to import ``module`` (interpreter start-up not counted)."""
    code = f"import time; start = time.perf_counter(); import {module}; print(time.perf_counter() - start)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def import_time(interpreters: int = 5) -> dict[str, Any]:
    """``import spectral`` against ``import numpy, torch``: medians over fresh interpreters, interleaved."""
    times: dict[str, list[float]] = {"spectral": [], "baseline": []}
    for _ in range(interpreters):
        times["baseline"].append(_import_seconds(IMPORT_BASELINE))
        times["spectral"].append(_import_seconds("spectral"))
    spectral_s, baseline_s = statistics.median(times["spectral"]), statistics.median(times["baseline"])
    return {"interpreters": interpreters, "baseline": f"import {IMPORT_BASELINE}", "spectral_s": spectral_s,
            "baseline_s": baseline_s, "ratio": spectral_s / baseline_s, "all_s": times}


def default_run() -> dict[str, Any]:
    """Wall time of ``spectral run`` with the built-in default, in a fresh process, from an empty folder.

    Also its CPU time (user + system, all threads): on a shared machine the wall time grows with the load, the
    CPU time much less.
    """
    import resource

    with tempfile.TemporaryDirectory() as out:
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "spectral", "run", "--quiet", "--out", out,
                                 "--device", DEVICE.type],
                                check=False, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        now = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"spectral run failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")
    cpu_seconds = (now.ru_utime - used.ru_utime) + (now.ru_stime - used.ru_stime)
    return {"command": "spectral run --quiet --out <empty folder>", "seconds": seconds, "cpu_seconds": cpu_seconds}


def measure(quick: bool) -> dict[str, Any]:
    rounds = 4 if quick else 15
    overhead = {"1d": probe_cost((4096,), 256, rounds), "2d": probe_cost((128, 128), 256, rounds)}
    ensemble = ensemble_speedup(32, 40 if quick else 200, 1 if quick else 2)
    claim = claim_check_cost(quick, 1 if quick else 2)
    frozen = frozen_members_cost(128, 500 if quick else 2000, 1 if quick else 2)
    transform = nudft_throughput(20_000 if quick else 100_000, 256, 2 if quick else 3)
    sizes = [1024, 4096, 16384] if quick else [1024, 2048, 4096, 8192, 16384]
    widths = [64, 256, 512] if quick else [64, 128, 256, 512]
    scaling = {"probe_vs_grid": [probe_cost((n,), 256, 2 if quick else 4) for n in sizes],
               "probe_vs_width": [probe_cost((4096,), w, 2 if quick else 4) for w in widths],
               "ensemble_vs_members": ensemble_scaling([1, 4, 16, 64] if quick else [1, 2, 4, 8, 16, 32, 64],
                                                       10 if quick else 50, 1 if quick else 2)}
    imports = import_time()
    return {
        "import_time_ratio": imports["ratio"],
        "probe_overhead_ratio": max(entry["ratio"] for entry in overhead.values()),
        "ensemble_speedup": ensemble["speedup"],
        "ensemble_members": ensemble["members"],
        "nudft_points_per_second": transform["exact_points_per_second"],
        "seeds32_vs_seeds8_cost_ratio": claim["ratio"],
        "frozen_members_speedup": frozen["speedup"],
        "probe_overhead": overhead, "frozen_members": frozen, "ensemble": ensemble, "claim_check": claim, "nudft": transform,
        "scaling": scaling, "import_time": imports,
    }


def _goal(name: str, value: float) -> str:
    if name not in GOALS:
        return ""
    bound, kind = GOALS[name]
    met = value <= bound if kind == "max" else value >= bound
    return f"goal {'<=' if kind == 'max' else '>='} {bound:g}: {'met' if met else 'NOT met'}"


def table(figures: dict[str, Any]) -> str:
    ensemble, claim, transform = figures["ensemble"], figures["claim_check"], figures["nudft"]
    imports = figures["import_time"]
    rows = [("import_time_ratio (import spectral vs import numpy, torch)", f"{imports['ratio']:.2f}x",
             (f"{_goal('import_time_ratio', imports['ratio'])}; median of {imports['interpreters']} fresh "
              f"interpreters: {imports['spectral_s']:.2f} s vs {imports['baseline_s']:.2f} s"))]
    if "default_run_seconds" in figures:
        rows.append(("default_run_seconds (spectral run, default config)", f"{figures['default_run_seconds']:.0f} s",
                     (f"{_goal('default_run_seconds', figures['default_run_seconds'])}; "
                      f"CPU time {figures['default_run']['cpu_seconds']:.0f} s")))
    rows += [(f"probe overhead {key} {entry['shape']} width {entry['width']}", f"{entry['ratio']:.3f}x",
             f"bare {entry['bare_s'] * 1e3:.2f} ms, probe {entry['probe_s'] * 1e3:.2f} ms")
            for key, entry in figures["probe_overhead"].items()]
    rows += [
        ("probe_overhead_ratio (max)", f"{figures['probe_overhead_ratio']:.3f}x",
         _goal("probe_overhead_ratio", figures["probe_overhead_ratio"])),
        (f"ensemble_speedup ({ensemble['members']} members, {ensemble['steps']} steps)", f"{ensemble['speedup']:.2f}x",
         (f"{_goal('ensemble_speedup', ensemble['speedup'])}; sequential {ensemble['sequential_s']:.2f} s, "
          f"batched {ensemble['batched_s']:.2f} s, |difference| median {ensemble['median_abs_difference']:.1e} "
          f"max {ensemble['max_abs_difference']:.1e}")),
        ("ensemble 32 vs 8 members cost", f"{ensemble['members_32_vs_8_cost_ratio']:.2f}x",
         f"8 members {ensemble['batched_8_s']:.2f} s"),
        ("seeds32_vs_seeds8_cost_ratio (claim check)", f"{claim['ratio']:.2f}x",
         (f"{_goal('seeds32_vs_seeds8_cost_ratio', claim['ratio'])}; 8 seeds {claim['seeds_8_s']:.2f} s, "
          f"32 seeds {claim['seeds_32_s']:.2f} s")),
        (f"frozen_members_speedup ({figures['frozen_members']['members']} members, 90% frozen after a tenth of "
         f"{figures['frozen_members']['steps']} steps)", f"{figures['frozen_members_speedup']:.2f}x",
         (f"every member {figures['frozen_members']['every_member_s']:.2f} s, frozen ones left out "
          f"{figures['frozen_members']['compact_s']:.2f} s, bit-identical: {figures['frozen_members']['bit_identical']}")),
    ]
    for name in ("exact", "finufft"):
        if f"{name}_points_per_second" in transform:
            note = f"max |finufft - exact| {transform['finufft_max_abs_difference']:.1e}" if name == "finufft" else ""
            rows.append((f"nudft {name} (M={transform['points']}, K={transform['frequencies']})",
                         f"{transform[f'{name}_points_per_second']:.3g} points/s", note))
    scaling = figures["scaling"]
    rows += [(f"probe 1D n={e['shape'][0]} width {e['width']}", f"{e['ratio']:.3f}x",
              f"probe {e['probe_s'] * 1e3:.2f} ms")
             for e in scaling["probe_vs_grid"] + scaling["probe_vs_width"]]
    rows += [(f"ensemble {e['members']} members", f"{e['seconds_per_step'] * 1e3:.2f} ms/step",
              f"{e['seconds_per_member_step'] * 1e6:.0f} us per member-step") for e in scaling["ensemble_vs_members"]]
    width = max(len(name) for name, _, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:>18}  {note}" for name, value, note in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller sizes (< 40 s)")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON holding every figure")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: stable figures on a shared machine)")
    parser.add_argument("--claim-check", action="store_true",
                        help="also time a default `spectral run` end to end (minutes; torch's default threads)")
    parser.add_argument("--overhead-table", action="store_true",
                        help="only the probes x tracking intervals overhead table on the digits (Markdown)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "mps"),
                        help="where models run (default cpu); the nudft figures stay on the CPU")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    global DEVICE
    DEVICE = torch.device(args.device)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    if args.overhead_table:
        from overhead_table import markdown, overhead_table

        print(markdown(overhead_table(rounds=3 if args.quick else 5)))
        print(f"({time.perf_counter() - start:.0f} s, torch {torch.__version__}, {torch.get_num_threads()} thread(s))")
        return 0
    figures = measure(args.quick)
    if args.claim_check:
        figures["default_run"] = default_run()
        figures["default_run_seconds"] = figures["default_run"]["seconds"]
    figures["machine"] = {"python": platform.python_version(), "torch": torch.__version__, "device": args.device,
                          "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                          "platform": platform.platform(), "finufft": finufft_installed()}
    figures["quick"] = args.quick
    figures["wall_seconds"] = time.perf_counter() - start
    print(table(figures))
    print(f"({figures['wall_seconds']:.0f} s, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{os.cpu_count()} CPUs)")
    if args.json:
        print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
