"""Elastic lottery tickets on digits (issue 26, section 3): tickets moved between ResNet depths
(Chen et al. 2021, "The Elastic Lottery Ticket Hypothesis") against tickets mined at the target depth.

Writes ``docs/results/elastic.md`` and ``elastic.png`` next to it, the whole page, from the runs kept
in ``--cache`` (default ``out/elastic``; a finished run is skipped on the next call).

Per seed (``--seeds``, default 0,1,2), on scikit-learn's ``digits`` (8x8 images, offline) at
``--width`` channels in the first stage (default 8, so 8 / 16 / 32):

* **Direct tickets**: one ``imp`` run on ``resnet20`` and one on ``resnet32`` (global magnitude
  pruning, survivors reset to θ0, ``--rate`` of the remaining weights per round, ``--rounds``
  rounds); every round's ticket is kept (``save_rounds``) with the test accuracy of its training.
* **Transferred tickets**: round ``k``'s ``resnet20`` ticket stretched to ``resnet32`` and round
  ``k``'s ``resnet32`` ticket squeezed to ``resnet20`` (``ticketlab.transfer``, the paper's rule),
  for ``k`` in ``--transfer-rounds``, then trained (``ticketlab.train``) in three variants:
  ``transfer`` (masks and init weights moved, as the paper does), ``masks_only`` (the moved masks
  from the target model's own θ0, the init the direct ticket starts from) and ``shuffled`` (the moved
  ticket's masks permuted within each layer, ``shuffle_layerwise``: random masks with the same
  per-layer counts, from the moved init; the chance level of the mask's arrangement).
* **Relational measures** (You et al. 2020's C and L, ``ticketlab.compare(t, "relational")``) of the
  direct, transferred and shuffled tickets of those rounds against both of their nulls
  (``--null-samples`` each, default 20); masks only, so computed from the cache (also with
  ``--report-only``) and kept there as ``relational_<ticket>_rNN_nS.json``.
* Every training: the model's default for ``digits`` (SGD 0.05, momentum 0.9, cosine schedule,
  batch 64, 20 epochs), the seed's split (1,079 / 359 / 359 images), test accuracy at the end.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/elastic_study.py
    .venv/bin/python benchmarks/elastic_study.py --report-only      # the page from the cache only
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "results" / "elastic.md"
PNG = DOC.with_name("elastic.png")
COMMAND = "OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/elastic_study.py"
DATASET = "digits"
SMALL, BIG = "resnet20", "resnet32"
#: target depth -> the depth its tickets are moved from
SOURCE = {BIG: SMALL, SMALL: BIG}
VARIANTS = ("transfer", "masks_only", "shuffled")
OVERLAP = ("jaccard", "kappa", "profile_js")
#: You et al. 2020's measures (the registry group ``relational``), their short names on the page
RELATIONAL = {"relational_clustering": "C", "relational_path_length": "L"}
#: the fields of a relational record that the page reads (``ticketlab.compare``)
REL_FIELDS = ("value", "expected", "lift", "z", "p", "expected_degree", "lift_degree", "p_degree")
#: the tickets whose relational measures are computed; ``masks_only`` has the ``transfer`` masks
REL_TICKETS = ("direct", "transfer", "shuffled")


def imp_path(cache: Path, seed: int, model: str) -> Path:
    return cache / f"s{seed}" / model / "imp.h5"


def round_path(cache: Path, seed: int, model: str, k: int) -> Path:
    return cache / f"s{seed}" / model / "rounds" / f"round_{k:02d}.h5"


def moved_path(cache: Path, seed: int, target: str, k: int, variant: str) -> Path:
    return cache / f"s{seed}" / f"to_{target}" / f"{variant}_r{k:02d}.h5"


def relational_path(cache: Path, seed: int, target: str, k: int, kind: str, samples: int) -> Path:
    folder = target if kind == "direct" else f"to_{target}"
    return cache / f"s{seed}" / folder / f"relational_{kind}_r{k:02d}_n{samples}.json"


def _threads() -> None:
    import torch

    torch.set_num_threads(1)


def run_imp(seed: int, model: str, rounds: int, rate: float, width: int, cache_text: str) -> tuple[str, float]:
    """The IMP run of one seed and depth (in a worker): its ticket and every round's ticket."""
    from ticketlab.fileformat import save
    from ticketlab.mining import mine

    _threads()
    out = imp_path(Path(cache_text), seed, model)
    (out.parent / "rounds").mkdir(parents=True, exist_ok=True)
    started, cpu = time.perf_counter(), time.process_time()
    ticket = mine("imp", model=model, dataset=DATASET, seed=seed, device="cpu", rounds=rounds,
                  miner_config={"reset": "init", "rate": rate}, model_kwargs={"width": width},
                  omit_scores=True, save_rounds=out.parent / "rounds")
    ticket.provenance["cpu_seconds"] = round(time.process_time() - cpu, 3)  # this process's CPU time
    save(ticket, out)
    return str(out), time.perf_counter() - started


