"""Benchmark of the comparison metrics (issue 3 targets).

1. Two ResNet-50-sized random tickets (54 layers, 25.5M weights, density 0.1): every overlap
   metric with its chance fields, total and per layer (``compare(..., "overlap", per_layer=True)``),
   after the tickets are in memory. Target: <= 50 ms.
2. A 20-ticket Jaccard matrix on ResNet-50-sized tickets (``pairwise_matrix``). Target: < 10 s.
3. Effective mask and path count (``graph.analyze``) for vgg16 and resnet20 tickets (CIFAR-10
   shapes, density 0.1; topologies from ``ticketlab.models``) and, as an extra, ResNet-50 with a
   hand-built topology. Target: < 2 s each.
4. End to end through files (if ``ticketlab.fileformat`` is there): a fresh ``python`` process
   that imports ticketlab.metrics, loads two ResNet-50 ticket files masks-only and runs the
   default ``compare`` -- the API part of the ``ticketlab compare a.h5 b.h5`` budget (1.5 s).
5. The degree-preserving null (``compare(..., null="degree")``, issue 14): (a) how many global
   curveball rounds mix -- the null's mean Jaccard of two near-copy tickets with very unequal
   unit degrees against the rounds run, on LeNet and ResNet-50 layer shapes; (b) its cost on a
   ResNet-50-sized ticket (25.5M weights, density 0.1): one round over all layers, one sample
   (hub + sample = 2 x rounds rounds per ticket), and the whole ``compare(..., "jaccard",
   null="degree", null_samples=N)`` of two tickets, extrapolated from the round time.
6. Permutation-aligned comparison (``compare(..., "jaccard", align="masks", null_samples=N)``,
   issue 14) of two random tickets of lenet_300_100 (MNIST shapes), resnet20 and vgg16 (CIFAR-10
   shapes), topologies from ``ticketlab.models``. Issue target for vgg16: <= 10 s with N = 20.
   Wall and CPU time at one BLAS thread; with ``--align-baseline FILE`` (an older align.py) the
   old and new code run alternately (``--align-repeat`` each) and their records are compared.
7. The relational-graph measures (``compare(..., "relational")``, issue 26): You et al.'s C and L
   of every layer between hidden tensors, for random tickets of vgg16 and resnet18 (CIFAR-10
   shapes), ResNet-50 (hand-built topology) and an MLP with 4,096-unit layers (rounds past the
   ``relational_nodes`` limit: estimated from node samples). Per ticket: the largest round, the
   ticket's own C and L (no nulls), one degree-null sample's curveball (its cost per sample), and
   the whole ``relational_measures`` with both nulls at ``--null-samples`` samples.

BLAS and OpenMP are pinned to one thread (unless the environment already says otherwise), so
timings compare across machines and runs; part 1 also reports whether torch got imported (it
must not: the metrics are numpy only).

Usage:
    .venv/bin/python benchmarks/bench_metrics.py            # all parts
    .venv/bin/python benchmarks/bench_metrics.py --quick    # smaller matrix (5 tickets)
    .venv/bin/python benchmarks/bench_metrics.py --parts 1  # only the overlap + chance timing
    .venv/bin/python benchmarks/bench_metrics.py --parts 5  # the degree-preserving null
    .venv/bin/python benchmarks/bench_metrics.py --parts 6  # aligned comparison
    .venv/bin/python benchmarks/bench_metrics.py --parts 7 --density 0.05  # relational measures
    git show 8cfe287:ticketlab/metrics/align.py > /tmp/align_old.py
    .venv/bin/python benchmarks/bench_metrics.py --parts 6 --align-baseline /tmp/align_old.py --align-repeat 2
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy loads BLAS
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from ticketlab.metrics import compare, pairwise_matrix  # noqa: E402
from ticketlab.metrics.chance import null_stats  # noqa: E402
from ticketlab.metrics.base import pair_counts  # noqa: E402
from ticketlab.metrics.graph import _analyze  # noqa: E402
from ticketlab.ticket import Ticket  # noqa: E402

# torchvision resnet50's prunable weights (conv + fc) in named_parameters order: 54 tensors.
RESNET50: list[tuple[str, tuple[int, ...]]] = [("conv1.weight", (64, 3, 7, 7))]
_STAGES = [(3, 64), (4, 128), (6, 256), (3, 512)]
for _s, (_blocks, _w) in enumerate(_STAGES, start=1):
    _in = 64 if _s == 1 else _w * 2
    for _b in range(_blocks):
        _p = f"layer{_s}.{_b}."
        RESNET50 += [(_p + "conv1.weight", (_w, _in if _b == 0 else _w * 4, 1, 1)),
                     (_p + "conv2.weight", (_w, _w, 3, 3)), (_p + "conv3.weight", (_w * 4, _w, 1, 1))]
        if _b == 0:
            RESNET50.append((_p + "downsample.0.weight", (_w * 4, _in, 1, 1)))
RESNET50.append(("fc.weight", (1000, 2048)))


def resnet50_topology() -> dict[str, Any]:
    """The layered graph of torchvision's resnet50 (bottlenecks, 1x1 downsample shortcuts)."""
    tensors: dict[str, int] = {"input": 3, "stem": 64}
    edges: list[dict[str, Any]] = [{"param": "conv1.weight", "src": "input", "dst": "stem", "kind": "conv", "group": 1}]
    x = "stem"
    for s, (blocks, w) in enumerate(_STAGES, start=1):
        for b in range(blocks):
            p = f"layer{s}.{b}."
            a, m, o = p + "a", p + "b", p + "out"
            tensors.update({a: w, m: w, o: 4 * w})
            edges += [{"param": p + "conv1.weight", "src": x, "dst": a, "kind": "conv", "group": 1},
                      {"param": p + "conv2.weight", "src": a, "dst": m, "kind": "conv", "group": 1},
                      {"param": p + "conv3.weight", "src": m, "dst": o, "kind": "conv", "group": 1}]
            if b == 0:
                edges.append({"param": p + "downsample.0.weight", "src": x, "dst": o, "kind": "conv", "group": 1})
            else:
                edges.append({"identity": True, "src": x, "dst": o})
            x = o
    tensors["logits"] = 1000
    edges.append({"param": "fc.weight", "src": x, "dst": "logits", "kind": "linear", "group": 1})
    return {"tensors": tensors, "edges": edges, "input": "input", "output": "logits"}


