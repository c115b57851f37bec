"""Study machinery overhead and worker scaling (``ticketlab.study``).

1. **Scheduling overhead per job**: a study of ``--jobs-count`` (default 200) ``random`` jobs on
   lenet_300_100/digits (seeds x densities), run in a fresh folder. Overhead = (wall time of
   ``Study.run`` - the summed wall time of the jobs themselves, as the manifest records them) /
   number of jobs: validation, job resolution, the skip checks, the manifest rewrites and the
   executor. Target: <= 50 ms per job with the local executor. The same with Ray when installed
   (its start-up is reported apart). Then the re-run of the finished study (every job skipped).
2. **Report generation** (``write_report``) for 200 synthetic tickets of lenet_300_100 (50k
   weights) and 50 of resnet20 (271k), with init and final weights: target <= 30 s each.
3. **Shared IMP work**: one IMP run through three densities against the three jobs run alone.
4. **Two workers against one** on 2 cores: a study of four ``magnitude`` jobs on conv4/digits
   (each trains the dense network for 10 epochs: several seconds of real work; the spawned
   workers' start-up, about 3 s of imports each, is included), local executor with ``--jobs 1`` and ``--jobs 2``,
   alternating, ``--repeats`` times; min and median of the speed-up.

torch runs with 1 intra-op thread in this process (``torch.set_num_threads(1)``), and each of the
two workers gets ``cores // 2`` threads, so neither oversubscribes the machine.

Usage:
    python benchmarks/bench_study.py [--jobs-count 200] [--repeats 3] [--no-ray] [--skip-report]
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
    spec = StudySpec.from_dict({"name": "scale", "model": "conv4", "dataset": "digits", "seeds": [0, 1],
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


def _synthetic_study(folder: Path, model: str, methods: int, seeds: int, densities: list[float]) -> None:
    """A study folder of synthetic tickets (topology of a real ``model``; methods = per-layer density
    tilts plus a shared preference, so they overlap; init and final weights for the sign metrics)."""
    import numpy as np

    import ticketlab

    (folder / "tickets").mkdir(parents=True)
    proto = ticketlab.mine("random", model=model, dataset="digits", density=0.5, seed=0, device="cpu")
    rng = np.random.default_rng(0)
    jobs = []
    for m in range(methods):
        tilt = {n: rng.uniform(0.3, 3.0) for n in proto.masks}
        pref = {n: rng.random(x.shape) for n, x in proto.masks.items()}
        for seed in range(seeds):
            r = np.random.default_rng(1000 * m + seed)
            for d in densities:
                masks = {n: (0.5 * pref[n] + r.random(x.shape)) < 1.5 * min(0.99, d * tilt[n])
                         for n, x in proto.masks.items()}
                init = {n: r.standard_normal(x.shape).astype(np.float32) for n, x in proto.masks.items()}
                final = {n: v + 0.3 * r.standard_normal(v.shape).astype(np.float32) for n, v in init.items()}
                t = ticketlab.Ticket(masks=masks, weights={"init": init, "final": final}, provenance={
                    "method": f"m{m}", "seed": seed, "model": model, "topology": proto.provenance["topology"],
                    "test_accuracy": float(0.5 + 0.4 * r.random()), "data_spec": {"num_classes": 10}})
                jid = f"m{m}-s{seed}-d{d:g}"
                ticketlab.save(t, folder / "tickets" / f"{jid}.h5")
                jobs.append({"id": jid, "hash": "-", "method": f"m{m}", "model": model, "dataset": "digits",
                             "seed": seed, "density": d, "config": {}, "output": f"tickets/{jid}.h5",
                             "status": "done", "error": None, "wall_seconds": None})
    (folder / "study.json").write_text(json.dumps({"name": folder.name, "study_file": "-", "jobs": jobs}))


def report_timing() -> None:
    """``write_report`` on 200 lenet_300_100 tickets (50k weights) and 50 resnet20 tickets (271k)."""
    from ticketlab.study.report import write_report

    for label, model, methods, seeds, densities in (
            ("200 lenet_300_100 tickets (4 methods x 10 seeds x 5 densities)", "lenet_300_100", 4, 10,
             [0.2, 0.1, 0.05, 0.02, 0.01]),
            ("50 resnet20 tickets (5 methods x 5 seeds x 2 densities)", "resnet20", 5, 5, [0.1, 0.02])):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "s"
            _synthetic_study(folder, model, methods, seeds, densities)
            t0 = time.perf_counter()
            write_report(folder)
            print(f"report of {label}: {time.perf_counter() - t0:.1f} s (target <= 30 s)", flush=True)


def sharing(repeats: int = 2) -> None:
    """IMP over densities 0.2, 0.05, 0.01 (lenet_300_100/digits, 10 epochs per training): the study's
    one shared run against running each density's job on its own (what a study without sharing
    does), after one untimed warm-up, alternating."""
    from ticketlab.study.jobs import resolve_jobs
    from ticketlab.study.run import run_job

    spec = StudySpec.from_dict({"name": "share", "model": "lenet_300_100", "dataset": "digits", "seeds": [0],
                                "densities": [0.2, 0.05, 0.01], "methods": ["imp"], "train": {"epochs": 10},
                                "device": "cpu"})
    jobs = resolve_jobs(spec)

    def shared(folder: Path) -> None:
        Study(spec, folder).run()

    def alone(folder: Path) -> None:
        (folder / "tickets").mkdir(parents=True)
        for job in jobs:
            run_job(job.__dict__, str(folder), None, None)

    times: dict[str, list[float]] = {"shared": [], "alone": []}
    for r in range(repeats + 1):
        for name, fn in ((("shared", shared), ("alone", alone)) if r % 2 else (("alone", alone), ("shared", shared))):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                fn(Path(tmp) / name)
                if r:  # the first pass warms up (data, imports)
                    times[name].append(time.perf_counter() - t0)
    rounds = [j.rounds for j in jobs]
    s_med, a_med = statistics.median(times["shared"]), statistics.median(times["alone"])
    print(f"IMP sharing: one run of {max(rounds)} rounds {s_med:.1f} s (median of {repeats}), the {len(rounds)} jobs "
          f"on their own ({sum(rounds)} rounds) {a_med:.1f} s: sharing saves {1 - s_med / a_med:.0%}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs-count", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--skip-report", action="store_true", help="skip the report-generation timings")
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
    if not args.skip_report:
        report_timing()
    sharing()
    print("two workers vs one (4 magnitude jobs on conv4/digits, 10 epochs each):")
    ratios = scaling(args.repeats)
    print(f"speed-up of 2 workers: min {min(ratios):.2f}x, median {statistics.median(ratios):.2f}x")
    print(json.dumps({"speedup_min": min(ratios), "speedup_median": statistics.median(ratios)}))


if __name__ == "__main__":
    main()
