"""Benchmark of the ticket file format on a ResNet-50-sized random mask set.

Reports the file size in bits per parameter against the entropy bound H(d) of an i.i.d.
Bernoulli(d) mask, and the times of save, load (target < 0.3 s for 25.6M parameters), read_info
and ``python -m ticketlab inspect FILE``. ``--sweep`` compares mask encodings (the gzip level
of the format, and a zlib Huffman-only stream as a reference); ``--weights`` adds float32
init/final weight snapshots (final = init * mask) stored raw, always compressed, and as the
format does (shuffle + gzip only for arrays with many exact zeros), to see whether compression pays.

Usage:
    .venv/bin/python benchmarks/bench_format.py --params 25600000 --density 0.1
    .venv/bin/python benchmarks/bench_format.py --sweep --weights
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from ticketlab import fileformat
from ticketlab.fileformat import load, read_info, save
from ticketlab.ticket import Ticket

# Prunable weights (conv and fc, no biases or batch norm) of torchvision's resnet50, in
# named_parameters order: 54 tensors, 25,502,912 weights. Hard-coded so no torch is imported.
RESNET50: list[tuple[str, tuple[int, ...]]] = [("conv1.weight", (64, 3, 7, 7))]
for _layer, (_blocks, _width) in enumerate([(3, 64), (4, 128), (6, 256), (3, 512)], start=1):
    _in = 64 if _layer == 1 else _width * 2
    for _b in range(_blocks):
        _p = f"layer{_layer}.{_b}."
        _cin = _in if _b == 0 else _width * 4
        RESNET50 += [
            (_p + "conv1.weight", (_width, _cin, 1, 1)),
            (_p + "conv2.weight", (_width, _width, 3, 3)),
            (_p + "conv3.weight", (_width * 4, _width, 1, 1)),
        ]
        if _b == 0:
            RESNET50.append((_p + "downsample.0.weight", (_width * 4, _in, 1, 1)))
RESNET50.append(("fc.weight", (1000, 2048)))
assert len(RESNET50) == 54 and sum(math.prod(s) for _, s in RESNET50) == 25_502_912


def layer_shapes(n_params: int) -> list[tuple[str, tuple[int, ...]]]:
    """ResNet-50's layers, repeated or cut to reach ``n_params``; the rest is a 1-D 'extra' layer."""
    out: list[tuple[str, tuple[int, ...]]] = []
    left, copy = n_params, 0
    while True:
        for name, shape in RESNET50:
            size = math.prod(shape)
            if size > left:
                if left:
                    out.append(("extra.weight", (left,)))
                return out
            out.append((f"copy{copy}.{name}" if copy else name, shape))
            left -= size
        copy += 1