def moved(cache: Path, seed: int, target: str, k: int, variant: str) -> Any:
    """The untrained ticket of a variant: round ``k`` of the other depth, moved to ``target``."""
    from ticketlab.elastic import transfer
    from ticketlab.fileformat import load
    from ticketlab.transforms import shuffle_layerwise

    source = load(round_path(cache, seed, SOURCE[target], k), scores=False, history=False)
    ticket = transfer(source, target, weights=variant != "masks_only")
    return shuffle_layerwise(ticket, seed=seed) if variant == "shuffled" else ticket


def run_moved(seed: int, target: str, k: int, variant: str, cache_text: str) -> tuple[str, float]:
    """Train one moved ticket (in a worker) and keep the trained ticket."""
    import ticketlab
    from ticketlab.fileformat import save

    _threads()
    cache = Path(cache_text)
    out = moved_path(cache, seed, target, k, variant)
    out.parent.mkdir(parents=True, exist_ok=True)
    started, cpu = time.perf_counter(), time.process_time()
    trained = ticketlab.train(moved(cache, seed, target, k, variant), device="cpu")
    trained.provenance["wall_seconds"] = round(time.perf_counter() - started, 3)
    trained.provenance["cpu_seconds"] = round(time.process_time() - cpu, 3)
    save(trained, out)
    return str(out), time.perf_counter() - started


