"""Reproduce the IMP seed studies of issue 5 and regenerate their tables and plots.

Runs every (study, panel, variant, seed) with :func:`ticketlab.mining.mine` (method ``imp``),
keeps each finished run's ticket in ``--cache`` (a finished run is skipped on the next call; an
interrupted one resumes from its checkpoint), then rewrites the generated sections of
``docs/results/imp.md`` (between ``<!-- imp-study:NAME:begin -->`` and ``...:end -->``) and the
PNG plots next to it. The prose around the sections is left alone.

Usage (from the repository root)::

    .venv/bin/python benchmarks/imp_studies.py --jobs 2                  # all studies, 3 seeds
    .venv/bin/python benchmarks/imp_studies.py --study lenet --seeds 0,1,2,3,4
    .venv/bin/python benchmarks/imp_studies.py --report-only              # tables/plots from the cache

Studies (see ``docs/results/imp.md``): ``cora`` (GCN on Cora: continue / init / reinit),
``simple_cnn`` (simple_cnn on digits: the same three), ``lenet`` (lenet_300_100 on digits and
mnist1d: init vs reinit, 15 rounds at 20 %), ``lr`` (the same with Adam at lr 0.1).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "results" / "imp.md"
PLANETOID = ROOT.parent / "shared" / "data" / "planetoid"


@dataclass(frozen=True)
class Panel:
    """One plot panel / table: a model on a data set with fixed options, several variants."""

    label: str
    model: str
    dataset: str
    variants: tuple[str, ...]
    schedule: tuple[float, ...] | None = None  # cumulative sparsities; None = rounds at the default rate
    rounds: int | None = None
    train_options: dict[str, Any] = field(default_factory=dict)


STUDIES: dict[str, tuple[str, list[Panel]]] = {
    "cora": ("GCN on Cora (Adam 0.01, weight decay 5e-4, 200 full-batch iterations per round)", [
        Panel("gcn / cora", "gcn", "cora", ("continue", "init", "reinit"), schedule=(0.2, 0.52, 0.8, 0.96, 0.996)),
    ]),
    "simple_cnn": ("simple_cnn on digits (Adagrad, batch 100, 20 epochs per round)", [
        Panel("simple_cnn / digits, Adagrad lr 0.05 (default)", "simple_cnn", "digits",
              ("continue", "init", "reinit"), schedule=(0.2, 0.52, 0.8, 0.96, 0.9996)),
        Panel("simple_cnn / digits, Adagrad lr 0.01", "simple_cnn", "digits", ("continue", "init", "reinit"),
              schedule=(0.2, 0.52, 0.8, 0.96, 0.9996), train_options={"lr": 0.01}),
    ]),
    "lenet": ("lenet_300_100, 15 rounds at 20 % (Adam 1.2e-3, batch 60, 20 epochs per round)", [
        Panel("lenet_300_100 / digits", "lenet_300_100", "digits", ("init", "reinit"), rounds=15),
        Panel("lenet_300_100 / mnist1d", "lenet_300_100", "mnist1d", ("init", "reinit"), rounds=15),
    ]),
    "lr": ("lenet_300_100 with a large learning rate (Adam 0.1 instead of 1.2e-3; otherwise as above)", [
        Panel("lenet_300_100 / digits, Adam lr 0.1", "lenet_300_100", "digits", ("init", "reinit"), rounds=15,
              train_options={"lr": 0.1}),
        Panel("lenet_300_100 / mnist1d, Adam lr 0.1", "lenet_300_100", "mnist1d", ("init", "reinit"), rounds=15,
              train_options={"lr": 0.1}),
    ]),
}


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_").replace("__", "_")


def run_path(cache: Path, study: str, panel: Panel, variant: str, seed: int) -> Path:
    return cache / study / _slug(panel.label) / f"{variant}_s{seed}.h5"


def _data_root(cache: Path, dataset: str) -> Path | None:
    if dataset != "cora":
        return None
    root = cache / "planetoid"  # Planetoid writes processed/ files: use a writable copy
    if not (root / "Cora").exists():
        shutil.copytree(PLANETOID / "Cora", root / "Cora")
    return root


def _run(job: tuple[str, Panel, str, int, str]) -> tuple[str, float]:
    """One IMP run (in a worker process); returns its file and wall seconds."""
    import torch

    from ticketlab.fileformat import save
    from ticketlab.mining import mine

    study, panel, variant, seed, cache_text = job
    cache = Path(cache_text)
    torch.set_num_threads(1)
    out = run_path(cache, study, panel, variant, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ticket = mine(
        "imp", model=panel.model, dataset=panel.dataset, seed=seed, device="cpu",
        data_root=_data_root(cache, panel.dataset),
        schedule=[1.0 - s for s in panel.schedule] if panel.schedule else None,
        rounds=panel.rounds, miner_config={"reset": variant}, train_options=panel.train_options or None,
        keep_weights=False, keep_scores=False, checkpoint=out.with_name(out.name + ".ckpt"), resume=True,
    )
    save(ticket, out)
    out.with_name(out.name + ".ckpt").unlink(missing_ok=True)
    return str(out), time.perf_counter() - started


# ---------------------------------------------------------------------------------- report
def _curves(cache: Path, study: str, panel: Panel, seeds: list[int]) -> dict[str, dict[str, Any]]:
    """variant -> {"density": [...], "test": array (seeds x rounds), "seeds": [...], ...}."""
    from ticketlab.fileformat import load

    out: dict[str, dict[str, Any]] = {}
    for variant in panel.variants:
        rows, found, seconds = [], [], 0.0
        for seed in seeds:
            path = run_path(cache, study, panel, variant, seed)
            if not path.exists():
                continue
            t = load(path, weights=False, scores=False)
            hist = [r for r in t.history if r.get("stage") in ("dense", "round")]
            rows.append(hist)
            found.append(seed)
            seconds += float(t.provenance.get("wall_seconds", 0.0))
        if not rows:
            continue
        out[variant] = {
            "density": [r["density"] for r in rows[0]],
            "test": np.array([[r["test_accuracy"] for r in h] for h in rows]),
            "early": np.array([[r["early_stop_test_accuracy"] for r in h] for h in rows]),
            "stop": np.array([[r["early_stop_iteration"] for r in h] for h in rows]),
            "seeds": found,
            "seconds": seconds,
        }
    return out


def _cell(values: np.ndarray) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"


def _paired(curves: dict[str, dict[str, Any]], key: str, j: int) -> str:
    """init - reinit at round j over the seeds both have: mean ± sd (seeds where init is higher / all)."""
    a, b = curves["init"], curves["reinit"]
    common = [s for s in a["seeds"] if s in b["seeds"]]
    diff = np.array([a[key][a["seeds"].index(s), j] - b[key][b["seeds"].index(s), j] for s in common])
    if len(diff) < 2:
        return "–"
    return f"{diff.mean():+.3f} ± {diff.std(ddof=1):.3f} ({int((diff > 0).sum())}/{len(diff)})"


def _table(curves: dict[str, dict[str, Any]], key: str, paired: bool = False) -> list[str]:
    variants = list(curves)
    first = curves[variants[0]]
    paired = paired and "init" in curves and "reinit" in curves
    extra = " init − reinit, paired by seed (init higher) |" if paired else ""
    lines = ["| sparsity | density | " + " | ".join(variants) + " |" + extra,
             "|---:|---:|" + "---:|" * (len(variants) + paired)]
    for j, d in enumerate(first["density"]):
        cells = [_cell(curves[v][key][:, j]) if j < curves[v][key].shape[1] else "–" for v in variants]
        if paired:
            cells.append("–" if j == 0 else _paired(curves, key, j))  # round 0 is the same dense run
        lines.append(f"| {100 * (1 - d):.2f} % | {d:.4f} | " + " | ".join(cells) + " |")
    return lines


def _plot(study: str, title: str, panels: list[tuple[Panel, dict[str, dict[str, Any]]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ticketlab.atomic import atomic_path

    fig, axes = plt.subplots(1, len(panels), figsize=(max(5.2 * len(panels), 7.0), 3.9), squeeze=False)
    for ax, (panel, curves) in zip(axes[0], panels):
        for variant, c in curves.items():
            x = np.array(c["density"]) * 100
            mean, sd = c["test"].mean(0), c["test"].std(0, ddof=1) if len(c["seeds"]) > 1 else 0 * c["test"][0]
            ax.plot(x, mean, marker="o", ms=3, label=f"{variant} (n={len(c['seeds'])})")
            ax.fill_between(x, mean - sd, mean + sd, alpha=0.2)
        ax.set_xscale("log")
        lo = min(min(c["density"]) for c in curves.values()) * 100
        ticks = [t for t in (100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02) if t >= lo * 0.8]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.invert_xaxis()
        ax.set_xlabel("weights remaining (%)")
        ax.set_ylabel("test accuracy (end of training)")
        ax.set_title(panel.label, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("\n".join(textwrap.wrap(f"IMP: {title}", 110)) + "\nmean ± 1 sd over seeds", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def report(cache: Path, seeds: list[int], studies: list[str]) -> None:
    """Rewrite the generated sections of docs/results/imp.md and the PNGs."""
    from ticketlab.atomic import atomic_write_text

    text = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    for study in studies:
        title, panels = STUDIES[study]
        lines = [f"*{title}; generated by `benchmarks/imp_studies.py`.*", ""]
        drawn = []
        for panel in panels:
            curves = _curves(cache, study, panel, seeds)
            lines.append(f"**{panel.label}**" + (f" (training options {panel.train_options})" if panel.train_options else ""))
            lines.append("")
            if not curves:
                lines += ["No finished runs yet.", ""]
                continue
            missing = [f"{v} s{s}" for v in panel.variants for s in seeds
                       if v not in curves or s not in curves[v]["seeds"]]
            lines.append("Test accuracy at the end of each round's training (mean ± sd over seeds "
                         f"{', '.join(map(str, sorted({s for c in curves.values() for s in c['seeds']})))}):")
            lines.append("")
            lines += _table(curves, "test", paired=True)
            lines.append("")
            lines.append("Test accuracy at the early-stopping iteration (minimum validation loss):")
            lines.append("")
            lines += _table(curves, "early")
            hours = sum(c["seconds"] for c in curves.values()) / 3600
            lines += ["", f"Compute: {hours:.2f} CPU-hours of wall time over these runs (1 thread each)."
                      + (f" Missing runs: {', '.join(missing)}." if missing else ""), ""]
            drawn.append((panel, curves))
        if drawn:
            png = DOC.parent / f"imp_{study}.png"
            _plot(study, title, drawn, png)
            lines += [f"![{study}](imp_{study}.png)", ""]
        begin, end = f"<!-- imp-study:{study}:begin -->", f"<!-- imp-study:{study}:end -->"
        block = begin + "\n" + "\n".join(lines).rstrip() + "\n" + end
        if begin in text and end in text:
            text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
    atomic_write_text(DOC, text)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", action="append", choices=list(STUDIES), help="study to run (default: all)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel, one thread each (default 2)")
    ap.add_argument("--cache", type=Path, default=ROOT / "out" / "imp_studies", help="where finished runs are kept")
    ap.add_argument("--report-only", action="store_true", help="only rewrite tables and plots from the cache")
    args = ap.parse_args(argv)
    studies = args.study or list(STUDIES)
    seeds = [int(s) for s in args.seeds.split(",")]
    args.cache.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        jobs = [(st, p, v, s, str(args.cache)) for st in studies for p in STUDIES[st][1]
                for s in seeds for v in p.variants if not run_path(args.cache, st, p, v, s).exists()]
        print(f"{len(jobs)} runs to do", file=sys.stderr)
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pool.submit(_run, job): job for job in jobs}
            for fut in as_completed(futures):
                path, seconds = fut.result()
                print(f"done {os.path.relpath(path, ROOT)} in {seconds:.0f} s", file=sys.stderr, flush=True)
                report(args.cache, seeds, studies)
    report(args.cache, seeds, studies)


if __name__ == "__main__":
    main()
