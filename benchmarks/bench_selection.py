"""Micro-benchmark of one round's selection (issue 15): ``select_top`` now against the implementation
at commit 8cfe287 (before the issue-15 work: float64 copies of the alive scores gathered with
``nonzero``, one ``kthvalue`` over their concatenation, scattered back), on vgg16's prunable
parameters (CIFAR-10 shape, 14.7M weights).

Cases (each checks that both implementations give the same masks, bit for bit):

* random uniform scores, float64 and float32: a dense first round (density 0.955 of all alive),
  and a late round (95 % of the weights already pruned at random, keep 4.5 %);
* SynFlow's own scores on vgg16 (float64 and float32 scoring) at rounds 1, 50 and 90 of its
  100-round schedule to density 0.01: many decades of values, exact zeros and ties late
  (``--no-synflow`` skips them; building them runs 90 SynFlow rounds, ~20-40 s);
* for scale, one SynFlow forward+backward pass on vgg16 in float64 and float32.

Runs alternate (old, new, old, new, ...) with 1 torch thread; the table gives min and median.
Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_selection.py [--repeat 5] [--no-synflow]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import time
import types
from pathlib import Path

import torch

from ticketlab.data import shape_only
from ticketlab.miners import MiningContext, get_miner
from ticketlab.models import create_model, prunable_parameters
from ticketlab.selection import SelectionBuffers, exponential_schedule, select_top

BASELINE_COMMIT = "8cfe287"
ROOT = Path(__file__).resolve().parents[1]


def baseline_select_top():
    """``select_top`` as it was at :data:`BASELINE_COMMIT` (read with ``git show``)."""
    source = subprocess.run(["git", "show", f"{BASELINE_COMMIT}:ticketlab/selection.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType("selection_baseline")
    exec(compile(source, "selection_baseline.py", "exec"), module.__dict__)  # noqa: S102  (our own history)
    return module.select_top


def vgg16() -> tuple[torch.nn.Module, MiningContext]:
    data = shape_only("cifar10")
    net = create_model("vgg16", data.spec, seed=0)
    ctx = MiningContext(model=net, params=prunable_parameters(net), spec=data.spec, data=data,
                        device=torch.device("cpu"), seed=0, generator=torch.Generator().manual_seed(0))
    return net, ctx


def random_cases(shapes: dict[str, torch.Size]) -> list[tuple[str, dict, float, dict | None]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for dtype in (torch.float64, torch.float32):
        scores = {n: torch.rand(s, generator=g, dtype=dtype) for n, s in shapes.items()}
        masks = {n: torch.rand(s, generator=g) < 0.05 for n, s in shapes.items()}
        name = str(dtype).replace("torch.", "")
        out.append((f"uniform {name}, dense round (keep 95.5 %)", scores, 0.955, None))
        out.append((f"uniform {name}, 5 % alive, keep 4.5 %", scores, 0.045, masks))
    return out


def synflow_cases(ctx: MiningContext, rounds_at: tuple[int, ...] = (1, 50, 90)) -> tuple[list, dict[str, float]]:
    """SynFlow's real scores and masks at the given rounds of 100 (to density 0.01), and the time
    of one scoring pass (forward + backward) per precision."""
    out, score_time = [], {}
    schedule = exponential_schedule(0.01, 100)
    for precision in ("float64", "float32"):
        miner = get_miner("synflow")(precision=precision)
        miner.prepare(ctx)
        masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in ctx.params.items()}
        buffers = SelectionBuffers()
        times = []
        for k in range(1, max(rounds_at) + 1):
            t0 = time.perf_counter()
            scores = miner.score(ctx, masks)
            times.append(time.perf_counter() - t0)
            if k in rounds_at:
                out.append((f"synflow {precision} scores, round {k} (keep {schedule[k - 1]:.3g})",
                            {n: s.clone() for n, s in scores.items()}, schedule[k - 1],
                            None if k == 1 else {n: m.clone() for n, m in masks.items()}))
            masks = select_top(scores, schedule[k - 1], masks=masks, buffers=buffers)
        miner.finish(ctx)
        score_time[precision] = min(times)
    return out, score_time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs of each implementation, alternating (default 5)")
    ap.add_argument("--no-synflow", action="store_true", help="skip the cases with SynFlow's real scores")
    args = ap.parse_args()
    torch.set_num_threads(1)
    old_select = baseline_select_top()
    _, ctx = vgg16()
    shapes = {n: p.shape for n, p in ctx.params.items()}
    total = sum(s.numel() for s in shapes.values())
    print(f"torch {torch.__version__}, Python {platform.python_version()}, {torch.get_num_threads()} torch thread, "
          f"CPU; vgg16 (CIFAR-10 shape): {total:,} prunable weights in {len(shapes)} parameters")
    cases = random_cases(shapes)
    score_time: dict[str, float] = {}
    if not args.no_synflow:
        more, score_time = synflow_cases(ctx)
        cases += more
    buffers = SelectionBuffers()
    print(f"\n| case | {BASELINE_COMMIT} min / median s | now min / median s | speed-up (min) |")
    print("|---|---:|---:|---:|")
    for label, scores, d, masks in cases:
        old_t, new_t = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            old = old_select(scores, d, masks=masks)
            old_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            new = select_top(scores, d, masks=masks, buffers=buffers)
            new_t.append(time.perf_counter() - t0)
            if not all(torch.equal(old[n], new[n]) for n in scores):
                raise SystemExit(f"the masks differ on case '{label}'")
        print(f"| {label} | {min(old_t):.3f} / {statistics.median(old_t):.3f} | "
              f"{min(new_t):.3f} / {statistics.median(new_t):.3f} | {min(old_t) / min(new_t):.1f}x |")
    for precision, t in score_time.items():
        print(f"\none SynFlow scoring pass (forward + backward) on vgg16, {precision}: {t:.3f} s (min)")


if __name__ == "__main__":
    main()
