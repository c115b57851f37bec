"""Study machinery overhead and worker scaling (``ticketlab.study``).

1. **Scheduling overhead per job**: a study of ``--jobs-count`` (default 200) ``random`` jobs on
   lenet_300_100/digits (seeds x densities), run in a fresh folder. Overhead = (wall time of
   ``Study.run`` - the summed wall time of the jobs themselves, as the manifest records them) /
   number of jobs: validation, job resolution, the skip checks, the manifest rewrites and the
   executor. Target: <= 50 ms per job with the local executor. The same with Ray when installed
   (its start-up is reported apart). Then the re-run of the finished study (every job skipped).
2. **Two workers against one** on 2 cores: a study of ``magnitude`` jobs (each trains the dense
   network: a few seconds of real work), local executor with ``--jobs 1`` and ``--jobs 2``,
   alternating, ``--repeats`` times; min and median of the speed-up.

torch runs with 1 intra-op thread in this process (``torch.set_num_threads(1)``), and each of the
two workers gets ``cores // 2`` threads, so neither oversubscribes the machine.

Usage:
    python benchmarks/bench_study.py [--jobs-count 200] [--repeats 3] [--no-ray]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ticketlab.study import Study, StudySpec


def _random_study(n: int) -> StudySpec:
    seeds = list(range(max(1, n // 10)))
    densities = [round(0.05 + 0.09 * i, 2) for i in range(10)][: max(1, n // len(seeds))]
    return StudySpec.from_dict({"name": "bench", "model": "lenet_300_100", "dataset": "digits", "seeds": seeds,
                                "densities": densities, "methods": ["random"], "device": "cpu"})


def overhead(n: int, executor: str) -> dict[str, float]:
    spec = _random_study(n)
    with tempfile.TemporaryDirectory() as tmp:
        ray_start = 0.0
        if executor == "ray":
            import ray

            t0 = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            ray_start = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            manifest = Study(spec, tmp).run(executor=executor, jobs=2 if executor == "ray" else 1)
            total = time.perf_counter() - t0
            inside = sum(j["wall_seconds"] or 0.0 for j in manifest["jobs"])
            t0 = time.perf_counter()
            Study(spec, tmp).run(executor=executor)
            rerun = time.perf_counter() - t0
        finally:
            if executor == "ray":
                ray.shutdown()
    jobs = len(manifest["jobs"])
    busy = inside / (2 if executor == "ray" else 1)  # two Ray workers run jobs side by side
    return {"jobs": jobs, "total_s": total, "jobs_s": inside, "overhead_ms_per_job": 1000 * (total - busy) / jobs,
            "rerun_ms_per_job": 1000 * rerun / jobs, "ray_start_s": ray_start}


def scaling(repeats: int) -> list[float]:
    spec = StudySpec.from_dict({"name": "scale", "model": "lenet_300_100", "dataset": "digits", "seeds": [0, 1],
                                "densities": [0.2, 0.1], "methods": ["magnitude"], "train": {"epochs": 10},
                                "device": "cpu"})
    ratios = []
    for r in range(repeats):
        times = {}
        for workers in ((1, 2) if r % 2 == 0 else (2, 1)):  # alternate the order
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                Study(spec, tmp).run(jobs=workers)
                times[workers] = time.perf_counter() - t0
        ratios.append(times[1] / times[2])
        print(f"  repeat {r}: 1 worker {times[1]:.2f} s, 2 workers {times[2]:.2f} s, speed-up {ratios[-1]:.2f}x",
              flush=True)
    return ratios


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs-count", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch threads: {torch.get_num_threads()}")
    executors = ["local"]
    if not args.no_ray:
        try:
            import ray  # noqa: F401

            executors.append("ray")
        except ImportError:
            print("ray not installed: pip install 'ticketlab[ray]' (skipping its figure)")
    for ex in executors:
        r = overhead(args.jobs_count, ex)
        print(f"{ex:>5}: {r['jobs']} random jobs in {r['total_s']:.2f} s (jobs themselves {r['jobs_s']:.2f} s): "
              f"overhead {r['overhead_ms_per_job']:.1f} ms/job (target <= 50 with local); "
              f"re-run (all skipped) {r['rerun_ms_per_job']:.1f} ms/job"
              + (f"; ray.init {r['ray_start_s']:.1f} s" if ex == "ray" else ""), flush=True)
    print("two workers vs one (magnitude jobs, 10 epochs each):")
    ratios = scaling(args.repeats)
    print(f"speed-up of 2 workers: min {min(ratios):.2f}x, median {statistics.median(ratios):.2f}x")
    print(json.dumps({"speedup_min": min(ratios), "speedup_median": statistics.median(ratios)}))


if __name__ == "__main__":
    main()