def _read_relational(path: Path) -> dict[str, Any] | None:
    """A cached relational result, numbers only (NaN for a missing field); None if it is unreadable."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        out: dict[str, Any] = {m: {f: _number(raw["metrics"][m].get(f)) for f in REL_FIELDS} for m in RELATIONAL}
        for key in ("cpu_seconds", "wall_seconds"):
            out[key] = _number(raw.get(key))
        return out
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _number(x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        if x is None:
            return math.nan
        raise TypeError(f"not a number: {type(x).__name__}")
    return float(x)


def relational(cache: Path, seed: int, target: str, k: int, kind: str, samples: int) -> dict[str, Any] | None:
    """C and L of one ticket against both nulls (``ticketlab.compare(..., "relational")``, ``samples``
    per null, the run's seed), read from the cache or computed and kept there; None without its masks.

    ``kind``: ``direct`` (round ``k`` of IMP on ``target``), ``transfer`` or ``shuffled`` (:func:`moved`).
    """
    import ticketlab
    from ticketlab.atomic import atomic_write_text
    from ticketlab.fileformat import load

    path = relational_path(cache, seed, target, k, kind, samples)
    if path.exists() and (cached := _read_relational(path)) is not None:
        return cached
    direct, source = round_path(cache, seed, target, k), round_path(cache, seed, SOURCE[target], k)
    if not (direct.exists() if kind == "direct" else source.exists()):
        return None
    started, cpu = time.perf_counter(), time.process_time()
    ticket = (load(direct, weights=False, scores=False, history=False) if kind == "direct"
              else moved(cache, seed, target, k, kind))
    recs = ticketlab.compare([ticket], "relational", null_samples=samples, seed=seed)
    raw = {"metrics": {r["metric"]: {f: r.get(f) for f in REL_FIELDS} for r in recs if r["layer"] == "__total__"},
           "null_samples": samples, "seed": seed,
           "cpu_seconds": round(time.process_time() - cpu, 3), "wall_seconds": round(time.perf_counter() - started, 3)}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(raw, indent=1) + "\n")
    return _read_relational(path)


# ---------------------------------------------------------------------------------- results
def _acc(path: Path) -> tuple[float, float, float, float]:
    """(test accuracy, density, wall seconds, CPU seconds) of a trained ticket file, NaN where it is missing."""
    from ticketlab.fileformat import read_info

    if not path.exists():
        return np.nan, np.nan, 0.0, 0.0
    info = read_info(path)
    prov = info["provenance"]
    return (float(prov.get("test_accuracy", np.nan)), info["density"], float(prov.get("wall_seconds", 0.0)),
            float(prov.get("cpu_seconds", 0.0)))


def _overlap(a: Any, b: Any) -> dict[str, Any]:
    """Jaccard and kappa of two tickets of one model with their chance values, the allocation
    profiles' Jensen-Shannon distance, and per-layer Jaccard (ticketlab.compare)."""
    import ticketlab

    recs = ticketlab.compare([a, b], list(OVERLAP), per_layer=True, labels=["a", "b"])
    out: dict[str, Any] = {"layers": {}}
    for r in recs:
        if r["layer"] == "__total__" and r["a"] == "a" and r["b"] == "b":
            out[r["metric"]] = (r["value"], r.get("expected"))
        elif r["metric"] == "jaccard" and not r["layer"].startswith("__"):
            out["layers"][r["layer"]] = (r["value"], r.get("expected"))
    return out


def collect(cache: Path, seeds: list[int], rounds: int, ks: list[int], samples: int = 20) -> dict[str, Any]:
    """Everything the page shows, from the cache (NaN where a run is missing); the relational
    measures are computed where the cache lacks them (``samples`` per null) and kept there."""
    from ticketlab.fileformat import load

    s, n = len(seeds), rounds + 1
    res: dict[str, Any] = {"seeds": seeds, "ks": ks, "seconds": 0.0, "cpu_seconds": 0.0, "found": 0, "expected": 0,
                           "null_samples": samples, "relational_count": 0, "relational_seconds": 0.0,
                           "relational_cpu_seconds": 0.0}
    for target in (BIG, SMALL):
        d: dict[str, Any] = {"direct": np.full((s, n), np.nan), "direct_density": np.full((s, n), np.nan),
                             "profiles": {}, "overlap": {}, "between_seeds": {}}
        for v in VARIANTS:
            d[v] = np.full((s, len(ks)), np.nan)
            d[v + "_density"] = np.full((s, len(ks)), np.nan)
        for i, seed in enumerate(seeds):
            res["expected"] += 1
            p = imp_path(cache, seed, target)
            if p.exists():
                t = load(p, weights=False, scores=False)
                for r in t.history:
                    if r.get("stage") in ("dense", "round") and int(r["round"]) < n:
                        d["direct"][i, int(r["round"])] = float(r["test_accuracy"])
                        d["direct_density"][i, int(r["round"])] = float(r["density"])
                res["seconds"] += float(t.provenance.get("wall_seconds", 0.0))
                res["cpu_seconds"] += float(t.provenance.get("cpu_seconds", 0.0))
                res["found"] += 1
            for j, k in enumerate(ks):
                for v in VARIANTS:
                    res["expected"] += 1
                    acc, dens, secs, cpu = _acc(moved_path(cache, seed, target, k, v))
                    d[v][i, j], d[v + "_density"][i, j] = acc, dens
                    res["seconds"] += secs
                    res["cpu_seconds"] += cpu
                    res["found"] += int(not np.isnan(acc))
        for j, k in enumerate(ks):  # overlap and profiles of the masks (no training needed)
            rows: dict[str, list[Any]] = {"transfer": [], "shuffled": []}
            direct_masks = {}
            for seed in seeds:
                rp, sp = round_path(cache, seed, target, k), round_path(cache, seed, SOURCE[target], k)
                if not (rp.exists() and sp.exists()):
                    continue
                direct = load(rp, weights=False, scores=False, history=False)
                direct_masks[seed] = direct
                for v in rows:
                    rows[v].append(_overlap(moved(cache, seed, target, k, v), direct))
                d["profiles"].setdefault(k, {"direct": [], "transfer": []})
                d["profiles"][k]["direct"].append(direct.layer_density())
                d["profiles"][k]["transfer"].append(moved(cache, seed, target, k, "transfer").layer_density())
            d["overlap"][k] = rows
            pairs = [(a, b) for a in direct_masks for b in direct_masks if a < b]
            d["between_seeds"][k] = [_overlap(direct_masks[a], direct_masks[b]) for a, b in pairs]
        d["relational"] = {k: {kind: {m: {f: np.full(s, np.nan) for f in REL_FIELDS} for m in RELATIONAL}
                               for kind in REL_TICKETS} for k in ks}
        for k in ks:
            for kind in REL_TICKETS:
                for i, seed in enumerate(seeds):
                    rec = relational(cache, seed, target, k, kind, samples)
                    if rec is None:
                        continue
                    for m in RELATIONAL:
                        for f in REL_FIELDS:
                            d["relational"][k][kind][m][f][i] = rec[m][f]
                    res["relational_count"] += 1
                    res["relational_seconds"] += np.nan_to_num(rec["wall_seconds"])
                    res["relational_cpu_seconds"] += np.nan_to_num(rec["cpu_seconds"])
        res[target] = d
    return res


def _ms(values: np.ndarray, fmt: str = ".4f") -> str:
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if not len(v):
        return "–"
    sd = fmt.lstrip("+")
    return f"{v.mean():{fmt}} ± {v.std(ddof=1):{sd}}" if len(v) > 1 else f"{v.mean():{fmt}}"


def _diff(a: np.ndarray, b: np.ndarray) -> str:
    """Paired difference a − b over seeds: mean ± sd, and in how many seeds a >= b."""
    d = np.asarray(a, float) - np.asarray(b, float)
    d = d[~np.isnan(d)]
    if not len(d):
        return "–"
    return f"{_ms(d, '+.4f')} ({int((d >= 0).sum())}/{len(d)})"


def _pair(rows: list[dict[str, Any]], metric: str, fmt: str = ".3f") -> str:
    vals = [r[metric][0] for r in rows if metric in r and r[metric][0] is not None]
    chance = [r[metric][1] for r in rows if metric in r and r[metric][1] is not None]
    if not vals:
        return "–"
    text = _ms(np.array(vals), fmt)
    return text + (f" (chance {np.mean(chance):{fmt}})" if chance else "")


def accuracy_table(res: dict[str, Any]) -> list[str]:
    lines = ["| target | round k | direct IMP ticket | transferred (masks + init) | transferred − direct "
             "| masks only, target θ0 | masks only − direct | layer-wise shuffled | transferred − shuffled |",
             "|---|---|---|---|---|---|---|---|---|"]
    for target in (BIG, SMALL):
        d = res[target]
        lines.append(f"| {target} | 0 (dense) | {_ms(d['direct'][:, 0])} | | | | | | |")
        for j, k in enumerate(res["ks"]):
            direct = d["direct"][:, k]
            dens = f"{_ms(d['direct_density'][:, k] * 100, '.2f')} % / {_ms(d['transfer_density'][:, j] * 100, '.2f')} %"
            lines.append(
                f"| {target} | {k} (density {dens}) | {_ms(direct)} | {_ms(d['transfer'][:, j])} | "
                f"{_diff(d['transfer'][:, j], direct)} | {_ms(d['masks_only'][:, j])} | "
                f"{_diff(d['masks_only'][:, j], direct)} | {_ms(d['shuffled'][:, j])} | "
                f"{_diff(d['transfer'][:, j], d['shuffled'][:, j])} |")
    return lines


def overlap_table(res: dict[str, Any]) -> list[str]:
    lines = ["| target | round k | Jaccard: transferred vs direct | Jaccard: direct vs direct, other seed "
             "| Jaccard: shuffled vs direct | kappa: transferred vs direct | kappa: direct vs direct, other seed "
             "| profile JS distance: transferred vs direct | same: direct vs direct |",
             "|---|---|---|---|---|---|---|---|---|"]
    for target in (BIG, SMALL):
        d = res[target]
        for k in res["ks"]:
            ov, bs = d["overlap"].get(k, {}), d["between_seeds"].get(k, [])
            tr, sh = ov.get("transfer", []), ov.get("shuffled", [])
            lines.append(f"| {target} | {k} | {_pair(tr, 'jaccard')} | {_pair(bs, 'jaccard')} | {_pair(sh, 'jaccard')} | "
                         f"{_pair(tr, 'kappa')} | {_pair(bs, 'kappa')} | {_pair(tr, 'profile_js')} | "
                         f"{_pair(bs, 'profile_js')} |")
    return lines


REL_LABELS = {"direct": "direct IMP", "transfer": "transferred (= masks only)", "shuffled": "layer-wise shuffled"}


def _rel(res: dict[str, Any], target: str, k: int, kind: str, metric: str, field: str) -> np.ndarray:
    """Per seed: one field of one relational record (NaN where it is missing)."""
    rel = res[target].get("relational", {}).get(k, {}).get(kind, {}).get(metric, {})
    return np.asarray(rel.get(field, np.full(len(res["seeds"]), np.nan)), dtype=float)


def relational_table(res: dict[str, Any]) -> list[str]:
    head = " | ".join(f"{c} | {c}: lift vs random masks | {c}: z vs random masks | {c}: lift vs degree null"
                      for c in RELATIONAL.values())
    lines = [f"| target | round k | ticket | {head} |", "|---|---|---|" + "---|" * 4 * len(RELATIONAL)]
    for target in (BIG, SMALL):
        for k in res["ks"]:
            for kind in REL_TICKETS:
                cells = [_ms(_rel(res, target, k, kind, m, f), fmt) for m in RELATIONAL
                         for f, fmt in (("value", ".4f"), ("lift", ".4f"), ("z", "+.2f"), ("lift_degree", ".4f"))]
                lines.append(f"| {target} | {k} | {REL_LABELS[kind]} | " + " | ".join(cells) + " |")
    return lines


def _extremes(p: np.ndarray, samples: int) -> tuple[int, int, int]:
    """From add-one upper-tail p-values: (tickets above all ``samples`` null samples, at or below
    all of them, tickets with a p-value)."""
    p = p[~np.isnan(p)]
    return int((p <= 1 / (samples + 1) + 1e-9).sum()), int((p >= 1 - 1e-9).sum()), len(p)


def relational_findings(res: dict[str, Any]) -> list[str]:
    """Sentences on the relational measures: each ticket against its nulls, then transferred
    against direct beyond what the nulls give (paired by seed)."""
    out, samples, ks = [], res.get("null_samples", 20), res["ks"]
    nulls = (("random masks", "expected", "p"), ("the degree-preserving null", "expected_degree", "p_degree"))
    for target in (BIG, SMALL):
        if not any((~np.isnan(_rel(res, target, k, kind, m, "value"))).any()
                   for k in ks for kind in REL_TICKETS for m in RELATIONAL):
            out.append(f"**Relational measures at {target}.** Not computed (no cached tickets).")
            continue
        ranges = []
        for k in ks:
            span = []
            for m, c in RELATIONAL.items():
                means = [np.nanmean(v) for kind in REL_TICKETS
                         if not np.isnan(v := _rel(res, target, k, kind, m, "value")).all()]
                if means:
                    span.append(f"{c} from {min(means):.4f} to {max(means):.4f}")
            if span:
                ranges.append(f"at round {k} " + " and ".join(span))
        parts = []
        for m, c in RELATIONAL.items():
            per_null = []
            for name, _, pf in nulls:
                counts = []
                for kind in REL_TICKETS:
                    hi, lo, n = _extremes(np.concatenate([_rel(res, target, k, kind, m, pf) for k in ks]), samples)
                    counts.append(f"{REL_LABELS[kind].split(' (')[0]} {hi} / {lo} of {n}")
                per_null.append(f"{name}: " + ", ".join(counts))
            parts.append(f"{c} against " + "; ".join(per_null))
        out.append(f"**Relational measures at {target}, each ticket against its nulls.** The three tickets' mean values "
                   "run " + "; ".join(ranges) + " (a complete graph has C = L = 1). Tickets (seed × round) whose value "
                   f"lies above all / at or below all {samples} samples of a null (chance {2 / (samples + 1):.3f} per "
                   "ticket under that null): " + ". ".join(parts) + ".")
        parts, within, total = [], 0, 0
        for m, c in RELATIONAL.items():
            rounds = []
            for k in ks:
                v_t, v_d = _rel(res, target, k, "transfer", m, "value"), _rel(res, target, k, "direct", m, "value")
                if np.isnan(v_t - v_d).all():
                    continue
                nums = [f"{np.nanmean(v_t - v_d):+.4f}"]
                beyond = []
                for _name, ef, _p in nulls:
                    e_t, e_d = _rel(res, target, k, "transfer", m, ef), _rel(res, target, k, "direct", m, ef)
                    nums.append(f"{np.nanmean(e_t - e_d):+.4f}")
                    diff = float(np.nanmean((v_t - e_t) - (v_d - e_d)))
                    x = (v_d - e_d)[~np.isnan(v_d - e_d)]
                    sd = float(np.std(x, ddof=1)) if len(x) > 1 else np.nan
                    within += int(abs(diff) <= sd)
                    total += 1
                    beyond.append(f"{diff:+.4f} (sd {sd:.4f})")
                rounds.append(f"round {k}: {nums[0]}; their random-mask nulls' means differ by {nums[1]}, their "
                              f"degree nulls' by {nums[2]}; beyond the nulls {beyond[0]} and {beyond[1]}")
            if rounds:
                parts.append(f"{c} at " + ". At ".join(rounds))
        if parts:
            out.append(f"**Relational measures at {target}, transferred against direct** (paired by seed; the "
                       "transferred ticket's value minus the direct one's, the same difference of their nulls' means, "
                       "and the difference of value − null mean, with the seed-to-seed sd of the direct tickets' "
                       "value − null mean): " + ". ".join(parts) + f". The difference beyond the nulls is within one "
                       f"such sd in {within} of {total} comparisons (measure × round × null).")
    return out


def _mean(rows: list[dict[str, Any]], metric: str) -> tuple[float, float]:
    vals = [r[metric] for r in rows if metric in r and r[metric][0] is not None]
    if not vals:
        return np.nan, np.nan
    return float(np.mean([v[0] for v in vals])), float(np.mean([v[1] if v[1] is not None else np.nan for v in vals]))


def findings(res: dict[str, Any]) -> list[str]:
    """Sentences about the paper's claim, computed from the tables' numbers."""
    out = []
    for target, word in ((BIG, "Stretching resnet20 → resnet32"), (SMALL, "Squeezing resnet32 → resnet20")):
        d = res[target]
        done = [(j, k) for j, k in enumerate(res["ks"]) if not np.isnan(d["transfer"][:, j]).all()
                and not np.isnan(d["direct"][:, k]).all()]
        if not done:
            out.append(f"**{word}.** No finished runs yet.")
            continue
        gaps = {k: d["transfer"][:, j] - d["direct"][:, k] for j, k in done}
        mean_gap = {k: float(np.nanmean(g)) for k, g in gaps.items()}
        worst = min(mean_gap, key=mean_gap.get)
        pairs = np.concatenate([g[~np.isnan(g)] for g in gaps.values()])
        shuffle_gap = {k: float(np.nanmean(d["transfer"][:, j] - d["shuffled"][:, j])) for j, k in done}
        masks_gap = {k: float(np.nanmean(d["masks_only"][:, j] - d["direct"][:, k])) for j, k in done}
        dens = {k: 100 * float(np.nanmean(d["transfer_density"][:, j])) for j, k in done}
        spread = {k: float(np.nanstd(d["direct"][:, k], ddof=1)) if (~np.isnan(d["direct"][:, k])).sum() > 1 else np.nan
                  for _, k in done}
        within = [k for k in mean_gap if abs(mean_gap[k]) <= spread[k]]
        text = (f"**{word}.** Over {len(pairs)} paired runs (seed × round), the transferred ticket's test accuracy "
                f"minus the directly mined ticket's is {pairs.mean():+.4f} on average (sd {pairs.std(ddof=1) if len(pairs) > 1 else 0:.4f}; "
                f"≥ 0 in {int((pairs >= 0).sum())} of {len(pairs)}); per round: "
                + ", ".join(f"{mean_gap[k]:+.4f} at round {k} ({dens[k]:.1f} % kept)" for _, k in done)
                + f". The lowest mean difference is {mean_gap[worst]:+.4f} (round {worst}), "
                f"{abs(mean_gap[worst]) * 359:.1f} of the 359 test images. The mean difference is within one "
                f"seed-to-seed sd of the direct tickets' accuracy in {len(within)} of {len(done)} rounds (sd "
                + ", ".join(f"{spread[k]:.4f}" for _, k in done) + "). ")
        text += ("Against random masks with the same per-layer counts (layer-wise shuffled, same init) the transferred "
                 "ticket is " + ", ".join(f"{shuffle_gap[k]:+.4f}" for _, k in done)
                 + (" (round " if len(done) == 1 else " (rounds ") + ", ".join(str(k) for _, k in done) + "); the moved masks trained from the target's own θ0 are "
                 + ", ".join(f"{masks_gap[k]:+.4f}" for _, k in done) + " against the direct tickets.")
        out.append(text)
        ov = []
        for _, k in done:
            jt, jc = _mean(d["overlap"].get(k, {}).get("transfer", []), "jaccard")
            jb, _ = _mean(d["between_seeds"].get(k, []), "jaccard")
            if not np.isnan(jt):
                ov.append(f"round {k}: {jt:.3f} against {jc:.3f} by chance and {jb:.3f} between two seeds' direct tickets")
        if ov:
            out.append(f"**Overlap at {target}.** Jaccard index of the transferred and the direct ticket of the same "
                       "seed: " + "; ".join(ov) + ".")
    scale = []
    for target in (BIG, SMALL):
        d = res[target]
        for j, k in enumerate(res["ks"]):
            means = {"direct": np.nanmean(d["direct"][:, k]), **{v: np.nanmean(d[v][:, j]) for v in VARIANTS}}
            means = {name: m for name, m in means.items() if not np.isnan(m)}
            if len(means) > 1:
                lo, hi = min(means, key=means.get), max(means, key=means.get)
                scale.append(f"{target} round {k}: {means[hi] - means[lo]:.4f} ({(means[hi] - means[lo]) * 359:.1f} "
                             f"images; highest {hi}, lowest {lo})")
    out += relational_findings(res)
    if scale:
        out.append("**Scale.** The spread between the highest and the lowest mean accuracy of the four tickets "
                   "(direct, transferred, masks only, shuffled) is " + "; ".join(scale) + ". Every difference on "
                   "this page is a few test images on a data set where the dense networks are near their ceiling.")
    out.append("**Not tested here**: CIFAR-10 and the paper's depths up to 56 and widths of 16, rewinding to an "
               "early iteration instead of θ0, the paper's other block orders (available as `--mapping`), whether "
               "C and L go with accuracy across tickets (You et al.'s question; here they describe the masks only).")
    return out


def plot(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ticketlab.atomic import atomic_path

    k = res["ks"][-1]
    fig, axes = plt.subplots(2, 2, figsize=(13, 7.5), gridspec_kw={"width_ratios": [1, 2.2]})
    for row, target in enumerate((BIG, SMALL)):
        d = res[target]
        ax = axes[row, 0]
        dens_direct = np.nanmean(d["direct_density"], axis=0) * 100
        rounds = [kk for kk in range(d["direct"].shape[1]) if not np.isnan(d["direct"][:, kk]).all()]
        if rounds:
            ax.errorbar(dens_direct[rounds], np.nanmean(d["direct"][:, rounds], axis=0),
                        yerr=np.nanstd(d["direct"][:, rounds], axis=0), marker="o", ms=4, capsize=2,
                        label=f"direct IMP on {target}")
        for shift, (v, marker, name) in zip((1.0, 1.04, 1.08), (
                ("transfer", "s", f"transferred from {SOURCE[target]}"),
                ("masks_only", "^", "transferred masks, target θ0 (nudged left)"),
                ("shuffled", "x", "transferred, layer-wise shuffled (nudged left)"))):
            x = np.nanmean(d[v + "_density"], axis=0) * 100 * shift  # same density as "transfer"; moved to stay readable
            ok = ~np.isnan(d[v]).all(axis=0)
            if ok.any():
                ax.errorbar(x[ok], np.nanmean(d[v][:, ok], axis=0), yerr=np.nanstd(d[v][:, ok], axis=0), marker=marker,
                            ms=5, capsize=2, ls="none", label=name)
        ax.set_xscale("log")
        ticks = [t for t in (100, 64, 41, 26, 17, 11, 7, 4.4, 2.8) if t >= np.nanmin(dens_direct) * 0.8]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.invert_xaxis()
        ax.set_xlabel("weights kept (%)")
        ax.set_ylabel("test accuracy (digits)")
        ax.set_title(f"{target}: accuracy (mean ± sd, {len(res['seeds'])} seeds)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax = axes[row, 1]
        prof = d["profiles"].get(k)
        if prof and prof["direct"]:
            names = list(prof["direct"][0])
            x = np.arange(len(names))
            for key, marker, name in (("direct", "o", f"direct IMP on {target}"),
                                      ("transfer", "s", f"transferred from {SOURCE[target]}")):
                y = np.array([[p[n] for n in names] for p in prof[key]])
                ax.plot(x, y.mean(axis=0), marker=marker, ms=3, lw=1, label=name)
            ax.set_xticks(x, [n.replace(".weight", "").replace("blocks.", "b") for n in names], rotation=90, fontsize=6)
            ax.set_ylabel("layer density")
            ax.set_title(f"{target}: per-layer density at round {k} (mean over seeds)", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def page(res: dict[str, Any], args: argparse.Namespace, wall: float | None) -> str:
    missing = res["expected"] - res["found"]
    timing = (f"The runs on this page took {res['cpu_seconds'] / 60:.1f} minutes of CPU time together (1 torch "
              f"thread each, `nice -n 10`), {res['seconds'] / 60:.1f} minutes of wall time on a 2-core machine "
              "shared with other jobs"
              + (f"; the last invocation ran {wall / 60:.1f} minutes" if wall else "") + "."
              + (f" Runs missing: {missing} of {res['expected']}." if missing else "")
              + (f" The relational measures of {res['relational_count']} tickets (both nulls, "
                 f"{res['null_samples']} samples each) took {res['relational_cpu_seconds'] / 60:.1f} minutes of CPU "
                 f"time ({res['relational_seconds'] / 60:.1f} minutes of wall time), computed from the cached masks "
                 "and kept in the cache (`relational_*.json`)." if res.get("relational_count") else ""))
    rate, rounds = args.rate, args.rounds
    lines = [
        "# Elastic lottery tickets: tickets moved between ResNet depths (digits)",
        "",
        "Chen et al. 2021 (\"The Elastic Lottery Ticket Hypothesis\", NeurIPS) stretch an IMP ticket of a shallow "
        "ResNet to a deeper one by replicating residual blocks, or squeeze a deep one by dropping blocks, and claim "
        "that the moved ticket trains to nearly the accuracy of the ticket IMP finds directly at the target depth. "
        "This page checks that claim at small scale with `ticketlab transfer` (`ticketlab.transfer`, "
        "[ticketlab/elastic.py](../../ticketlab/elastic.py) states the rule and its sources).",
        "",
        "Generated, the whole page and its figure, by (from the repository root):",
        "",
        f"    {COMMAND}",
        "",
        timing,
        "",
        "**Reduced from the paper, for a budget of about 30 minutes on one CPU thread:** scikit-learn's `digits` "
        f"(8x8 images; 1,079 / 359 / 359 train / validation / test) instead of CIFAR-10; width {args.width} "
        f"({args.width} / {2 * args.width} / {4 * args.width} channels) instead of 16; 20 epochs per training; "
        f"{rounds} IMP rounds removing {100 * rate:.0f} % of the remaining weights each (the paper: 20 % per round"
        + (", so one round here is two of the paper's" if abs(rate - 0.36) < 1e-12 else "") + ") down to "
        f"{100 * (1 - rate) ** rounds:.1f} % of the weights; survivors reset to θ0 (the authors' scripts rewind "
        f"ResNets to iteration 1,000, `--rewinding_steps 1000it`; a whole training here has 340 iterations); "
        f"{len(res['seeds'])} seeds. "
        "With 359 test images, one image is 0.28 percentage points of accuracy.",
        "",
        "## Protocol",
        "",
        f"- **Direct tickets**: `ticketlab.mine(\"imp\", model=M, dataset=\"digits\", rounds={rounds}, "
        f"miner_config={{\"reset\": \"init\", \"rate\": {rate}}}, model_kwargs={{\"width\": {args.width}}}, seed=S, "
        "save_rounds=DIR)` for M = resnet20 and resnet32: global magnitude pruning; every round's ticket is kept "
        "with the test accuracy of its training from θ0 (the same training as `ticketlab train` of that ticket).",
        f"- **Transferred tickets**, at rounds k = {', '.join(map(str, res['ks']))}: round k of resnet20 stretched to "
        "resnet32 (each stage's blocks 0, 1, 2 → 0, 1, 1, 2, 2) and round k of resnet32 squeezed to resnet20 "
        "(blocks 0, 1, 3 of each stage kept); stem, head and each stage's block 0 copied. Three variants, each "
        "trained with `ticketlab.train` (same config and seed as the direct tickets): **transferred** (masks and the "
        "source's θ0 moved by the same map, as the paper does; biases and batch norm from the target model at the "
        "seed), **masks only** (the moved masks from the target model's own θ0: the same start as the direct "
        "ticket, so only the mask differs) and **layer-wise shuffled** (the transferred ticket's masks permuted "
        "within each layer: random masks with the same per-layer counts, same moved init).",
        "- **Overlap** (`ticketlab.compare`, both tickets on the target depth, so every block is one both have): "
        "Jaccard index and Cohen's kappa against their chance values (random masks with the same per-layer counts), "
        "and the Jensen-Shannon distance between the per-layer allocation profiles; as a scale, the same between "
        "the direct tickets of two seeds.",
        f"- **Relational measures** (You et al. 2020; `ticketlab.compare(ticket, \"relational\", "
        f"null_samples={res.get('null_samples', 20)}, seed=S)`, one ticket at a time, "
        "[docs/ticket_graphs.md](../ticket_graphs.md)): the direct, transferred and layer-wise shuffled tickets "
        "of the rounds above; the masks-only variant has the transferred ticket's masks, so the same values.",
        "",
        "## Accuracy",
        "",
        "Test accuracy at the end of training, mean ± sd over seeds; the densities are the direct / transferred "
        "ticket's; differences are paired by seed (in parentheses: seeds where the first is at least the second).",
        "",
        *accuracy_table(res),
        "",
        "![Accuracy against density, and per-layer density profiles](elastic.png)",
        "",
        "## Overlap and per-layer profiles",
        "",
        "Mean ± sd over seeds (between-seed columns: over seed pairs); chance in parentheses.",
        "",
        *overlap_table(res),
        "",
        "## Relational measures (You et al. 2020)",
        "",
        "Every layer between two hidden tensors (the convolutions of the residual blocks, with the downsampling "
        "blocks' 1×1 shortcuts; not the stem or the head) is one relational graph: node i is channel i of the "
        "layer's input and of its output (where the two widths differ, a node of the wider side is a group of "
        "contiguous channels; no layer here has more than 32 channels, fewer than the paper's 64 nodes), and nodes "
        "u ≠ v are joined when the ticket keeps any weight between them, in either direction. **C** is the mean local "
        "clustering coefficient of a graph, **L** its mean shortest-path distance over the node pairs joined by a "
        "path; a ticket's value is the mean over its layers (a stretched ticket's copied blocks repeat their "
        "source's graphs). Taking input channel i and output channel i as one node is a labelling convention in a "
        "mined ticket, so a raw C or L depends on it; the columns read each value against two nulls that keep the "
        "labelling: random masks with the ticket's kept count in every layer (lift = value / the samples' mean, z in "
        "the samples' sd) and the degree-preserving null (every unit keeps its kept-weight count in every layer; "
        f"lift only). {res.get('null_samples', 20)} samples per null and ticket, seeded by the run's seed. The "
        "layer-wise shuffled ticket is itself a draw of random masks with the same per-layer counts. Mean ± sd over "
        "seeds.",
        "",
        *relational_table(res),
        "",
        "## What holds of the paper's claim here",
        "",
        "Generated from the numbers above by the same command:",
        "",
        *[f"- {s}" for s in findings(res)],
        "",
    ]
    return "\n".join(lines)


def write(cache: Path, args: argparse.Namespace, wall: float | None) -> None:
    from ticketlab.atomic import atomic_write_text

    res = collect(cache, args.seed_list, args.rounds, args.k_list, args.null_samples)
    plot(res, PNG)
    atomic_write_text(DOC, page(res, args, wall))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    ap.add_argument("--rounds", type=int, default=6, help="IMP rounds (default 6)")
    ap.add_argument("--rate", type=float, default=0.36, help="fraction removed per round (default 0.36 = 1 - 0.8^2)")
    ap.add_argument("--transfer-rounds", default="3,6", help="rounds whose tickets are moved (default 3,6)")
    ap.add_argument("--width", type=int, default=8, help="channels of the first stage (default 8)")
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel, one thread each (default 1)")
    ap.add_argument("--cache", type=Path, default=ROOT / "out" / "elastic", help="where finished runs are kept")
    ap.add_argument("--null-samples", type=int, default=20,
                    help="samples per null of the relational measures (default 20)")
    ap.add_argument("--report-only", action="store_true", help="only write the page from the cache")
    args = ap.parse_args(argv)
    args.seed_list = [int(s) for s in args.seeds.split(",")]
    args.k_list = [int(k) for k in args.transfer_rounds.split(",")]
    if args.null_samples < 2:
        raise SystemExit("--null-samples must be at least 2")
    if any(not 1 <= k <= args.rounds for k in args.k_list):
        raise SystemExit(f"--transfer-rounds must lie in 1..{args.rounds}")
    cache = args.cache.resolve()
    started, ran = time.perf_counter(), 0
    if not args.report_only:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            pending: dict[Any, tuple[Any, ...]] = {}
            submitted: set[int] = set()

            def submit_moved(seed: int) -> None:  # once both depths' rounds exist
                if seed in submitted or not all(imp_path(cache, seed, m).exists() for m in (SMALL, BIG)):
                    return
                submitted.add(seed)
                for target in (BIG, SMALL):
                    for k in args.k_list:
                        for v in VARIANTS:
                            if not moved_path(cache, seed, target, k, v).exists():
                                pending[pool.submit(run_moved, seed, target, k, v, str(cache))] = (target, seed, k, v)

            for seed in args.seed_list:
                todo = [m for m in (SMALL, BIG) if not imp_path(cache, seed, m).exists()]
                for m in todo:
                    fut = pool.submit(run_imp, seed, m, args.rounds, args.rate, args.width, str(cache))
                    pending[fut] = ("imp", seed, m)
                if not todo:
                    submit_moved(seed)
            while pending:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in done:
                    what = pending.pop(fut)
                    ran += 1
                    _, seconds = fut.result()
                    print(f"done {' '.join(map(str, what))} in {seconds:.0f} s", file=sys.stderr, flush=True)
                    if what[0] == "imp":
                        submit_moved(what[1])
    write(cache, args, time.perf_counter() - started if ran else None)  # the runs' time; none ran: not stated


if __name__ == "__main__":
    main()