def random_ticket(shapes: list[tuple[str, tuple[int, ...]]], density: float, seed: int, **kw: Any) -> Ticket:
    rng = np.random.default_rng(seed)
    return Ticket(masks={n: rng.random(s, dtype=np.float32) < density for n, s in shapes}, **kw)


def timeit(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, float, float]:
    """(first call, best, median) seconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times[0], min(times), statistics.median(times)


def line(what: str, first: float, best: float, median: float, target: float | None = None) -> None:
    mark = "" if target is None else ("  OK" if best <= target else "  OVER TARGET")
    tgt = "" if target is None else f"  (target {target * 1e3:.0f} ms)"
    print(f"{what:<58} first {first * 1e3:9.1f} ms  best {best * 1e3:9.1f} ms  median {median * 1e3:9.1f} ms{tgt}{mark}")


def bench_overlap(density: float) -> None:
    a, b = random_ticket(RESNET50, density, 1), random_ticket(RESNET50, density, 2)
    n = sum(math.prod(s) for _, s in RESNET50)
    print(f"\n[1] two ResNet-50-sized tickets: {len(RESNET50)} layers, {n:,} weights, density {density}")
    line("overlap + chance, total + per layer (7 metrics)", *timeit(lambda: compare([a, b], "overlap", per_layer=True)), 0.050)
    line("overlap + chance, total only", *timeit(lambda: compare([a, b], "overlap")))
    line("default metrics (overlap, units, sparsity), per layer", *timeit(lambda: compare([a, b], per_layer=True)))
    counts = pair_counts(a, b)
    line("null_stats alone (both nulls, exact per-layer tails)", *timeit(lambda: null_stats(counts), repeat=20))
    print(f"    torch imported: {'torch' in sys.modules}")


def bench_matrix(k: int, density: float) -> None:
    print(f"\n[2] {k}-ticket Jaccard matrix on ResNet-50-sized tickets (density {density})")
    t = time.perf_counter()
    tickets = [random_ticket(RESNET50, density, 100 + i) for i in range(k)]
    print(f"    (making the tickets: {time.perf_counter() - t:.1f} s, not timed below)")
    line(f"pairwise_matrix(jaccard), {k * (k - 1) // 2} pairs", *timeit(lambda: pairwise_matrix(tickets, "jaccard"), repeat=2), 10.0)
    mat = pairwise_matrix(tickets, "jaccard")
    line("clustering order + MDS embedding", *timeit(lambda: (mat.order(), mat.embedding(seed=0)), repeat=2))


def model_cases(names: tuple[str, ...]) -> list[tuple[str, list[tuple[str, tuple[int, ...]]], dict[str, Any]]]:
    """(name, prunable shapes, topology) of each CIFAR-shaped model in ``names``, then a ResNet-50
    built by hand (its topology without torch)."""
    cases: list[tuple[str, list[tuple[str, tuple[int, ...]]], dict[str, Any]]] = []
    try:
        from ticketlab.data.base import DataSpec
        from ticketlab.models import create_model, model_topology, prunable_parameters

        spec = DataSpec("cifar10", "tensor", (3, 32, 32), 10)
        for name in names:
            net = create_model(name, spec, seed=0)
            shapes = [(n, tuple(p.shape)) for n, p in prunable_parameters(net).items()]
            cases.append((name, shapes, model_topology(net, spec)))
    except ImportError as exc:  # pragma: no cover
        print(f"    (ticketlab.models unavailable: {exc})")
    cases.append(("resnet50 (hand-built topology)", RESNET50, resnet50_topology()))
    return cases


def bench_graph(density: float) -> None:
    print(f"\n[3] effective mask + path count (graph.analyze), density {density}")
    cases = model_cases(("vgg16", "resnet20"))
    for name, shapes, topo in cases:
        t = random_ticket(shapes, density, 7)
        size = sum(math.prod(s) for _, s in shapes)
        res = _analyze(t.masks, topo, None)
        line(f"{name}: {size:,} weights, log10 paths {res.log10_paths:.1f}",
             *timeit(lambda: _analyze(t.masks, topo, None), repeat=3), 2.0)


def bench_files(density: float) -> None:
    try:
        from ticketlab.fileformat import save
    except ImportError:  # pragma: no cover
        print("\n[4] skipped: ticketlab.fileformat is not available")
        return
    print("\n[4] end to end through files (fresh process: imports + masks-only load + default compare)")
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"{x}.h5" for x in "ab"]
        for i, p in enumerate(paths):
            save(random_ticket(RESNET50, density, i + 1), p)
        code = (
            "import time, sys; t = time.perf_counter()\n"
            "import ticketlab.metrics as M\n"
            "t1 = time.perf_counter()\n"
            f"recs = M.compare([r'{paths[0]}', r'{paths[1]}'])\n"
            "t2 = time.perf_counter()\n"
            "print(f'{t1 - t:.3f} {t2 - t1:.3f} {len(recs)} {\"torch\" in sys.modules}')\n"
        )
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
            runs.append((time.perf_counter() - t, float(out[0]), float(out[1]), out[3]))
        wall, imp, work, torch = min(runs)
        print(f"    wall {wall:.2f} s (python start-up + import {imp:.2f} s + load and compare {work:.2f} s), "
              f"torch imported: {torch}")
        cli = [sys.executable, "-m", "ticketlab", "compare", str(paths[0]), str(paths[1])]
        walls = []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run(cli, capture_output=True, text=True, check=True)
            walls.append(time.perf_counter() - t)
        print(f"    `ticketlab compare a.h5 b.h5` wall: best {min(walls):.2f} s, median "
              f"{sorted(walls)[1]:.2f} s (target < 1.5 s)")


def _hetero(shape: tuple[int, ...], density: float, rng: np.random.Generator) -> np.ndarray:
    """A mask whose units have very unequal degrees (gamma(0.5) propensities per row and column)."""
    r, c = rng.gamma(0.5, size=shape[0]), rng.gamma(0.5, size=math.prod(shape[1:]))
    p = np.outer(r, c)
    return (rng.random(p.shape) < np.minimum(p / p.mean() * density, 1)).reshape(shape)


def bench_degree(density: float, samples: int) -> None:
    from ticketlab.metrics.degree import DEFAULT_ROUNDS, DegreeNull, curveball, layer_samples

    print(f"\n[5] degree-preserving null (global curveball; default rounds {DEFAULT_ROUNDS})")
    print("    (a) mixing: mean null Jaccard of a near copy (2% flipped) over 8 chains vs rounds run")
    checkpoints = (0, 1, 2, 5, 10, 20, 30, 60, 120)
    rng = np.random.default_rng(0)
    for name, shape in (("lenet fc1", (300, 784)), ("resnet50 layer3.0.conv2", (256, 256, 3, 3)),
                        ("resnet50 fc", (1000, 2048))):
        a = _hetero(shape, density, rng)
        b = a ^ (rng.random(a.shape) < 0.02)
        gens = [np.random.default_rng(10 + k) for k in range(8)]
        xa, xb, done, cells = [a] * 8, [b] * 8, 0, []
        for r in checkpoints:
            xa = [curveball(x, r - done, g) for x, g in zip(xa, gens)]
            xb = [curveball(x, r - done, g) for x, g in zip(xb, gens)]
            done = r
            js = np.array([(x & y).sum() / (x | y).sum() for x, y in zip(xa, xb)])
            cells.append(f"{r}:{js.mean():.4f}")
        lines = min(shape[0], math.prod(shape[1:]))
        print(f"    {name} {shape} ({lines // 2} trades per round): " + " ".join(cells))
    n = sum(math.prod(s) for _, s in RESNET50)
    print(f"    (b) cost on a ResNet-50-sized ticket: {len(RESNET50)} layers, {n:,} weights, density {density}")
    t = random_ticket(RESNET50, density, 1)
    masks = list(t.masks.values())
    first, best, median = timeit(lambda: [curveball(m, 1, np.random.default_rng(0)) for m in masks], repeat=3)
    line("one global curveball round, all layers", first, best, median)
    null = DegreeNull(samples=1, seed=0)
    start = time.perf_counter()
    for i, m in enumerate(masks):
        layer_samples(m, null, 0, i)
    one = time.perf_counter() - start
    print(f"    one ticket, hub + 1 sample ({2 * null.rounds} rounds): {one:.1f} s; each further sample "
          f"{one / 2:.1f} s ({null.rounds} rounds)")
    total = 2 * one / 2 * (samples + 1)
    print(f"    => compare(two tickets, null='degree', null_samples={samples}): about {total:.0f} s "
          f"(2 tickets x {samples + 1} x {null.rounds} rounds; overlap counts of the samples are negligible)")


def _load_align_baseline(path: str) -> Any:
    """An older ``ticketlab/metrics/align.py`` (e.g. ``git show REV:ticketlab/metrics/align.py > FILE``)
    as a module of its own, to time against the current one."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_align_baseline", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def bench_align(density: float, samples: int, baseline: str | None = None, repeat: int = 1) -> None:
    import ticketlab.metrics.align as align_module
    from ticketlab.data.base import DataSpec
    from ticketlab.models import create_model, model_topology, prunable_parameters

    t = time.perf_counter()
    import scipy.optimize  # noqa: F401  (imported once per process by the first alignment; not timed below)

    print(f"\n[6] aligned comparison (compare(a, b, 'jaccard', align='masks', null_samples={samples})), "
          f"density {density}; OMP/BLAS threads {os.environ['OMP_NUM_THREADS']}")
    print(f"    (scipy.optimize import: {time.perf_counter() - t:.2f} s, once per process, not timed; torch builds "
          "the shapes and topologies only, before any timing)")
    cases = []
    import torch

    torch.set_num_threads(1)
    for name, spec in (("lenet_300_100", DataSpec("mnist", "tensor", (1, 28, 28), 10)),
                       ("resnet20", DataSpec("cifar10", "tensor", (3, 32, 32), 10)),
                       ("vgg16", DataSpec("cifar10", "tensor", (3, 32, 32), 10))):
        net = create_model(name, spec, seed=0)
        shapes = [(n, tuple(p.shape)) for n, p in prunable_parameters(net).items()]
        cases.append((name, shapes, model_topology(net, spec)))
    versions = {"new": (align_module.align, align_module.aligned_null_counts)}
    if baseline:
        old = _load_align_baseline(baseline)
        versions["old"] = (old.align, old.aligned_null_counts)
        print(f"    old: {baseline}; runs alternate new/old, {repeat} each; wall and CPU seconds, min / median")
    current = versions["new"]
    for name, shapes, topo in cases:
        a, b = (random_ticket(shapes, density, s, provenance={"topology": topo}) for s in (1, 2))
        size = sum(math.prod(s) for _, s in shapes)
        runs: dict[str, list[tuple[float, float]]] = {v: [] for v in versions}
        records: dict[str, Any] = {}
        try:
            for _ in range(repeat):
                for v, (align_fn, null_fn) in versions.items():  # compare imports these from the module per call
                    align_module.align, align_module.aligned_null_counts = align_fn, null_fn
                    wall, cpu = time.perf_counter(), time.process_time()
                    records[v] = compare([a, b], ["jaccard"], align="masks", null_samples=samples)
                    runs[v].append((time.perf_counter() - wall, time.process_time() - cpu))
        finally:
            align_module.align, align_module.aligned_null_counts = current
        rec = records["new"][0]
        target = "  (target 10 s)" if name == "vgg16" else ""
        print(f"    {name}: {size:,} weights, value {rec['value']:.4f}, aligned null {rec['expected_aligned']:.4f} "
              f"+- {rec['sd_aligned']:.4f}, p {rec['p_aligned']:.3f}{target}")
        for v, xs in runs.items():
            walls, cpus = [x[0] for x in xs], [x[1] for x in xs]
            print(f"      {v}: wall {min(walls):6.2f} / {statistics.median(walls):6.2f} s   "
                  f"CPU {min(cpus):6.2f} / {statistics.median(cpus):6.2f} s")
        if "old" in records:
            # the aligned values must agree; the null's random masks are drawn differently since e6bd262
            # (kept positions without replacement instead of a shuffle: same distribution, other stream)
            same = [r["value"] for r in records["old"]] == [r["value"] for r in records["new"]]
            print(f"      aligned values old == new: {same} (the null's samples differ: another random stream)")
        if name == "vgg16":  # the null's seeded random masks (kept positions drawn without replacement)
            rng = np.random.default_rng(0)
            cpu = time.process_time()
            for _ in range(2):
                align_module.random_masks(a, rng), align_module.random_masks(b, rng)
            each = (time.process_time() - cpu) / 2
            print(f"      of which the null's random masks (two seeded draws over {size:,} weights per sample): "
                  f"about {each * samples:.1f} s CPU ({each:.2f} s per sample)")