def entropy(d: float) -> float:
    """H(d) in bits: the least bits per parameter any code needs for an i.i.d. Bernoulli(d) mask."""
    return 0.0 if d in (0.0, 1.0) else -(d * math.log2(d) + (1 - d) * math.log2(1 - d))


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """Fastest of ``repeat`` wall-clock runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def random_masks(shapes: list[tuple[str, tuple[int, ...]]], density: float, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.random(shape, dtype=np.float32) < density for name, shape in shapes}


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))


def main_table(args: argparse.Namespace, folder: Path) -> None:
    shapes = layer_shapes(args.params)
    masks = random_masks(shapes, args.density, args.seed)
    ticket = Ticket(masks=masks, provenance={"method": "random", "density": args.density, "seed": args.seed})
    path = folder / "ticket.h5"
    t_save = best_time(lambda: save(ticket, path), args.repeat)
    t_load = best_time(lambda: load(path), args.repeat)
    t_info = best_time(lambda: read_info(path), args.repeat)
    back = load(path)
    assert all(np.array_equal(back.masks[n], m) for n, m in masks.items()), "round-trip failed"
    bits = path.stat().st_size * 8 / ticket.total
    h = entropy(ticket.density)

    def wall(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True)
        return time.perf_counter() - start, done

    t_python, _ = wall([sys.executable, "-c", "import ticketlab.fileformat"])
    t_inspect, done = wall([sys.executable, "-m", "ticketlab", "inspect", str(path)])
    if done.returncode == 0:
        inspect = f"{t_inspect:.3f} s"
    else:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        inspect = f"skipped (exit {done.returncode}: {last[:70]})"
    rows = [
        ["parameters", f"{ticket.total:,} in {len(masks)} layers"],
        ["density", f"{ticket.density:.4f}"],
        ["file size", f"{path.stat().st_size / 2**20:.2f} MiB ({path.stat().st_size:,} bytes)"],
        ["bits / parameter", f"{bits:.4f}"],
        ["entropy bound H(d)", f"{h:.4f}"],
        ["ratio to bound", f"{bits / h:.3f}" if h else "-"],
        ["save", f"{t_save:.3f} s"],
        ["load (target < 0.3 s)", f"{t_load:.3f} s"],
        ["read_info", f"{t_info * 1e3:.1f} ms"],
        ["python + import fileformat", f"{t_python:.3f} s"],
        ["python -m ticketlab inspect", inspect],
    ]
    title = f"ticket file format v{fileformat.FORMAT_VERSION}, masks only (best of {args.repeat})"
    table(title, ["measure", "value"], rows)


def sweep_table(args: argparse.Namespace, folder: Path) -> None:
    """Bits/parameter and times of mask encodings over densities (25.6M-parameter layer set)."""
    shapes = layer_shapes(args.params)
    rows = []
    for d in (0.5, 0.2, 0.1, 0.05, 0.01):
        packed = [np.packbits(m.reshape(-1), bitorder="big") for m in random_masks(shapes, d, args.seed).values()]
        n = sum(math.prod(s) for _, s in shapes)
        for level in (1, 4, 6, 9):
            path = folder / "sweep.h5"

            def write() -> None:
                with h5py.File(path, "w", libver=fileformat._LIBVER) as f:
                    for i, p in enumerate(packed):
                        f.create_dataset(str(i), data=p, chunks=(min(p.size, fileformat._CHUNK_BYTES),),
                                         compression="gzip", compression_opts=level, fletcher32=True)  # as the format

            def read() -> None:
                with h5py.File(path, "r") as f:
                    for i in range(len(packed)):
                        f[str(i)][()]

            t_w, t_r = best_time(write, 1), best_time(read, args.repeat)
            bits = path.stat().st_size * 8 / n
            rows.append([f"{d}", f"{entropy(d):.4f}", f"hdf5 gzip {level}", f"{bits:.4f}", f"{bits / entropy(d):.3f}",
                         f"{t_w:.3f}", f"{t_r:.3f}"])
        # Reference only (not the format): zlib's Huffman-only strategy, which HDF5's gzip filter cannot select.
        start = time.perf_counter()
        streams = []
        for p in packed:
            c = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_HUFFMAN_ONLY)
            streams.append(c.compress(p.tobytes()) + c.flush())
        t_w = time.perf_counter() - start
        t_r = best_time(lambda: [zlib.decompress(s) for s in streams], args.repeat)
        bits = sum(len(s) for s in streams) * 8 / n
        rows.append([f"{d}", f"{entropy(d):.4f}", "zlib huffman-only*", f"{bits:.4f}", f"{bits / entropy(d):.3f}",
                     f"{t_w:.3f}", f"{t_r:.3f}"])
    table("mask encodings (* reference, not used: needs an opaque zlib stream instead of the HDF5 filter)",
          ["density", "H(d)", "encoding", "bits/param", "ratio", "write s", "read s"], rows)


def weights_table(args: argparse.Namespace, folder: Path) -> None:
    """Weight snapshots raw vs shuffle+gzip: init (dense normal), final masked (zeros where pruned)."""
    shapes = layer_shapes(args.params)
    masks = random_masks(shapes, args.density, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    init = {n: (rng.standard_normal(s, dtype=np.float32) * 0.05) for n, s in shapes}
    final = {n: w * masks[n] for n, w in init.items()}  # a trained-with-mask net keeps pruned weights at 0
    ticket = Ticket(masks=masks, weights={"init": init, "final": final})
    rows = []
    chosen = fileformat._ARRAY_MIN_ZEROS
    variants = [("raw, never compressed", 2.0), ("shuffle+gzip 1, always", 0.0),
                (f"format: shuffle+gzip 1 if >= {chosen:.0%} zeros", chosen)]
    path = folder / "weights.h5"
    try:
        for label, min_zeros in variants:
            fileformat._ARRAY_MIN_ZEROS = min_zeros
            t_save = best_time(lambda: save(ticket, path), 1)
            t_load = best_time(lambda: load(path), args.repeat)
            t_masks = best_time(lambda: load(path, weights=False), args.repeat)
            rows.append([label, f"{path.stat().st_size / 2**20:.1f} MiB", f"{t_save:.2f}", f"{t_load:.2f}",
                         f"{t_masks:.3f}"])
    finally:
        fileformat._ARRAY_MIN_ZEROS = chosen
    raw = 2 * 4 * ticket.total / 2**20
    table(f"masks + init + final float32 weights ({raw:.0f} MiB raw weights, final = init * mask)",
          ["weights stored", "file", "save s", "load s", "load(weights=False) s"], rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=int, default=25_600_000, help="number of mask entries (default 25.6M)")
    parser.add_argument("--density", type=float, default=0.1, help="fraction of weights kept (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the numpy Generator (default 0)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measure; the best is shown")
    parser.add_argument("--sweep", action="store_true", help="also compare mask encodings over densities")
    parser.add_argument("--weights", action="store_true", help="also time weight snapshots, raw vs compressed")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        main_table(args, Path(tmp))
        if args.sweep:
            sweep_table(args, Path(tmp))
        if args.weights:
            weights_table(args, Path(tmp))


if __name__ == "__main__":
    main()
