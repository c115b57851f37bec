"""Gem-Miner's λ and score saturation on lenet_300_100/digits (issue 21, item 4).

For every λ, density and seed: ``mine("gem_miner", density=d, seed=s, miner_config={"lmbda": λ})``
with every other option at its default (150 epochs of score training, then fine-tuning). Reported
per run: the fine-tuned test accuracy; the output classes still connected to the input (a class is
connected when its row of the last layer's effective mask, ``ticketlab.metrics.graph.analyze``, is
non-empty); the share of active scores exactly at the clamp bounds (``at_upper``, ``at_lower``;
the score-training rows' columns) at the last epoch and its maximum over epochs; and, over the
freezing events, the scores tied at the threshold and how many of them the seeded draw kept.

Usage:
    python benchmarks/gem_lambda.py [--lambdas 1e-4,1e-3] [--densities 0.2,0.05,0.01] [--seeds 0,1,2]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import numpy as np


def one_run(lmbda: float, density: float, seed: int) -> dict:
    from ticketlab.metrics.graph import analyze
    from ticketlab.mining import mine

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = mine("gem_miner", model="lenet_300_100", dataset="digits", density=density, seed=seed, device="cpu",
                 miner_config={"lmbda": lmbda})
    eff = analyze(t).effective
    last = list(t.masks)[-1]
    rows = [r for r in t.history if r.get("stage") == "score_training"]
    events = [r for r in t.history if r.get("stage") == "freeze"]
    gem = next(r for r in t.history if r.get("stage") == "gem")
    return {
        "lmbda": lmbda, "density": density, "seed": seed,
        "accuracy": t.provenance["test_accuracy"],
        "classes": int(np.asarray(eff[last]).any(axis=1).sum()),
        "gem_density": gem["density"], "gem_untrained": gem["untrained_test_accuracy"],
        "at_upper_last": rows[-1]["at_upper"], "at_upper_max": max(r["at_upper"] for r in rows),
        "at_lower_last": rows[-1]["at_lower"],
        "tied": sum(r.get("tied", 0) for r in events), "tied_kept": sum(r.get("tied_kept", 0) for r in events),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lambdas", default="1e-4,1e-3")
    ap.add_argument("--densities", default="0.2,0.05,0.01")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    runs = []
    for lm in [float(x) for x in args.lambdas.split(",")]:
        for d in [float(x) for x in args.densities.split(",")]:
            for s in [int(x) for x in args.seeds.split(",")]:
                r = one_run(lm, d, s)
                runs.append(r)
                print(json.dumps(r), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1)
    print("\n| λ | density | fine-tuned acc. (seeds) | classes connected | at_upper last / max | tied (kept) |")
    print("|---:|---:|---|---|---|---|")
    groups: dict[tuple[float, float], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["lmbda"], r["density"]), []).append(r)
    for (lm, d), rs in groups.items():
        accs = [r["accuracy"] for r in rs]
        mean = statistics.mean(accs)
        print(f"| {lm:g} | {d:g} | {mean:.3f} ({' / '.join(f'{a:.3f}' for a in accs)}) "
              f"| {' / '.join(str(r['classes']) for r in rs)} "
              f"| {statistics.mean(r['at_upper_last'] for r in rs):.3f} / "
              f"{max(r['at_upper_max'] for r in rs):.3f} "
              f"| {' / '.join('%d (%d)' % (r['tied'], r['tied_kept']) for r in rs)} |")


if __name__ == "__main__":
    main()
