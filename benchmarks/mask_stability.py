"""How much of an iterative pruning-at-initialization mask is numerical noise (issue 15)?

For every iterative miner in ticketlab (SynFlow, 100 rounds; iterative SNIP), the Jaccard
index |A ∩ B| / |A ∪ B| between the mask of a run and the mask of a minimally perturbed run:

* **precision**: the scoring pass in the other float precision (SynFlow float64 -> float32,
  SNIP float32 -> float64; ``miner_config={"precision": ...}``);
* **count rule**: ``count_rule="threshold"`` (Synaptic-Flow's rule) instead of ``"exact"``;
* **+1 weight**: the same exponential schedule, except that the middle round keeps exactly one
  weight more (its density raised by 1/N, given as an explicit ``schedule``).

Everything else (model, initial weights, seed, data batch) is the same. SynFlow is data-free,
so it runs on lenet_300_100 (MNIST shape), resnet20 and vgg16 (CIFAR-10 shape) without data
files. SNIP needs training data and no CIFAR-10 files are available offline here, so iterative
SNIP runs on sklearn's digits (lenet_300_100 and resnet20; vgg16's four poolings do not fit
8x8 images) with ``--snip-rounds`` rounds.

Regenerates ``docs/results/mask_stability.md`` (1 torch thread; a few tens of minutes)::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/mask_stability.py
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from ticketlab.atomic import atomic_write_text
from ticketlab.mining import mine
from ticketlab.selection import exponential_schedule, keep_count

DOC = Path(__file__).resolve().parents[1] / "docs" / "results" / "mask_stability.md"
COMMAND = "OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/mask_stability.py"
DEFAULT_PRECISION = {"synflow": "float64", "snip": "float32"}


def jaccard(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """|A ∩ B| / |A ∪ B| over all weights of two masks with the same parameters."""
    inter = sum(int(np.logical_and(a[n], b[n]).sum()) for n in a)
    union = sum(int(np.logical_or(a[n], b[n]).sum()) for n in a)
    return inter / union if union else 1.0


def plus_one_schedule(density: float, rounds: int, total: int) -> list[float]:
    """The exponential schedule with the middle round keeping exactly one weight more."""
    sched = exponential_schedule(density, rounds)
    mid = rounds // 2 - 1  # round rounds/2 (1-based)
    bumped = sched[mid] + 1.0 / total
    for _ in range(4):  # float rounding: make the count exactly one more
        diff = keep_count(bumped, total) - keep_count(sched[mid], total) - 1
        if diff == 0:
            break
        bumped -= diff * 0.5 / total
    if keep_count(bumped, total) != keep_count(sched[mid], total) + 1 or (mid > 0 and bumped > sched[mid - 1]):
        raise SystemExit(f"cannot raise round {mid + 1} by exactly one weight")
    sched[mid] = bumped
    return sched


def runs(method: str, model: str, dataset: str, density: float, rounds: int) -> dict[str, object]:
    """The base run's masks and each perturbation's Jaccard against them, with timings."""
    common = dict(model=model, dataset=dataset, density=density, seed=0, device="cpu", omit_weights=True,
                  omit_scores=True)
    t0 = time.perf_counter()
    base = mine(method, rounds=rounds, **common)
    seconds = time.perf_counter() - t0
    other = "float32" if DEFAULT_PRECISION[method] == "float64" else "float64"
    precision = mine(method, rounds=rounds, miner_config={"precision": other}, **common)
    threshold = mine(method, rounds=rounds, count_rule="threshold", **common)
    plus_one = mine(method, schedule=plus_one_schedule(density, rounds, base.total), **common)
    return {
        "method": method, "model": model, "dataset": dataset, "density": density, "rounds": rounds,
        "total": base.total, "kept": base.kept, "seconds": seconds, "other_precision": other,
        "precision": jaccard(base.masks, precision.masks),
        "threshold": jaccard(base.masks, threshold.masks), "threshold_kept": threshold.kept,
        "plus_one": jaccard(base.masks, plus_one.masks),
    }


def render(rows: list[dict[str, object]], wall: float, snip_rounds: int) -> str:
    lines = [
        "# Mask stability of iterative pruning at initialization",
        "",
        f"Regenerate with `{COMMAND}` (issue 15). This run: {wall / 60:.1f} min wall time, "
        f"{torch.get_num_threads()} torch thread, torch {torch.__version__}, Python {platform.python_version()}, "
        f"CPU, on a shared 2-core machine (other jobs running).",
        "",
        "Each row mines one mask (seed 0, default options, exact count rule) and three minimally perturbed",
        "masks from the same initial weights; the columns give the Jaccard index |A ∩ B| / |A ∪ B| of each",
        "against the base mask (1 = identical):",
        "",
        "- **precision**: the scoring pass in the other float precision (SynFlow's default is float64,",
        "  SNIP's float32);",
        "- **threshold rule**: `--count-rule threshold`, Synaptic-Flow's per-round rule (prune every score",
        "  at or below the `int((1-d)N)`-th smallest; usually one weight more kept per round, and ties at",
        "  the threshold pruned together; `docs/selection.md`). The kept count of that run is in brackets;",
        "- **+1 weight**: the middle round keeps exactly one weight more than the schedule says",
        "  (an explicit schedule whose middle density is raised by 1/N).",
        "",
        f"SynFlow runs 100 rounds, data-free (lenet_300_100 in MNIST shape, resnet20 and vgg16 in CIFAR-10",
        f"shape). Iterative SNIP ({snip_rounds} rounds) needs training data; no CIFAR-10 files are available",
        "offline here, so it runs on sklearn digits (8x8), on lenet_300_100 and resnet20 only (vgg16's",
        "four poolings do not fit 8x8 images).",
        "",
        "| miner | model (data) | density | kept / N | precision | threshold rule (kept) | +1 weight | base run s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        name = f"{r['method']} x{r['rounds']}"
        lines.append(
            f"| {name} | {r['model']} ({r['dataset']}) | {r['density']} | {r['kept']:,} / {r['total']:,} | "
            f"{r['precision']:.4f} (vs {r['other_precision']}) | {r['threshold']:.4f} ({r['threshold_kept']:,}) | "
            f"{r['plus_one']:.4f} | {r['seconds']:.1f} |")
    lines += [
        "",
        "Reading: a Jaccard below 1 after a one-weight or rounding-level change is how much of the",
        "final mask is decided by numerical accident rather than by the method; such differences",
        "cascade through the later rounds. One-shot miners (SNIP with one round, GraSP) have no such",
        "cascade and are not listed.",
        "",
        "What the table says. SynFlow on lenet_300_100 is essentially deterministic: the precision and",
        "the one extra weight change nothing, and only the threshold rule's different per-round counts",
        "move a few per cent of the mask at density 0.01. On the deeper resnet20 and vgg16 much more",
        "of the mask is accident, each perturbation in some cell: on vgg16 at 0.01 float32 against float64 changes",
        "about a sixth of the mask (Synaptic-Flow's own float32 and float64 runs agree to 0.85, issue 15),",
        "the reference's count rule about an eighth, and one weight more in round 50 alone several per",
        "cent. Iterative SNIP is much less stable than SynFlow: one weight more in its middle round (3 of 4 cells) or",
        "the other count rule leaves a mask that shares well under half of its weights with the base",
        "mask, although none of the kept weights scores zero (it is not tie-breaking among dead",
        "weights: checked on lenet_300_100 at 0.01). Its rounds re-rank many weights of similar score,",
        "so small changes redirect the rest of the run. A published iterative-SNIP mask should come",
        "with its spread over such perturbations and seeds, not alone.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="lenet_300_100,resnet20,vgg16", help="SynFlow models")
    ap.add_argument("--densities", default="0.1,0.01")
    ap.add_argument("--snip-rounds", type=int, default=100, help="rounds of iterative SNIP (default 100)")
    ap.add_argument("--output", type=Path, default=DOC)
    args = ap.parse_args()
    torch.set_num_threads(1)
    densities = [float(d) for d in args.densities.split(",")]
    started = time.perf_counter()
    rows = []
    plan = [("synflow", m, "mnist" if m == "lenet_300_100" else "cifar10", 100) for m in args.models.split(",")]
    plan += [("snip", m, "digits", args.snip_rounds) for m in ("lenet_300_100", "resnet20")]
    for method, model, dataset, rounds in plan:
        for d in densities:
            rows.append(runs(method, model, dataset, d, rounds))
            r = rows[-1]
            print(f"{method} {model} {d}: precision {r['precision']:.4f} threshold {r['threshold']:.4f} "
                  f"+1 {r['plus_one']:.4f} ({r['seconds']:.1f} s; {(time.perf_counter() - started) / 60:.1f} min)",
                  flush=True)
    atomic_write_text(args.output, render(rows, time.perf_counter() - started, args.snip_rounds))
    print(f"wrote {args.output} (pid {os.getpid()})")


if __name__ == "__main__":
    main()