def bench_relational(density: float, samples: int) -> None:
    from ticketlab.limits import value
    from ticketlab.metrics.degree import DegreeNull, layer_samples
    from ticketlab.metrics.relational import measure, relational_adjacency, relational_measures, rounds_of
    from ticketlab.network import unit_graph

    print(f"\n[7] relational measures (C, L; issue 26), density {density}, {samples} samples per null")
    cases = model_cases(("vgg16", "resnet18"))
    mlp = [("fc1.weight", (4096, 784)), ("fc2.weight", (4096, 4096)), ("fc3.weight", (4096, 4096)),
           ("fc4.weight", (10, 4096))]
    cases.append(("mlp 784-4096-4096-4096-10", mlp, {}))
    limit = value("relational_nodes")
    for name, shapes, topo in cases:
        t = random_ticket(shapes, density, 7, **({"provenance": {"topology": topo}} if topo else {}))
        g = unit_graph(t)
        rounds = rounds_of(g)
        big = max(rounds, key=lambda b: min(b.matrix.shape))
        n = min(big.matrix.shape)
        size = sum(math.prod(s) for _, s in shapes)
        print(f"    {name}: {size:,} weights, {len(rounds)} rounds, largest {big.param} with {n:,} nodes "
              f"({'estimated' if n > limit else 'exact'}; limit {limit:,})")
        sample = np.arange(min(n, 256)) if n > limit else None
        line("      largest round: its graph + C and L", *timeit(lambda: measure(relational_adjacency(big.matrix), sample), repeat=3))
        start, cpu = time.perf_counter(), time.process_time()
        relational_measures(t, null=DegreeNull(samples=1, rounds=1))  # the ticket + 1 sample of each null, 1 round
        own, own_cpu = time.perf_counter() - start, time.process_time() - cpu
        start, cpu = time.perf_counter(), time.process_time()
        for b in rounds:  # hub + one sample = 2 x 30 curveball rounds per layer
            layer_samples(t.masks[b.param], DegreeNull(samples=1), 0, 0)
        curve, curve_cpu = (time.perf_counter() - start) / 2, (time.process_time() - cpu) / 2
        print(f"      ticket + 1 sample of each null (1 curveball round): {own:.1f} s wall, {own_cpu:.1f} s CPU; "
              f"degree null's curveball per sample (x {samples + 1} with the hub): {curve:.1f} s wall, {curve_cpu:.1f} s CPU")
        start, cpu = time.perf_counter(), time.process_time()
        relational_measures(t, null=DegreeNull(samples=samples))
        print(f"      relational_measures, both nulls, {samples} samples: {time.perf_counter() - start:.1f} s wall, "
              f"{time.process_time() - cpu:.1f} s CPU")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--density", type=float, default=0.1)
    ap.add_argument("--tickets", type=int, default=20, help="tickets in the matrix benchmark")
    ap.add_argument("--quick", action="store_true", help="5 tickets in the matrix benchmark")
    ap.add_argument("--parts", default="1234567", help="which parts to run, e.g. 1 or 13 (default: all)")
    ap.add_argument("--null-samples", type=int, default=20,
                    help="null samples in the degree-null estimate and the aligned null (part 6)")
    ap.add_argument("--align-baseline", metavar="FILE", help="part 6: an older align.py to time against "
                    "(git show REV:ticketlab/metrics/align.py > FILE)")
    ap.add_argument("--align-repeat", type=int, default=1, help="part 6: runs of each version (alternating)")
    args = ap.parse_args()
    threads = os.environ["OMP_NUM_THREADS"]
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, OMP/BLAS threads {threads}")
    if "1" in args.parts:
        bench_overlap(args.density)
    if "2" in args.parts:
        bench_matrix(5 if args.quick else args.tickets, args.density)
    if "3" in args.parts:
        bench_graph(args.density)
    if "4" in args.parts:
        bench_files(args.density)
    if "5" in args.parts:
        bench_degree(args.density, args.null_samples)
    if "6" in args.parts:
        bench_align(args.density, args.null_samples, args.align_baseline, args.align_repeat)
    if "7" in args.parts:
        bench_relational(args.density, args.null_samples)


if __name__ == "__main__":
    main()
