"""Issue 14's results: comparing tickets beyond chance. Regenerates ``docs/results/compare_beyond.md``
and its plots (``docs/results/compare_beyond/``).

Four sections, each a function of ticketlab's public API that returns plain numbers:

1. **alignment** (``compare(align="masks" | "weights")``): two IMP tickets and two SynFlow tickets of
   lenet_300_100 / digits from different seeds, raw and aligned overlap against their nulls, and
   the control B = A with its hidden units permuted (``permute_ticket``), which must align back
   exactly;
2. **degree-preserving null** (``compare(null="degree")``): SNIP vs magnitude at init and SNIP vs
   SynFlow, the share of the overlap above the hypergeometric chance that the units' degrees
   explain, and the null's Jaccard against the number of curveball rounds;
3. **mask distance during training** (``mine(track_masks=, early_bird=)``): Early-Bird distance
   curves against their chance 2d(1 - d), and Early-Bird stops against the full runs;
4. **loss barrier** (``ticketlab.metrics.barrier``) between successive IMP rounds
   (``mine(save_rounds=)``); skipped with a message while that module does not import.

Every section stores its numbers in ``OUT/compare_beyond/sectionN.json``; the page is assembled
from all the JSON files present, so ``--sections 4`` recomputes section 4 only and merges it into
the page. Tickets are mined at run time (section 4 writes its per-round files under ``--cache``,
deleted and mined again each time).

Usage (from the repository root)::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/compare_beyond.py --jobs 2      # all
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/compare_beyond.py --sections 4  # one
    .venv/bin/python benchmarks/compare_beyond.py --report-only           # the page from the JSON
    .venv/bin/python benchmarks/compare_beyond.py --quick --out /tmp/cb   # smoke test, tiny settings
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PAGE = "compare_beyond.md"
FOLDER = "compare_beyond"
COMMAND = "OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/compare_beyond.py"
SECTIONS = (1, 2, 3, 4)
#: Frankle et al. 2020 (linear mode connectivity, Sec. 3) call two networks connected when the
#: error barrier between them is below 2 %.
CONNECTED = 0.02
#: A round's ticket is "matching" (Frankle et al. 2020; Paul et al. 2022) when its test accuracy
#: is within this of the dense network's (same seed).
MATCHING = 0.01


@dataclass(frozen=True)
class Settings:
    """Sizes of every experiment (``FULL`` for the page, ``QUICK`` for the smoke test)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    train_epochs: int | None = None  # None: the model's default (lenet / digits: Adam 1.2e-3, 20 epochs)
    imp_rounds: int = 12  # density 0.8 ** 12 = 0.069 (IMP's default 20 % per round)
    null_samples: int = 20  # aligned nulls (the default)
    null_rounds: int = 30  # curveball rounds of the degree null (ticketlab's default)
    degree_densities: tuple[float, ...] = (0.1, 0.05, 0.02)
    degree_samples: int = 100
    mixing_rounds: tuple[int, ...] = (1, 2, 3, 5, 10, 20, 30, 50, 100)
    mixing_samples: int = 20
    track_every: int = 5  # iterations between tracked masks of the curves
    eb_every: int = 18  # Early-Bird runs: one epoch of lenet / digits (1,079 / 60 -> 18 batches)
    eb_eps: float = 0.1  # You et al. 2020's threshold, here relative to chance
    eb_densities: tuple[float, ...] = (0.05, 0.1, 0.2)
    imp_track_rounds: int = 5
    conv4_epochs: int | None = 10  # None: no conv4 curve
    barrier_rounds: int = 16  # density 0.8 ** 16 = 0.028: down to where IMP tickets stop matching
    barrier_resets: tuple[str, ...] = ("init", "rewind:50")
    alphas: int = 11


FULL = Settings()
QUICK = Settings(seeds=(0, 1), train_epochs=1, imp_rounds=2, null_samples=3, null_rounds=2, degree_densities=(0.1,),
                 degree_samples=3, mixing_rounds=(1, 3), mixing_samples=3, track_every=3, eb_every=3,
                 eb_densities=(0.2,), imp_track_rounds=1, conv4_epochs=None, barrier_rounds=2,
                 barrier_resets=("init",), alphas=3)


# ------------------------------------------------------------------------------------ helpers
def _threads() -> None:
    import torch

    torch.set_num_threads(1)


def _mine(kwargs: dict[str, Any]) -> Any:
    import ticketlab

    _threads()
    return ticketlab.mine(device="cpu", **kwargs)


def mine_all(calls: Sequence[dict[str, Any]], jobs: int) -> list[Any]:
    """``ticketlab.mine(**call)`` for every call, ``jobs`` processes at a time (one torch thread each)."""
    if jobs <= 1 or len(calls) <= 1:
        return [_mine(c) for c in calls]
    with ProcessPoolExecutor(max_workers=jobs, initializer=_threads) as pool:
        return list(pool.map(_mine, calls))


def _ms(values: Sequence[float]) -> tuple[float, float]:
    x = np.asarray(values, dtype=np.float64)
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0


def _pm(values: Sequence[float], digits: int = 3, scale: float = 1.0) -> str:
    m, s = _ms([scale * v for v in values])
    return f"{m:.{digits}f} ± {s:.{digits}f}" if len(values) > 1 else f"{m:.{digits}f}"


def _p(p: float | None) -> str:
    return "-" if p is None else f"{p:.2g}"


