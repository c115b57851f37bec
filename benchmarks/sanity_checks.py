"""Frankle et al. 2021's sanity checks on lenet_300_100 and conv4 / digits: regenerates the
generated part of ``docs/results/sanity_checks.md`` and its plot.

Two steps, both resumable (finished work is kept under ``--cache`` and skipped next time):

1. mine the tickets with the study runner (``benchmarks/sanity_*_digits.toml``: SNIP, GraSP,
   SynFlow, magnitude at init and IMP with rewinding; densities 0.05 and 0.01; seeds 0, 1, 2);
2. run :func:`ticketlab.sanity.sanity_many` on every ticket (layer-wise shuffle, reinit, invert;
   each check and the original trained with the same seeds and the study's training options;
   IMP tickets with ``kept = rewind:K``, its own ``--reset``), two tickets at a time with one torch
   thread each.

The runs of the three tickets (seeds) of a (model, method, density) cell are pooled, and
:func:`ticketlab.sanity.compare_runs` gives the row (the rule of ``ticketlab sanity``). The page's
text between ``<!-- sanity:begin -->`` and ``<!-- sanity:end -->`` is generated from those numbers
(tables, the claims' verdicts, timings); the prose outside is left alone.

Usage (from the repository root; ~25 min on 2 shared cores)::

    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/sanity_checks.py --jobs 2
    .venv/bin/python benchmarks/sanity_checks.py --report-only      # page and plot from the cache
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "results" / "sanity_checks.md"
PLOT = ROOT / "docs" / "results" / "sanity_checks.png"
STUDIES = {"lenet_300_100": ROOT / "benchmarks" / "sanity_lenet_digits.toml",
           "conv4": ROOT / "benchmarks" / "sanity_conv4_digits.toml"}
CHECKS = ("shuffle_layerwise", "reinit", "invert")
#: Training seeds per ticket: lenet is cheap (3 x 3 seeds pooled), conv4 one per ticket (3 pooled).
SANITY_SEEDS = {"lenet_300_100": (0, 1, 2), "conv4": None}  # None: the ticket's own mining seed
AT_INIT = ("snip", "grasp", "synflow", "magnitude_init")
BEGIN, END = "<!-- sanity:begin -->", "<!-- sanity:end -->"
#: A cell whose original ticket is within this of chance accuracy is left out of the claims.
AT_CHANCE = 0.05


def _sanity_kwargs(spec: Any, method: str, seed: int) -> dict[str, Any]:
    """The options of a ticket's checks, as the cache records them ("kept": sanity_check's weights=,
    its name before issue 24, kept here so that cached results stay valid)."""
    reset = dict(spec.method_options.get("imp", {})).get("reset", "init")
    seeds = SANITY_SEEDS[spec.models[0]] or (seed,)
    return {"checks": list(CHECKS), "seeds": list(seeds), "kept": reset if method == "imp" else "init",
            "train_options": dict(spec.train), "device": "cpu"}


def run(models: list[str], cache: Path, jobs: int) -> dict[str, float]:
    """Mine (study runner) and check (sanity_many) every ticket not yet done; wall seconds per step."""
    import torch

    from ticketlab.sanity import sanity_many
    from ticketlab.study import Study

    torch.set_num_threads(1)
    walls: dict[str, float] = {}
    for model in models:
        study = Study.from_toml(STUDIES[model], cache / model)
        t0 = time.perf_counter()
        manifest = study.run(jobs=jobs)
        failed = [j for j in manifest["jobs"] if j["status"] == "failed"]
        if failed:
            raise SystemExit(f"{model}: {len(failed)} mining jobs failed, e.g. {failed[0]['id']}: {failed[0]['error']}")
        walls[f"{model} mining"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = cache / model / "sanity"
        out.mkdir(exist_ok=True)
        groups: dict[str, list[tuple[Path, Path, dict[str, Any]]]] = {}
        for job in manifest["jobs"]:
            kwargs = _sanity_kwargs(study.spec, job["method"], job["seed"])
            target = out / f"{job['id']}.json"
            if target.exists() and json.loads(target.read_text()).get("kwargs") == kwargs:
                continue
            key = json.dumps(kwargs, sort_keys=True)  # one pool per set of options
            groups.setdefault(key, []).append((cache / model / job["output"], target, kwargs))
        for items in groups.values():
            def save(i: int, result: Any, items: list = items) -> None:
                from ticketlab.atomic import atomic_write_text

                atomic_write_text(items[i][1], json.dumps({"kwargs": items[i][2], "result": result.to_dict()},
                                                          indent=1, allow_nan=False))
                print(f"  {items[i][1].stem}: {result.seconds:.0f} s", flush=True)

            options = {("weights" if k == "kept" else k): v for k, v in items[0][2].items()}
            sanity_many([p for p, _, _ in items], jobs=jobs, threads=1, done=save, **options)
        walls[f"{model} sanity checks"] = time.perf_counter() - t0
    return walls


# ---------------------------------------------------------------------------------- report
def collect(models: list[str], cache: Path) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """One row per (model, density, method, check), pooled over the tickets' seeds; core seconds."""
    from ticketlab.sanity import compare_runs
    from ticketlab.study.run import read_manifest

    rows: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}
    for model in models:
        folder = cache / model
        if not (folder / "study.json").exists():
            continue
        jobs = read_manifest(folder)["jobs"]
        seconds[f"{model} mining"] = sum(float(j.get("wall_seconds") or 0) for j in jobs)
        cells: dict[tuple[float, str], list[dict[str, Any]]] = {}
        for job in jobs:
            path = folder / "sanity" / f"{job['id']}.json"
            if path.exists():
                result = json.loads(path.read_text())["result"]
                result["effective"], result["num_classes"] = effective_fractions(folder / job["output"], result["seeds"])
                cells.setdefault((job["density"], job["method"]), []).append(result)
        seconds[f"{model} sanity checks"] = sum(r["seconds"] for rs in cells.values() for r in rs)
        for (density, method), results in sorted(cells.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
            original = [a for r in results for a in r["original"]]
            for check in CHECKS:
                accs = [a for r in results for row in r["rows"] if row["check"] == check for a in row["accuracies"]]
                c = compare_runs(check, accs, original)
                chance = 1.0 / results[0]["num_classes"]
                rows.append({"model": model, "density": density, "method": method, "check": check,
                             "tickets": len(results), "n": len(accs),
                             "kept": results[0].get("weights", results[0].get("kept")),  # "kept": older results
                             "mean": c.mean, "std": c.std, "original_mean": c.original_mean,
                             "original_std": c.original_std, "difference": c.difference,
                             "threshold": c.threshold, "effect": c.effect,
                             # an original at chance cannot be hurt: such a cell says nothing
                             "informative": c.original_mean >= chance + AT_CHANCE,
                             "effective": _mean([r["effective"][check] for r in results]),
                             "original_effective": _mean([r["effective"]["original"] for r in results])})
    return rows, seconds


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def effective_fractions(path: Path, seeds: list[int]) -> tuple[dict[str, float], int]:
    """Fraction of the kept weights that lie on an input-to-output path (``effective_mask``, the
    effective sparsity of Vysogorets & Kempe 2023), for the ticket and each check's ticket (mean
    over the seeds the checks were drawn with); and the data set's number of classes."""
    from ticketlab.fileformat import load
    from ticketlab.metrics.graph import effective_mask
    from ticketlab.transforms import get_transform

    def fraction(t: Any) -> float:
        eff = effective_mask(t)
        return sum(int(eff[n].sum()) for n in eff) / max(1, t.kept)

    t = load(path, weights=False, history=False)
    out = {"original": fraction(t)}
    for check in CHECKS:
        out[check] = _mean([fraction(get_transform(check)(t, seed=s)) for s in seeds])
    return out, int(t.provenance["data_spec"]["num_classes"])


def _pm(mean: float, std: float | None) -> str:
    return f"{100 * mean:.1f} ± {100 * std:.1f}" if std is not None else f"{100 * mean:.1f}"


def table(rows: list[dict[str, Any]], model: str) -> list[str]:
    out = ["| density | method | check | n | accuracy % | original % | difference (pp) | threshold (pp) | effect "
           "| effective weights % (check / original) |",
           "|---:|---|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        if r["model"] == model:
            effect = "**hurts**" if r["effect"] == "hurts" else r["effect"]
            if not r["informative"]:
                effect += " (original at chance: left out)"
            out.append(f"| {r['density']:g} | {r['method']} | {r['check']} | {r['n']} | {_pm(r['mean'], r['std'])} | "
                       f"{_pm(r['original_mean'], r['original_std'])} | {100 * r['difference']:+.1f} | "
                       f"{100 * r['threshold']:.1f} | {effect} | "
                       f"{100 * r['effective']:.0f} / {100 * r['original_effective']:.0f} |")
    return out


def _cells(rows: list[dict[str, Any]], methods: tuple[str, ...], checks: tuple[str, ...]) -> list[dict[str, Any]]:
    return [r for r in rows if r["method"] in methods and r["check"] in checks and r["informative"]]


def left_out(rows: list[dict[str, Any]]) -> str:
    cells = sorted({(r["method"], r["model"], r["density"]) for r in rows if not r["informative"]})
    return "; ".join(f"{m} on {model} at {d:g}" for m, model, d in cells) or "none"


def _where(rows: list[dict[str, Any]]) -> str:
    return "; ".join(f"{r['method']} {r['check']} on {r['model']} at {r['density']:g} ({100 * r['difference']:+.1f} pp)"
                     for r in rows) or "none"


def _verdict(agree: int, n: int) -> str:
    """``holds`` (every cell), ``does not hold`` (none), else ``holds in part``; bold."""
    if n == 0:
        return "**untested**"
    return "**holds**" if agree == n else "**does not hold**" if agree == 0 else "**holds in part**"


def claims(rows: list[dict[str, Any]]) -> list[str]:
    """The three claims, each judged cell by cell with the rule of the tables."""
    out = [f"Cells whose original ticket is within {100 * AT_CHANCE:g} pp of chance accuracy are left out (no "
           f"check can hurt a ticket that learns nothing): {left_out(rows)}.", ""]
    for label, methods, hurts in (("Pruning at initialization (SNIP, GraSP, SynFlow, magnitude at init)", AT_INIT,
                                   False), ("IMP with rewinding", ("imp",), True)):
        parts = []
        for check, name in (("shuffle_layerwise", "layer-wise shuffling"), ("reinit", "reinitialization")):
            cells = _cells(rows, methods, (check,))
            hurt = [r for r in cells if r["effect"] == "hurts"]
            agree = hurt if hurts else [r for r in cells if r["effect"] != "hurts"]
            parts.append(f"{name} hurts in {len(hurt)} of {len(cells)} cells, so the claim holds in "
                         f"**{len(agree)} of {len(cells)}**: {_verdict(len(agree), len(cells))} (cells against it: "
                         f"{_where([r for r in cells if r not in agree])})")
        claim = "do not hurt" if not hurts else "hurt"
        out.append(f"{len(out) - 1}. **{label}: layer-wise shuffling and reinitialization {claim}.** "
                   + "; ".join(parts) + ".")
    inv = _cells(rows, ("snip", "synflow"), ("invert",))
    hurt = [r for r in inv if r["effect"] == "hurts"]
    grasp = _cells(rows, ("grasp",), ("invert",))
    grasp_ok = [r for r in grasp if r["effect"] != "hurts"]
    a, b = _verdict(len(hurt), len(inv)), _verdict(len(grasp_ok), len(grasp))
    out.append(f"3. **Inversion hurts SNIP and SynFlow but not GraSP.** Inversion hurts SNIP / SynFlow in "
               f"{len(hurt)} of {len(inv)} cells (that half {a}; cells against it: "
               f"{_where([r for r in inv if r['effect'] != 'hurts'])}), and leaves GraSP unhurt in "
               f"{len(grasp_ok)} of {len(grasp)} cells (that half {b}; cells against it: "
               f"{_where([r for r in grasp if r['effect'] == 'hurts'])}).")
    return out


def plot(rows: list[dict[str, Any]], models: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ticketlab.atomic import atomic_path

    densities = sorted({r["density"] for r in rows}, reverse=True)
    models = [m for m in models if any(r["model"] == m for r in rows)]
    methods = [m for m in (*AT_INIT, "imp") if any(r["method"] == m for r in rows)]
    fig, axes = plt.subplots(len(models), len(densities), figsize=(5.2 * len(densities), 3.4 * len(models)),
                             squeeze=False, sharey="row")
    bars = ("original", *CHECKS)
    colors = {"original": "0.3", "shuffle_layerwise": "tab:blue", "reinit": "tab:orange", "invert": "tab:red"}
    width = 0.8 / len(bars)
    for i, model in enumerate(models):
        for j, d in enumerate(densities):
            ax = axes[i][j]
            for k, name in enumerate(bars):
                means, errs = [], []
                for m in methods:
                    r = next((r for r in rows if (r["model"], r["density"], r["method"]) == (model, d, m)
                              and r["check"] == (CHECKS[0] if name == "original" else name)), None)
                    mean = None if r is None else r["original_mean" if name == "original" else "mean"]
                    std = None if r is None else r["original_std" if name == "original" else "std"]
                    means.append(100 * mean if mean is not None else 0.0)
                    errs.append(100 * std if std is not None else 0.0)
                xs = [x + (k - (len(bars) - 1) / 2) * width for x in range(len(methods))]
                ax.bar(xs, means, width, yerr=errs, capsize=2, color=colors[name], label=name)
            ax.set_xticks(range(len(methods)), [m.replace("magnitude_init", "mag. init") for m in methods])
            ax.set_title(f"{model} / digits, density {d:g}", fontsize=10)
            ax.set_ylim(0, 100)
            if j == 0:
                ax.set_ylabel("test accuracy (%)")
            ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(bars), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def report(models: list[str], cache: Path, walls: dict[str, float]) -> str:
    from ticketlab.atomic import atomic_write_text
    from ticketlab.sanity import MIN_EFFECT, SE_FACTOR

    rows, seconds = collect(models, cache)
    covered = sorted({r["model"] for r in rows}, key=list(STUDIES).index)
    lines = [BEGIN, "",
             "Generated by `OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/sanity_checks.py --jobs 2` (do not "
             "edit by hand). Covered: " + (", ".join(f"`{m}`" for m in covered) or "nothing yet") + f" on digits. "
             f"Rule (as `ticketlab sanity`): a check **hurts** when its mean test accuracy is below the original's "
             f"by more than max({SE_FACTOR:g} standard errors of the difference, {100 * MIN_EFFECT:g} pp); ± is "
             "the sample standard deviation over the pooled runs (n runs: tickets of seeds 0, 1, 2 x training "
             "seeds per ticket).", "", "## The claims, as measured here", ""]
    lines += claims(rows) + [""]
    lines += ["![sanity checks](sanity_checks.png)", ""]
    for model in covered:
        kept = sorted({r["kept"] for r in rows if r["model"] == model})
        lines += [f"## {model} / digits", "", f"Starting weights of every training: {', '.join(kept)} "
                  "(IMP: its own rewinding; a reinit check is trained the same way from its fresh draw).", ""]
        lines += table(rows, model) + [""]
    lines += ["## Cost", "", "| step | seconds |", "|---|---:|"]
    lines += [f"| {k} (core seconds, from the cache) | {v:.0f} |" for k, v in seconds.items()]
    lines += [f"| {k} (wall, last run) | {v:.0f} |" for k, v in walls.items()]
    if walls:
        total = sum(v for k, v in walls.items() if k.startswith("run of "))
        lines += [f"| **whole regeneration** (sum of the last runs) | **{total:.0f}** ({total / 60:.1f} min) |"]
    lines += ["", END]
    block = "\n".join(lines)
    text = DOC.read_text() if DOC.exists() else "# Sanity checks of pruning at initialization\n\n" + BEGIN + END + "\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    atomic_write_text(DOC, head + block + tail)
    if rows:
        plot(rows, covered, PLOT)
    return block


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list(STUDIES), action="append", help="only this model (repeatable)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (one torch thread each)")
    parser.add_argument("--cache", type=Path, default=ROOT / "runs" / "sanity_checks", help="tickets and results")
    parser.add_argument("--report-only", action="store_true", help="only regenerate the page from the cache")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    models = args.model or list(STUDIES)
    started = time.perf_counter()
    walls_file = args.cache / "walls.json"  # the last measured wall time of every step
    walls = json.loads(walls_file.read_text()) if walls_file.exists() else {}
    if not args.report_only:
        new = run(models, args.cache, args.jobs)
        walls.update(new)
        walls[f"run of {', '.join(models)} (all its steps)"] = time.perf_counter() - started
        from ticketlab.atomic import atomic_write_text

        atomic_write_text(walls_file, json.dumps(walls, indent=1))
    print(report(list(STUDIES), args.cache, walls))


if __name__ == "__main__":
    main()
