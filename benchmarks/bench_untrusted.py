"""What the checks on untrusted files cost: ``load`` and ``read_info`` now against a baseline.

The baseline is ``ticketlab/fileformat.py`` as it was at ``--baseline`` (a git revision; default
089f9c0, the last commit before the declared-size checks of issue 12), imported from
``git show`` next to today's module. Both read the same ResNet-50-sized ticket (25.5M
parameters, masks at density 0.1, float32 ``init`` and ``final = init * mask`` snapshots), in
alternating order, ``--repeat`` times; the table gives min and median seconds and the ratios
now / baseline. Single-threaded (``OMP_NUM_THREADS=1``, ``torch`` never imported), so the
ratios hold on a busy machine too.

What changed between the two: every dataset's declared size is checked against its stored
bytes; every gzip chunk is inflated once within its declared size before HDF5 reads it; and a
read that leaves parts out (``weights=False``) still verifies their fletcher32 checksums on
the stored bytes (``verify=True``, the default).

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_untrusted.py --repeat 5
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_format import RESNET50  # noqa: E402

from ticketlab import fileformat  # noqa: E402
from ticketlab.ticket import Ticket  # noqa: E402


def baseline_module(rev: str) -> Any:
    source = subprocess.run(["git", "show", f"{rev}:ticketlab/fileformat.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "fileformat_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("fileformat_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ticket(seed: int = 0) -> Ticket:
    rng = np.random.default_rng(seed)
    masks = {n: rng.random(s) < 0.1 for n, s in RESNET50}
    init = {n: rng.standard_normal(s).astype(np.float32) for n, s in RESNET50}
    return Ticket(masks=masks, weights={"init": init, "final": {n: init[n] * masks[n] for n in masks}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="089f9c0", help="git revision of the baseline fileformat.py")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each reader (alternating)")
    args = parser.parse_args()
    old = baseline_module(args.baseline)
    path = fileformat.save(ticket(), Path(tempfile.mkdtemp()) / "resnet50.h5")
    cases: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "load (everything)": (lambda: fileformat.load(path), lambda: old.load(path)),
        "load masks only (compare)": (lambda: fileformat.load(path, weights=False, scores=False, history=False),
                                      lambda: old.load(path, weights=False, scores=False, history=False)),
        "load masks only, verify=False": (
            lambda: fileformat.load(path, weights=False, scores=False, history=False, verify=False),
            lambda: old.load(path, weights=False, scores=False, history=False)),
        "read_info": (lambda: fileformat.read_info(path), lambda: old.read_info(path)),
        "read_info verify=True (inspect)": (lambda: fileformat.read_info(path, history=True, verify=True),
                                            lambda: old.read_info(path, history=True)),
    }
    print(f"ResNet-50-sized ticket: {path.stat().st_size / 2**20:.0f} MiB; baseline {args.baseline}; "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; {args.repeat} alternating runs\n")
    print("| reader | now min / median s | baseline min / median s | ratio min / median |")
    print("|---|---|---|---|")
    for name, (now, base) in cases.items():
        times: dict[str, list[float]] = {"now": [], "base": []}
        for i in range(args.repeat):
            for label, fn in (("now", now), ("base", base)) if i % 2 == 0 else (("base", base), ("now", now)):
                t0 = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - t0)
        n, b = times["now"], times["base"]
        print(f"| {name} | {min(n):.3f} / {statistics.median(n):.3f} | {min(b):.3f} / {statistics.median(b):.3f} "
              f"| {min(n) / min(b):.2f} / {statistics.median(n) / statistics.median(b):.2f} |")


if __name__ == "__main__":
    main()