def _total(records: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    return next(r for r in records if r["metric"] == metric and r["layer"] == "__total__")


def _finite(x: Any) -> Any:
    """``x`` with every NaN or infinity replaced by None (strict JSON)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def _save_plot(fig: Any, path: Path) -> None:
    from ticketlab.metrics._plot import save_figure

    save_figure(fig, path, dpi=90)


# ------------------------------------------------------------------------- 1. alignment
def random_relabelling(t: Any, seed: int) -> tuple[Any, dict[str, np.ndarray]]:
    """``t`` with the units of every hidden tensor group permuted at random (input and output fixed;
    tensors joined by identity edges share one permutation), by :func:`permute_ticket`."""
    from ticketlab.metrics.align import permute_ticket, unit_groups

    topo = t.provenance["topology"]
    of, members, fixed = unit_groups(topo)
    rng = np.random.default_rng(seed)
    group_perm = {g: np.arange(topo["tensors"][m[0]]) if g in fixed else rng.permutation(topo["tensors"][m[0]])
                  for g, m in enumerate(members)}
    perms = {name: group_perm[of[name]] for name in topo["tensors"]}
    return permute_ticket(t, perms, topo), perms


def aligned_degree_null(a: Any, b: Any, samples: int, rounds: int, observed: float, seed: int = 0) -> dict[str, float]:
    """Jaccard of ``samples`` pairs of degree-preserving samples of A and B (``rounds`` curveball rounds,
    streams 0 and 1 as in ``compare``), each pair aligned by masks as the tickets are: what
    alignment gives masks that keep only their units' degrees. Mean, sd and the add-one p of
    ``observed``."""
    from ticketlab.metrics.align import align
    from ticketlab.metrics.degree import DegreeNull, layer_samples
    from ticketlab.ticket import Ticket

    null = DegreeNull(samples=samples, seed=seed, rounds=rounds)
    draws = [[layer_samples(m, null, stream, i) for i, m in enumerate(t.masks.values())]
             for stream, t in enumerate((a, b))]
    names = list(a.masks)
    js = []
    for k in range(samples):
        ta, tb = (Ticket(masks={n: draws[s][i][k] for i, n in enumerate(names)}, provenance=t.provenance)
                  for s, t in enumerate((a, b)))
        tb = align(ta, tb, "masks", seed=seed).ticket
        x = sum(int(np.count_nonzero(ta.masks[n] & tb.masks[n])) for n in names)
        js.append(x / (a.kept + b.kept - x))
    mean, sd = _ms(js)
    return {"mean": mean, "sd": sd, "p": (1 + sum(j >= observed for j in js)) / (samples + 1)}


def alive_hidden_units(t: Any) -> list[int]:
    """Hidden units of an MLP chain with at least one kept weight in and one out, per hidden layer."""
    ms = list(t.masks.values())
    return [int(((ms[i].sum(axis=1) > 0) & (ms[i + 1].sum(axis=0) > 0)).sum()) for i in range(len(ms) - 1)]


def _pair_row(a: Any, b: Any, samples: int, rounds: int) -> dict[str, Any]:
    """Raw overlap (hypergeometric and degree nulls) and both alignments against their nulls."""
    from ticketlab.metrics import compare

    row: dict[str, Any] = {}
    rec = _total(compare([a, b], ["jaccard"], null="degree", null_samples=samples, null_rounds=rounds), "jaccard")
    row["raw"] = {k: rec.get(k) for k in ("value", "expected", "lift", "p", "expected_degree", "p_degree")}
    for by in ("masks", "weights"):
        t0 = time.perf_counter()
        rec = _total(compare([a, b], ["jaccard"], align=by, null_samples=samples), "jaccard")
        row[by] = {k: rec.get(k) for k in ("value", "expected_aligned", "sd_aligned", "lift_aligned", "p_aligned",
                                           "note")}
        row[by]["seconds"] = time.perf_counter() - t0
    row["masks"]["degree_aligned"] = aligned_degree_null(a, b, samples, rounds, row["masks"]["value"])
    return row


def section1(s: Settings, jobs: int) -> dict[str, Any]:
    density = 0.8 ** s.imp_rounds
    calls = [{"method": "imp", "rounds": s.imp_rounds, "seed": seed, "train_epochs": s.train_epochs}
             for seed in s.seeds]
    calls += [{"method": "synflow", "density": density, "seed": seed} for seed in s.seeds]
    tickets = mine_all(calls, jobs)
    out: dict[str, Any] = {"density": density, "imp_rounds": s.imp_rounds, "null_samples": s.null_samples,
                           "null_rounds": s.null_rounds,
                           "families": {}}
    for k, family in enumerate(("imp", "synflow")):
        ts = tickets[k * len(s.seeds):(k + 1) * len(s.seeds)]
        pairs = []
        for i in range(len(ts)):
            for j in range(i + 1, len(ts)):
                row = _pair_row(ts[i], ts[j], s.null_samples, s.null_rounds)
                pairs.append({"seeds": [s.seeds[i], s.seeds[j]], **row})
        acc = [t.provenance.get("test_accuracy") for t in ts]
        # control: B = A relabelled at random; alignment must give A back
        b, _ = random_relabelling(ts[0], seed=1234)
        control = _pair_row(ts[0], b, s.null_samples, s.null_rounds)
        from ticketlab.metrics.align import align

        control["exact"] = {by: all(np.array_equal(align(ts[0], b, by).ticket.masks[n], ts[0].masks[n])
                                    for n in ts[0].masks) for by in ("masks", "weights")}
        out["families"][family] = {"density": ts[0].density, "test_accuracy": acc, "pairs": pairs,
                                   "control": control, "alive": [alive_hidden_units(t) for t in ts],
                                   "units": [int(m.shape[0]) for m in list(ts[0].masks.values())[:-1]],
                                   "snapshot": "final" if all(t.weights.get("final") for t in ts) else "init"}
    return out


def render1(r: dict[str, Any]) -> list[str]:
    lines = [f"Tickets: IMP (reset to init, {r['imp_rounds']} rounds of 20 %) and SynFlow (100 rounds) of "
             f"lenet_300_100 / digits at density {r['density']:.3f}, one ticket per seed; every pair of seeds. "
             "*hyper.* is the per-layer hypergeometric expectation of the Jaccard index (`expected`), *degree* the "
             f"degree-preserving null's (`expected_degree`, {r['null_samples']} samples, {r['null_rounds']} rounds); "
             "the aligned columns give "
             f"the aligned Jaccard, its aligned null (mean ± sd over {r['null_samples']} aligned pairs of random "
             "masks) and the empirical p (add-one: the smallest possible is "
             f"{1 / (r['null_samples'] + 1):.3f}). *degree null, aligned* aligns pairs of degree-preserving samples "
             "of the two tickets by masks, as the tickets are: the aligned overlap that the units' degrees alone "
             "give (computed by this script from `ticketlab.metrics.degree` and `align`).", "",
             "| tickets | seeds | raw Jaccard | hyper. (lift, p) | degree (p) | mask-aligned | its null | p | "
             "degree null, aligned (p) | weight-aligned | its null | p |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for family, f in r["families"].items():
        rows = [(f"{p['seeds'][0]} vs {p['seeds'][1]}", p) for p in f["pairs"]]
        rows.append(("control: A vs A permuted", f["control"]))
        for label, p in rows:
            raw, m, w = p["raw"], p["masks"], p["weights"]
            lines.append(f"| {family} | {label} | {raw['value']:.4f} | {raw['expected']:.4f} ({raw['lift']:.2f}, "
                         f"{_p(raw['p'])}) | {raw['expected_degree']:.4f} ({_p(raw['p_degree'])}) | "
                         f"{m['value']:.4f} | {m['expected_aligned']:.4f} ± {m['sd_aligned']:.4f} | "
                         f"{_p(m['p_aligned'])} | {m['degree_aligned']['mean']:.4f} ± {m['degree_aligned']['sd']:.4f} "
                         f"({_p(m['degree_aligned']['p'])}) | {w['value']:.4f} | {w['expected_aligned']:.4f} ± "
                         f"{w['sd_aligned']:.4f} | {_p(w['p_aligned'])} |")
    lines += ["", "**As measured.**", ""]
    for family, f in r["families"].items():
        ps = f["pairs"]
        raw = [p["raw"]["lift"] for p in ps]
        gain_m = [p["masks"]["value"] - p["masks"]["expected_aligned"] for p in ps]
        gain_w = [p["weights"]["value"] - p["weights"]["expected_aligned"] for p in ps]
        sig_m = sum(p["masks"]["p_aligned"] <= 0.05 for p in ps)
        sig_w = sum(p["weights"]["p_aligned"] <= 0.05 for p in ps)
        deg = [explained(p["raw"]["value"], p["raw"]["expected"], p["raw"]["expected_degree"])
               for p in ps if p["raw"]["value"] > p["raw"]["expected"]]
        c = f["control"]
        alive = " / ".join(_pm([a[i] for a in f["alive"]], 0) for i in range(len(f["alive"][0])))
        over_deg = [p["masks"]["value"] - p["masks"]["degree_aligned"]["mean"] for p in ps]
        sig_d = sum(p["masks"]["degree_aligned"]["p"] <= 0.05 for p in ps)
        lines.append(
            f"- **{family}** ({len(ps)} pairs; "
            + ("untrained tickets" if all(a is None for a in f["test_accuracy"]) else "test accuracy of the tickets "
               + ", ".join("-" if a is None else f"{100 * a:.1f} %" for a in f["test_accuracy"])) + "): "
            f"raw lift over the hypergeometric chance {_pm(raw, 2)}"
            + (f"; the degree null explains {_pm(deg, 0, 100)} % of the excess ({len(deg)} pair(s) above chance"
               + ("; over 100 %: the degrees alone predict more overlap than observed" if _ms(deg)[0] > 1 else "")
               + ")" if deg else "")
            + f". Mask alignment lifts the Jaccard index to {_pm([p['masks']['value'] for p in ps], 3)}, "
            f"{_pm(gain_m, 3)} above its aligned null (p <= 0.05 in {sig_m} of {len(ps)} pairs); weight "
            f"alignment to {_pm([p['weights']['value'] for p in ps], 3)}, {_pm(gain_w, 3)} above its null "
            f"(p <= 0.05 in {sig_w} of {len(ps)}; aligned by the '{f['snapshot']}' weights)"
            + f". Mask-aligned Jaccard minus the aligned degree null: {_pm(over_deg, 3)} (p <= 0.05 in "
            f"{sig_d} of {len(ps)}). Hidden units with a kept weight in and out: {alive} (of "
            f"{' / '.join(str(n) for n in f.get('units', []))}). Control: raw Jaccard {c['raw']['value']:.3f}, aligned "
            f"{c['masks']['value']:.3f} by masks and {c['weights']['value']:.3f} by weights; the permutation "
            f"is recovered exactly: masks {'yes' if c['exact']['masks'] else '**no**'}, weights "
            f"{'yes' if c['exact']['weights'] else '**no**'}.")
    return lines


# -------------------------------------------------------------------- 2. degree-preserving null
PAIRS2 = (("snip", "magnitude_init"), ("snip", "synflow"))


def mixing(a: Any, b: Any, rounds: Sequence[int], samples: int) -> list[dict[str, float]]:
    """The degree null's Jaccard (mean, sd over ``samples``) for each number of curveball rounds
    (Besag & Clifford's scheme as in ``compare``: ``r`` rounds to the hub, ``r`` more per sample)."""
    from ticketlab.metrics.degree import DegreeNull, degree_samples, sample_intersections

    ka, kb = a.kept, b.kept
    out = []
    for r in rounds:
        t0 = time.perf_counter()
        null = DegreeNull(samples=samples, seed=0, rounds=r)
        x = sample_intersections(degree_samples(a.masks, null, 0), degree_samples(b.masks, null, 1)).sum(axis=1)
        j = x / (ka + kb - x)
        out.append({"rounds": r, "mean": float(j.mean()), "sd": float(j.std(ddof=1)),
                    "seconds_per_sample": (time.perf_counter() - t0) / (2 * samples)})
    return out


def section2(s: Settings, jobs: int) -> dict[str, Any]:
    from ticketlab.metrics import compare

    methods = sorted({m for p in PAIRS2 for m in p})
    grid = [(d, seed, m) for d in s.degree_densities for seed in s.seeds for m in methods]
    tickets = dict(zip(grid, mine_all([{"method": m, "density": d, "seed": seed} for d, seed, m in grid], jobs)))
    rows = []
    for d in s.degree_densities:
        for seed in s.seeds:
            for ma, mb in PAIRS2:
                t0 = time.perf_counter()
                recs = compare([tickets[d, seed, ma], tickets[d, seed, mb]], ["intersection", "jaccard"],
                               null="degree", null_samples=s.degree_samples, null_rounds=s.null_rounds,
                               per_layer=True)
                wall = time.perf_counter() - t0
                pair = (tickets[d, seed, ma], tickets[d, seed, mb])
                layers = {r["layer"]: {**{k: r.get(k) for k in ("value", "expected", "expected_degree")},
                                       "kept": [int(t.masks[r["layer"]].sum()) for t in pair]}
                          for r in recs if r["metric"] == "intersection" and not r["layer"].startswith("__")}
                x, j = _total(recs, "intersection"), _total(recs, "jaccard")
                rows.append({"density": d, "seed": seed, "a": ma, "b": mb, "seconds": wall, "layers": layers,
                             **{f"x_{k}": x.get(k) for k in ("value", "expected", "expected_degree", "p", "p_degree")},
                             **{f"j_{k}": j.get(k) for k in ("value", "expected", "expected_degree")}})
    d0, seed0 = s.degree_densities[0], s.seeds[0]
    mix = {f"{ma} vs {mb}": mixing(tickets[d0, seed0, ma], tickets[d0, seed0, mb], s.mixing_rounds,
                                   s.mixing_samples) for ma, mb in PAIRS2}
    observed = {f"{ma} vs {mb}": next(r for r in rows if (r["density"], r["seed"], r["a"], r["b"])
                                      == (d0, seed0, ma, mb)) for ma, mb in PAIRS2}
    return {"samples": s.degree_samples, "rounds": s.null_rounds, "rows": rows, "mixing": mix, "mixing_density": d0,
            "mixing_seed": seed0, "mixing_samples": s.mixing_samples, "observed": observed}


def explained(x: float, e_hyper: float, e_degree: float) -> float:
    """Share of the overlap above the hypergeometric chance that the degrees alone explain:
    ``(E_degree - E_hyper) / (observed - E_hyper)``."""
    return (e_degree - e_hyper) / (x - e_hyper) if x != e_hyper else math.nan


def plot_mixing(r: dict[str, Any], path: Path) -> None:
    from ticketlab.metrics._plot import new_figure

    fig = new_figure(6.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    for label, pts in r["mixing"].items():
        rounds = [p["rounds"] for p in pts]
        (line,) = ax.plot(rounds, [p["mean"] for p in pts], marker="o", label=f"{label}: degree null")
        ax.fill_between(rounds, [p["mean"] - p["sd"] for p in pts], [p["mean"] + p["sd"] for p in pts],
                        color=line.get_color(), alpha=0.2)
        obs = r["observed"][label]
        ax.axhline(obs["j_expected"], color=line.get_color(), linestyle=":", linewidth=1,
                   label=f"{label}: hypergeometric")
    ax.set_xscale("log")
    ax.set_xlabel("curveball rounds (to the hub, and again from it per sample)")
    ax.set_ylabel("null Jaccard (mean ± sd)")
    ax.set_title(f"degree-preserving null, lenet_300_100 / digits, density {r['mixing_density']:g}, "
                 f"seed {r['mixing_seed']}", fontsize=9)
    ax.legend(fontsize=7)
    _save_plot(fig, path)


def render2(r: dict[str, Any], folder: str) -> list[str]:
    lines = [f"Tickets of lenet_300_100 / digits mined from the same initialization (seed) by each method; "
             f"{len({x['seed'] for x in r['rows']})} seeds per cell, mean ± sd over seeds. Counts are `intersection` "
             f"(weights both keep); *hyper.* is the per-layer hypergeometric expectation, *degree* the "
             f"degree-preserving null's ({r['samples']} samples, {r['rounds']} curveball rounds), *explained* = "
             "(E_degree - E_hyper) / (observed - E_hyper), per seed then averaged.", "",
             "| density | pair | observed | hyper. | degree | explained by degrees % | Jaccard (hyper. / degree) "
             "| p_degree | null cost (s) |",
             "|---:|---|---:|---:|---:|---:|---|---:|---:|"]
    cells: dict[tuple[float, str], list[dict[str, Any]]] = {}
    for x in r["rows"]:
        cells.setdefault((x["density"], f"{x['a']} vs {x['b']}"), []).append(x)
    for (d, pair), xs in cells.items():
        frac = [explained(x["x_value"], x["x_expected"], x["x_expected_degree"]) for x in xs]
        lines.append(f"| {d:g} | {pair} | {_pm([x['x_value'] for x in xs], 0)} | "
                     f"{_pm([x['x_expected'] for x in xs], 0)}"
                     f" | {_pm([x['x_expected_degree'] for x in xs], 0)} | {_pm(frac, 1, 100)} | "
                     f"{_pm([x['j_value'] for x in xs], 3)} ({_pm([x['j_expected'] for x in xs], 3)} / "
                     f"{_pm([x['j_expected_degree'] for x in xs], 3)}) | {max(x['x_p_degree'] for x in xs):.2g} "
                     f"(largest) | {_pm([x['seconds'] for x in xs], 2)} |")
    d0 = r["rows"][0]["density"]
    lines += ["", f"Per layer at density {d0:g} (mean over seeds; which layer's degrees explain the excess):", "",
              "| pair | layer | kept a / b | observed | hyper. | degree | explained % |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for (d, pair), xs in cells.items():
        if d != d0:
            continue
        for layer in xs[0]["layers"]:
            v = [x["layers"][layer] for x in xs]
            frac = [explained(y["value"], y["expected"], y["expected_degree"]) for y in v]
            frac = [f for f in frac if not math.isnan(f)]
            kept = f"{_pm([y['kept'][0] for y in v], 0)} / {_pm([y['kept'][1] for y in v], 0)}"
            lines.append(f"| {pair} | `{layer}` | {kept}"
                         f" | {_pm([y['value'] for y in v], 0)} | {_pm([y['expected'] for y in v], 0)}"
                         f" | {_pm([y['expected_degree'] for y in v], 0)} | {_pm(frac, 1, 100) if frac else '-'} |")
    lines += ["", f"![degree null mixing]({folder}/degree_mixing.png)", "",
              f"**Mixing.** The null's Jaccard against the curveball rounds (density {r['mixing_density']:g}, "
              f"seed {r['mixing_seed']}, {r['mixing_samples']} samples per point; the tables above use "
              f"{r['rounds']}):", "",
              "| pair | " + " | ".join(f"{p['rounds']}" for p in next(iter(r["mixing"].values()))) + " |",
              "|---|" + "---:|" * len(next(iter(r["mixing"].values())))]
    for label, pts in r["mixing"].items():
        lines.append(f"| {label} | " + " | ".join(f"{p['mean']:.4f}" for p in pts) + " |")
    for label, pts in r["mixing"].items():
        at = next((p for p in pts if p["rounds"] == 30), pts[-1])
        last = pts[-1]
        lines.append("")
        lines.append(f"- {label}: at {at['rounds']} rounds {at['mean']:.4f} ± {at['sd']:.4f}, at {last['rounds']} "
                     f"{last['mean']:.4f} ± {last['sd']:.4f} (difference {abs(at['mean'] - last['mean']):.4f}); "
                     f"one sample of one ticket at {at['rounds']} rounds costs "
                     f"{1000 * at['seconds_per_sample']:.0f} ms.")
    return lines


# ------------------------------------------------------------------ 3. mask distance (Early-Bird)
def _relabel(history: list[dict[str, Any]], label: str | None) -> list[dict[str, Any]]:
    """The tracked rows, the dense run named ``label`` (others prefixed by it); None keeps the names."""
    return [{**h, "run": h.get("run") if label is None else label if h.get("run") == "dense"
             else f"{label} {h.get('run')}"} for h in history if h.get("stage") == "mask_tracking"]


def eb_rule_iteration(rows: list[dict[str, Any]], eps: float, window: int = 5) -> int | None:
    """Where Early-Bird's rule would first stop on these tracked rows of one run (the rule of
    :mod:`ticketlab.tracking`: the last ``window`` distances all <= eps relative to chance)."""
    ok = 0
    for h in rows:
        d = h["mask_distance"]
        ok = ok + 1 if d == d and d / h["mask_distance_chance"] <= eps else 0
        if ok >= window:
            return int(h["iteration"])
    return None


def section3(s: Settings, jobs: int) -> dict[str, Any]:
    from ticketlab.metrics import compare

    e = s.train_epochs
    curves = [{"method": "magnitude", "density": d, "seed": s.seeds[0], "track_masks": s.track_every,
               "train_epochs": e} for d in s.eb_densities]
    curves.append({"method": "imp", "rounds": s.imp_track_rounds, "seed": s.seeds[0], "track_masks": 2 * s.track_every,
                   "train_epochs": e})
    if s.conv4_epochs:
        curves.append({"method": "magnitude", "model": "conv4", "density": s.eb_densities[len(s.eb_densities) // 2],
                       "seed": s.seeds[0], "track_masks": s.track_every, "train_epochs": s.conv4_epochs,
                       "train_options": {"lr": 1e-3}})
    runs = [{"method": "magnitude", "density": d, "seed": seed, "track_masks": s.eb_every, "train_ticket": True,
             "train_epochs": e, **({"early_bird": s.eb_eps} if eb else {})}
            for d in s.eb_densities for seed in s.seeds for eb in (False, True)]
    t0 = time.perf_counter()
    mined = mine_all(curves + runs, jobs)
    out: dict[str, Any] = {"settings": {"track_every": s.track_every, "eb_every": s.eb_every, "eps": s.eb_eps,
                                        "imp_rounds": s.imp_track_rounds, "conv4_epochs": s.conv4_epochs},
                           "curves": [], "runs": [], "mining_seconds": time.perf_counter() - t0}
    for call, t in zip(curves, mined[:len(curves)]):
        # a run's first tracked mask has no distance (NaN): left out, as mask_distance_curves does
        tracked = [h for h in t.history
                   if h.get("stage") == "mask_tracking" and h["mask_distance"] == h["mask_distance"]]
        dense = next((h for h in t.history if h.get("stage") == "dense"), {})
        per_run: dict[str, list[dict[str, Any]]] = {}
        for h in tracked:
            per_run.setdefault(str(h.get("run")), []).append(h)
        out["curves"].append({"model": call.get("model", "lenet_300_100"), "method": call["method"],
                              "density": t.density, "every": call["track_masks"], "history": tracked,
                              "dense_accuracy": dense.get("test_accuracy"),
                              "rule": {run: eb_rule_iteration(rows, s.eb_eps) for run, rows in per_run.items()},
                              "last_relative": {run: rows[-1]["mask_distance"] / rows[-1]["mask_distance_chance"]
                                                for run, rows in per_run.items()}})
    for k in range(0, len(runs), 2):
        full, eb = mined[len(curves) + k], mined[len(curves) + k + 1]
        rec = _total(compare([full, eb], ["jaccard"]), "jaccard")
        dense = [next(h for h in t.history if h.get("stage") == "dense") for t in (full, eb)]
        stops = eb.provenance.get("early_bird_stops") or []
        out["runs"].append({"density": runs[k]["density"], "seed": runs[k]["seed"],
                            "stop": stops[0]["iteration"] if stops else None,
                            "iterations": [dense[0].get("iterations"), dense[1].get("iterations")],
                            "dense_accuracy": [dense[0]["test_accuracy"], dense[1]["test_accuracy"]],
                            "ticket_accuracy": [full.provenance["test_accuracy"], eb.provenance["test_accuracy"]],
                            "jaccard": rec["value"], "jaccard_expected": rec["expected"],
                            "layer_density": [full.layer_density(), eb.layer_density()]})
    return out


def curve_plots(r: dict[str, Any], folder: Path | None) -> list[tuple[str, str]]:
    """(title, file name) of one PNG per model / method (``plot_mask_distance``), drawn into ``folder``
    when given; lenet magnitude's shows where the Early-Bird runs stopped."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in r["curves"]:
        groups.setdefault((c["model"], c["method"]), []).append(c)
    made = []
    for (model, method), cs in groups.items():
        name = f"mask_distance_{model}_{method}.png"
        made.append((f"{method}, {model}", name))
        if folder is not None:
            _plot_curve(r, model, method, cs, folder / name)
    return made


def _plot_curve(r: dict[str, Any], model: str, method: str, cs: list[dict[str, Any]], path: Path) -> None:
    from ticketlab.metrics.over_time import plot_mask_distance

    rows = [h for c in cs for h in _relabel(c["history"], f"d={c['density']:.3g}" if len(cs) > 1 else None)]
    fig = plot_mask_distance(rows, title=f"{method}, {model} / digits, d={cs[0]['density']:.3g}" if len(cs) == 1
                             else f"{method}, {model} / digits")
    ax = fig.axes[0]
    handles, labels = ax.get_legend_handles_labels()
    if len({c["density"] for c in cs}) == 1:  # one target density: one chance line in the legend
        keep = [i for i, lab in enumerate(labels) if "chance" not in lab]
        first = next(i for i, lab in enumerate(labels) if "chance" in lab)
        handles, labels = [handles[i] for i in keep] + [handles[first]], [labels[i] for i in keep] + ["chance 2d(1-d)"]
    ax.legend(handles, labels, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title=f"tracked every {cs[0]['every']} it.", title_fontsize=6)
    if (model, method) == ("lenet_300_100", "magnitude"):
        seed0 = min(x["seed"] for x in r["runs"])
        stops: dict[int, list[str]] = {}
        for x in r["runs"]:
            if x["seed"] == seed0 and x["stop"] is not None:
                stops.setdefault(x["stop"], []).append(f"{x['density']:g}")
        for it, ds in stops.items():
            ax.axvline(it, color="0.5", linewidth=0.8, linestyle="-.")
            ax.annotate(f"Early-Bird stop, d={', '.join(ds)}", (it, 0.83),
                        xycoords=("data", "axes fraction"), fontsize=6, rotation=90, va="top", ha="right")
    ax.set_yscale("symlog", linthresh=1e-3)
    _save_plot(fig, path)


def render3(r: dict[str, Any], folder: str, plots: list[tuple[str, str]]) -> list[str]:
    st = r["settings"]
    lines = ["**Distance curves.** Magnitude pruning after training (one dense run per target density, seed 0, "
             f"so the same training; the mask tracked every {st['track_every']} iterations at that density) and IMP "
             f"({st['imp_rounds']} rounds of 20 %, "
             f"reset to init, tracked every {2 * st['track_every']} iterations of every round's training, at the final "
             "density)" + (f"; conv4 / digits (magnitude, {st['conv4_epochs']} epochs at Adam 1e-3)"
                           if st["conv4_epochs"] else "")
             + ". Dashed: the chance distance 2d(1 - d) of two independent random masks. "
             "The y axis is logarithmic above 0.001.", ""]
    for title, name in plots:
        lines += [f"![{title}]({folder}/{name})", ""]
    lines += ["| curve | run | dense test accuracy % | relative distance at the end | Early-Bird rule "
              f"(eps {st['eps']:g}) would stop at iteration |", "|---|---|---:|---:|---:|"]
    for c in r["curves"]:
        for run, rel in c["last_relative"].items():
            acc = c["dense_accuracy"]
            lines.append(f"| {c['method']}, {c['model']}, d={c['density']:.3g} | {run} | "
                         f"{'-' if acc is None or run != 'dense' else f'{100 * acc:.1f}'} | {rel:.3f} | "
                         f"{c['rule'][run] if c['rule'][run] is not None else 'never'} |")
    lines += ["", f"**Early-Bird stops.** lenet_300_100 / digits, magnitude pruning after training, the mask tracked "
              f"once per epoch ({st['eb_every']} iterations), `early_bird = {st['eps']:g}` (stop once the last 5 "
              "distances are all <= eps x 2d(1 - d)); the full run trains the dense network for all its iterations. "
              "*Ticket* is the pruned network trained from its initialization (`train_ticket`), Jaccard is the "
              "Early-Bird mask against the full run's (hypergeometric expectation in brackets).", "",
              "| density | seed | stop at iteration (of) | dense test acc. % full / at stop | ticket test acc. % full "
              "/ Early-Bird | Jaccard EB vs full (chance) |", "|---:|---:|---:|---:|---:|---:|"]
    for x in r["runs"]:
        lines.append(f"| {x['density']:g} | {x['seed']} | {x['stop'] if x['stop'] is not None else 'no stop'} "
                     f"({x['iterations'][0]}) | {100 * x['dense_accuracy'][0]:.1f} / "
                     f"{100 * x['dense_accuracy'][1]:.1f} | "
                     f"{100 * x['ticket_accuracy'][0]:.1f} / {100 * x['ticket_accuracy'][1]:.1f} | {x['jaccard']:.3f} "
                     f"({x['jaccard_expected']:.3f}) |")
    lines += [""]
    by_d: dict[float, list[dict[str, Any]]] = {}
    for x in r["runs"]:
        by_d.setdefault(x["density"], []).append(x)
    for d, xs in by_d.items():
        gap = [x["ticket_accuracy"][1] - x["ticket_accuracy"][0] for x in xs]
        saved = [1 - (x["stop"] or x["iterations"][0]) / x["iterations"][0] for x in xs]
        lines.append(f"- density {d:g}: Early-Bird saves {_pm(saved, 0, 100)} % of the dense iterations; its "
                     f"ticket's test accuracy minus the full run's ticket's: {_pm(gap, 1, 100)} pp.")
        worse = [x for x in xs if x["ticket_accuracy"][1] < x["ticket_accuracy"][0] - 0.02]
        if worse:
            x = worse[0]
            ld = ", ".join(f"`{n}` {100 * x['layer_density'][0][n]:.1f} / {100 * x['layer_density'][1][n]:.1f} %"
                           for n in x["layer_density"][0])
            lines.append(f"  Per-layer density full / Early-Bird (seed {x['seed']}): {ld}.")
    return lines


# --------------------------------------------------------------------------- 4. loss barrier
#: What section 4 keeps of each ``BarrierResult.to_dict()``.
BARRIER_FIELDS = ("alphas", "error", "loss", "barrier", "loss_barrier", "align_sweeps", "union_density")


def section4(s: Settings, jobs: int, cache: Path, folder: Path) -> dict[str, Any] | None:
    try:
        from ticketlab.metrics.barrier import barrier, plot_barrier
    except ImportError as exc:
        print(f"section 4 skipped: ticketlab.metrics.barrier does not import yet ({exc})", flush=True)
        return None
    import ticketlab
    from ticketlab.errors import TicketlabError

    calls, folders = [], []
    for reset in s.barrier_resets:
        for seed in s.seeds:
            rounds_dir = cache / f"imp_{reset.replace(':', '')}_seed{seed}"
            if rounds_dir.exists():  # tickets of older runs may lack trained biases: always mine again
                shutil.rmtree(rounds_dir)
            rounds_dir.mkdir(parents=True)
            folders.append((reset, seed, rounds_dir))
            calls.append({"method": "imp", "rounds": s.barrier_rounds, "seed": seed, "train_epochs": s.train_epochs,
                          "miner_config": {"reset": reset}, "save_rounds": str(rounds_dir)})
    mine_all(calls, jobs)
    out: dict[str, Any] = {"rounds": s.barrier_rounds, "alphas": s.alphas, "runs": [], "plots": []}
    for reset, seed, rounds_dir in folders:
        files = sorted(rounds_dir.glob("round_*.h5"))
        tickets = [ticketlab.load(f, weights=False, scores=False) for f in files]
        dense = next((h.get("test_accuracy") for t in tickets for h in t.history if h.get("stage") == "dense"), None)
        run: dict[str, Any] = {"reset": reset, "seed": seed, "dense_accuracy": dense, "rounds": [], "pairs": []}
        for f, t in zip(files, tickets):
            run["rounds"].append({"file": f.name, "density": t.density,
                                  "test_accuracy": t.provenance.get("test_accuracy")})
        plotted: list[tuple[int, Any]] = []
        for k in range(len(files) - 1):
            pair: dict[str, Any] = {"k": k}
            for align in (None, "weights"):
                key = "plain" if align is None else "aligned"
                try:
                    res = barrier(files[k], files[k + 1], alphas=s.alphas, align=align, split="test", device="cpu",
                                  seed=0)
                except TicketlabError as exc:  # e.g. a round file without trained weights
                    pair[key] = {"error_message": str(exc)}
                    continue
                pair[key] = {k: v for k, v in res.to_dict().items() if k in BARRIER_FIELDS}
                if align is None:
                    plotted.append((k, res))
            run["pairs"].append(pair)
        if run["dense_accuracy"] is None and run["rounds"] and run["rounds"][0]["density"] == 1.0:
            ends = [p["plain"] for p in run["pairs"] if "error" in p["plain"]]
            run["dense_accuracy"] = 1.0 - ends[0]["error"][0] if ends and run["pairs"][0]["k"] == 0 else None
        out["runs"].append(run)
        if seed == s.seeds[0] and plotted:  # one plot per reset: the first seed's pairs, at most 6 of them
            name = f"barrier_{reset.replace(':', '')}.png"
            shown = [plotted[i] for i in sorted({round(j * (len(plotted) - 1) / 5) for j in range(6)})]
            plot_barrier([res for _, res in shown], folder / name, labels=[f"round {k} - {k + 1}" for k, _ in shown])
            out["plots"].append((f"IMP reset {reset}, seed {seed}", name))
    return out


def render4(r: dict[str, Any], folder: str, plots: list[tuple[str, str]]) -> list[str]:
    lines = [f"IMP of lenet_300_100 / digits, {r['rounds']} rounds of 20 % (`save_rounds`: the trained ticket of "
             f"every round), per reset and seed; the test error along (1 - α) θ_k + α θ_k+1 at {r['alphas']} "
             "values of α; barrier = max error - mean of the two ends (`ticketlab.metrics.barrier`), also after "
             f"aligning round k+1 to round k by weights. A round is *matching* when its test accuracy is within "
             f"{100 * MATCHING:g} pp of the dense network's; *connected* when the barrier is below "
             f"{100 * CONNECTED:g} % (Frankle et al. 2020).", "",
             "| reset | rounds | density k+1 | test acc. % k / k+1 (dense) | barrier % (mean ± sd over seeds) "
             "| aligned | loss barrier | matching pairs / seeds | connected |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    verdict: list[tuple[bool, bool]] = []
    for reset in dict.fromkeys(x["reset"] for x in r["runs"]):
        runs = [x for x in r["runs"] if x["reset"] == reset]
        for k in range(len(runs[0]["pairs"])):
            ps = [(x, x["pairs"][k]) for x in runs if "barrier" in x["pairs"][k]["plain"]]
            if not ps:
                msg = runs[0]["pairs"][k]["plain"].get("error_message", "not computed")
                lines.append(f"| {reset} | {k} - {k + 1} | | | not computed: {msg} | | | | |")
                continue
            b = [p["plain"]["barrier"] for _, p in ps]
            al = [p["aligned"]["barrier"] for _, p in ps if "barrier" in p.get("aligned", {})]
            # the ends' accuracies as the barrier measured them (round 0 of IMP is the dense network)
            acc = [(1 - p["plain"]["error"][0], 1 - p["plain"]["error"][-1], x["dense_accuracy"]) for x, p in ps]
            match = [dense is not None and min(a0, a1) >= dense - MATCHING for a0, a1, dense in acc]
            conn = [v <= CONNECTED for v in b]
            verdict += list(zip(match, conn))
            dense = [a[2] for a in acc if a[2] is not None]
            lines.append(f"| {reset} | {k} - {k + 1} | {ps[0][0]['rounds'][k + 1]['density']:.3f} | "
                         f"{_pm([a[0] for a in acc], 1, 100)} / {_pm([a[1] for a in acc], 1, 100)} "
                         f"({_pm(dense, 1, 100) if dense else '-'}) | {_pm(b, 2, 100)} | "
                         f"{_pm(al, 2, 100) if al else '-'} | {_pm([p['plain']['loss_barrier'] for _, p in ps], 3)} | "
                         f"{sum(match)} / {len(ps)} | {sum(conn)} / {len(ps)} |")
    for title, name in plots:
        lines += ["", f"![{title}]({folder}/{name})"]
    both = [c for m, c in verdict if m]
    other = [c for m, c in verdict if not m]
    lines += ["", f"**Paul et al. 2022's claim** (successive IMP rounds are linearly connected when the tickets "
              f"are matching): of {len(both)} successive pairs of matching rounds (over resets and seeds), "
              f"{sum(both)} are connected" + (f"; of the {len(other)} pairs not both matching, {sum(other)} are"
                                             if other else "") + "."]
    return lines


# --------------------------------------------------------------------------------- the page
INTRO = """# Comparing tickets beyond chance (issue 14)

ticketlab's overlap against the hypergeometric null is blind to two things: **permutation
symmetry** (two networks from different seeds may hold the same sparse structure with their hidden
units in another order) and **degree structure** (two masks that both keep most weights of the same
few units overlap above the per-layer null for that reason alone). This page measures both on
lenet_300_100 / digits, then follows a mask during training (Early-Bird, You et al. 2020) and the
loss barrier between successive IMP rounds (Paul et al. 2022). Every number below is generated
(do not edit by hand) by

```bash
{command} --jobs 2                 # sections 1-4 (section 4 once ticketlab.metrics.barrier exists)
{command} --sections 4 --jobs 2    # one section; merged into this page with the others' stored numbers
.venv/bin/python benchmarks/compare_beyond.py --report-only         # the page and plots from the stored JSON
```

from `docs/results/compare_beyond/sectionN.json`. The same experiments from the CLI:
`ticketlab compare a.h5 b.h5 --align masks|weights --null-samples 20` (section 1),
`ticketlab compare a.h5 b.h5 --null degree --null-samples 100 --null-rounds 30` (section 2),
`ticketlab mine --method magnitude --track-masks 5 [--early-bird 0.1] -o t.h5` and
`ticketlab compare --over-time t.h5 --plot t.png` (section 3), and
`ticketlab mine --method imp --rounds 16 --save-rounds rounds/ -o i.h5`, then
`ticketlab barrier rounds/round_01.h5 rounds/round_02.h5` (section 4).

**Training.** Every ticket is mined on CPU with one torch thread; lenet_300_100 / digits trains
with its default recipe (Adam 1.2e-3, batch 60, 20 epochs = 360 iterations, 1,079 training
images){epochs}; IMP prunes 20 % of the remaining weights per round (global magnitude) and resets
the survivors to their initialization unless the table says otherwise.
"""

DISCUSSION = {
    1: """*Reading.* Frankle & Carbin 2019 and later work find IMP tickets from different initializations
at about chance overlap. Here the raw IMP overlap is a little above the per-layer hypergeometric
chance (lift about 1.1), and the degree-preserving null accounts for all of it: beyond which units
they use, the two masks share nothing, so the literature's "about chance" holds once degrees are
controlled. Alignment (weight matching, Ainsworth et al. 2023) reads the two methods differently.
SynFlow keeps only about 40 of the 300 first-layer units (the hidden-units count above), so mask
alignment mostly pairs up the live units: its aligned Jaccard is far above the uniform aligned null
but equal to the *aligned degree null*. SynFlow tickets from different seeds are the same degree
structure relabelled, nothing finer. IMP keeps almost every unit. Its mask-aligned Jaccard is above
both aligned nulls by a small margin, with p at its floor (1/21) in every pair: a faint shared
structure that shows only after alignment. The control recovers a relabelled copy exactly, by
masks and by weights, while its raw overlap is at chance.

*Caveats.* (1) The aligned null of `align="weights"` aligns random masks by the snapshot times the
random mask, so its similarity is weak and its mean stays near the raw chance. It is far below
the mask-aligned null, and IMP's weight-aligned value (aligned by the `final` weights, which are 0
where pruned) is far above it but not above what mask alignment gets from random masks. Read it
as "weight matching recovers most of the overlap that mask matching finds", not as a larger
effect. (2) SynFlow does not train, so its only snapshot is the dense `init` one; weight alignment
uses the kept weights, `init` times each ticket's mask, for the tickets as for the null's random
masks. (The first run of this page found that `ticketlab.metrics.align` aligned such tickets by
their dense `init` but the null by masked weights, which put the null above the value with p = 1;
fixed before these numbers were made.)""",
    2: """*Reading.* magnitude at init keeps the largest |w| of a Kaiming draw, whose scale is
1/sqrt(fan-in). Globally it therefore keeps almost only `fc1` weights (fan-in 64) and none of
`fc2` (fan-in 300): see the "kept" column. Within `fc1` its unit degrees are close to uniform, so
its degree null is the hypergeometric one, and its large overlap with SNIP is *fine structure*:
SNIP's score |g ⊙ w| contains |w|, so both favour the same large initial weights. SNIP and SynFlow
both concentrate their weights on some units (SynFlow keeps about 40 of the 300 first-layer units,
section 1). About a third of their excess overlap is the shared degree profile, a larger share at
lower density, and a share in every layer. The rest stays above the degree null in every seed (p_degree at its
floor, 1/101). The null mixes fast: after 3 to 5 curveball rounds its Jaccard is flat within its
Monte-Carlo error, so the default 30 rounds are ample on lenet. The "null cost" column is the
whole `compare` call with 100 samples per ticket (`benchmarks/bench_metrics.py --parts 5` times
a 25.6M-weight ticket).""",
    3: """*Reading.* You et al. 2020 (Early-Bird; channel pruning of VGG / PreResNet by batch-norm
scales) track the mask once per epoch, stop when 5 consecutive distances are below 0.1, and report
that the early ticket retrains as well as the full run's at a fraction of the cost. Here the
pruning is unstructured global magnitude on an MLP. A raw threshold of 0.1 would already be met by
two random masks at density 0.05 (2d(1 - d) = 0.095), so ticketlab's rule is relative to chance,
and relative to chance the magnitude mask settles within the first three epochs: the per-epoch rule
stops at the 7th epoch at every density (the first possible stop is the 6th). At densities 0.2
and 0.1 the early ticket is within about 1 pp of the full run's, as Early-Bird reports. At 0.05 it
is far worse: the global selection after 7 epochs leaves `fc2` with about 0.1 % of its weights
against 0.7 % after 20 (per-layer densities above), close to layer collapse. A likely cause is
that `fc2` starts with the smallest weights (fan-in 300) and needs longer to grow to the
magnitudes of `fc1` and `fc3`. The distance curve cannot show this: the mask is stable, but
stably starved. Tracking every 5 iterations, the same rule would
stop after 30 to 70 iterations, because the 5-mask window then spans only 25 iterations: the rule
depends on the tracking interval. In IMP's last round the network trains under a mask of the
target density itself, so the tracked mask cannot change (distance 0): there, tracking says
nothing.""",
    4: """*Literature.* Paul et al. 2022 ("Unmasking the Lottery Ticket Hypothesis") report that
successive IMP rounds are linearly mode connected when rewinding gives matching tickets, and
that the connection breaks when the tickets stop matching; Frankle et al. 2020 measure stability
with the same error barrier (connected below 2 %) and find LeNet on MNIST stable already at
initialization, so on lenet / digits resetting to init and rewinding to iteration 50 are expected
to behave alike. Successive rounds share their initialization, so weight matching is expected to
keep the identity there and the aligned barrier to equal the plain one.

*Reading.* The first half of Paul et al.'s claim holds here: every pair of successive matching
rounds is connected, with error barriers of a fraction of a percent. The second half cannot be
seen on lenet / digits: the pairs that are not both matching (the last rounds, below about 5 %
density, where test accuracy drops 1-2 pp) are connected too, their barriers only a little larger
(up to about 0.7 %), and the loss barrier grows steadily with the rounds. Digits is small and
easy and this network is stable from initialization (Frankle et al. 2020's LeNet result), so
pruning never pushes a round out of its predecessor's basin within these 16 rounds; a harder
task (CIFAR-10 on a ResNet, where Paul et al. see the break) is needed to see the connection
fail. Weight matching keeps the identity between successive rounds, so the aligned barriers equal
the plain ones, as expected.""",
}

TITLES = {1: "1. Permutation-aligned overlap", 2: "2. Degree-preserving null",
          3: "3. Mask distance during training (Early-Bird)", 4: "4. Loss barrier between successive IMP rounds"}


def render_section(n: int, r: dict[str, Any] | None, out: Path, plots: bool = True) -> list[str]:
    """Section ``n``'s markdown from its stored record (None: not generated yet); with ``plots``, its
    PNGs are drawn again into ``out/compare_beyond/`` (section 4's are drawn when it runs)."""
    lines = [f"## {TITLES[n]}", ""]
    if r is None:
        return lines + [f"Not generated yet: `{COMMAND} --sections {n}` computes it and merges it into this page"
                        + (" (it needs `ticketlab.metrics.barrier`)." if n == 4 else "."), ""]
    folder = out / FOLDER
    if n == 1:
        body = render1(r["result"])
    elif n == 2:
        if plots:
            plot_mixing(r["result"], folder / "degree_mixing.png")
        body = render2(r["result"], FOLDER)
    elif n == 3:
        body = render3(r["result"], FOLDER, curve_plots(r["result"], folder if plots else None))
    else:
        body = render4(r["result"], FOLDER, [(str(a), str(b)) for a, b in r["result"]["plots"]])
    cmd = f"{COMMAND} --sections {n}" + (" --quick" if r.get("quick") else "")
    return lines + [f"Generated by `{cmd}` ({r['seconds']:.0f} s wall, {r['jobs']} process(es), "
                    f"{r['created']}).", ""] + body + ["", DISCUSSION[n], ""]


def page_text(out: Path, plots: bool = True) -> str:
    """The whole page from the section records stored under ``out/compare_beyond/``."""
    folder = out / FOLDER
    results = {n: json.loads((folder / f"section{n}.json").read_text()) if (folder / f"section{n}.json").exists()
               else None for n in SECTIONS}
    stored = [r["settings"].get("train_epochs") for r in results.values() if r]
    epochs = "" if not stored or stored[0] is None else f" (here cut to {stored[0]} epoch(s): quick mode)"
    lines = [INTRO.format(command=COMMAND, epochs=epochs)]
    for n in SECTIONS:
        lines += render_section(n, results[n], out, plots)
    lines += ["## Cost", "", "| section | wall seconds | processes |", "|---|---:|---:|"]
    lines += [f"| {TITLES[n]} | {r['seconds']:.0f} | {r['jobs']} |" for n, r in results.items() if r]
    total = sum(r["seconds"] for r in results.values() if r)
    lines += [f"| **all generated sections** | **{total:.0f}** ({total / 60:.1f} min) | |", ""]
    return "\n".join(lines)


def assemble(out: Path) -> Path:
    """Write the page (and the plots of sections 2 and 3) from the stored records."""
    from ticketlab.atomic import atomic_write_text

    return atomic_write_text(out / PAGE, page_text(out))


def run_section(n: int, s: Settings, jobs: int, out: Path, cache: Path, quick: bool) -> bool:
    from ticketlab.atomic import atomic_write_text

    t0 = time.perf_counter()
    if n == 1:
        result = section1(s, jobs)
    elif n == 2:
        result = section2(s, jobs)
    elif n == 3:
        result = section3(s, jobs)
    else:
        result = section4(s, jobs, cache, out / FOLDER)
    if result is None:
        return False
    record = {"section": n, "seconds": time.perf_counter() - t0, "jobs": jobs, "quick": quick,
              "created": time.strftime("%Y-%m-%d"), "settings": dataclasses.asdict(s), "result": result}
    atomic_write_text(out / FOLDER / f"section{n}.json", json.dumps(_finite(record), indent=1, allow_nan=False))
    print(f"section {n}: {record['seconds']:.0f} s", flush=True)
    return True


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="1,2,3,4", help="comma-separated sections to (re)compute")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results",
                        help="folder of the page; its numbers and plots go to OUT/compare_beyond/")
    parser.add_argument("--jobs", type=int, default=1, help="mining processes (one torch thread each)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="section 4's per-round tickets (default: runs/compare_beyond, or OUT/cache with --quick)")
    parser.add_argument("--quick", action="store_true", help="tiny settings (a smoke test); needs --out")
    parser.add_argument("--report-only", action="store_true", help="only rebuild the page from the stored JSON")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        sections = sorted({int(x) for x in args.sections.split(",") if x.strip()})
    except ValueError:
        parser.error(f"--sections takes numbers from {SECTIONS}, e.g. 1,3")
    if not set(sections) <= set(SECTIONS):
        parser.error(f"--sections takes numbers from {SECTIONS}, not {args.sections}")
    out = args.out.resolve()
    if args.quick and out == (ROOT / "docs" / "results").resolve():
        parser.error("--quick writes tiny, meaningless numbers: give --out a scratch folder")
    settings = QUICK if args.quick else FULL
    cache = args.cache or (out / "cache" if args.quick else ROOT / "runs" / "compare_beyond")
    (out / FOLDER).mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        _threads()
        for n in sections:
            run_section(n, settings, max(1, args.jobs), out, cache, args.quick)
    print(f"wrote {assemble(out)}")


if __name__ == "__main__":
    main()
