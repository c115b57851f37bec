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
    .venv/bin/python benchmarks/imp_studies.py --prose-only               # findings from the doc's tables

Besides the tables, each study gets generated findings (``<!-- imp-findings:NAME:... -->``, right
after its block): sentences about the tables computed from the numbers as printed -- which
variants are at or above dense where, the order of the means, for how many seeds the paired
difference favours ``init`` -- so that such statements cannot drift from the tables.

Studies (see ``docs/results/imp.md``): ``cora`` (GCN on Cora: continue / init / reinit),
``simple_cnn`` (simple_cnn on digits: the same three), ``lenet`` (lenet_300_100 on digits and
mnist1d: init vs reinit, 15 rounds at 20 %), ``lr`` (the same with Adam at lr 0.1).
"""

from __future__ import annotations

import argparse
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
        omit_weights=True, omit_scores=True, checkpoint=out.with_name(out.name + ".ckpt"), resume=True,
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
    atomic_write_text(DOC, write_findings(text, studies))


# --------------------------------------------------------------------------------- findings
# Sentences about the tables, generated from the numbers as the tables print them (so a claim
# can only say what a table shows). They go between <!-- imp-findings:NAME:begin/end --> right
# after each study's block; `--prose-only` regenerates them from the tables already in the doc.
def _parse_cell(cell: str) -> tuple[float, ...] | None:
    """"0.788 ± 0.012" -> (0.788, 0.012); "+0.004 ± 0.009 (2/5)" -> (0.004, 0.009, 2, 5); "–" -> None."""
    cell = cell.strip()
    if cell in ("–", ""):
        return None
    head, _, count = cell.partition("(")
    nums = [float(v) for v in head.replace("±", " ").split()]
    if count:
        k, n = count.rstrip(")").split("/")
        nums += [int(k), int(n)]
    return tuple(nums)


def _parse_table(lines: list[str]) -> dict[str, Any]:
    """A generated table -> {"sparsity": [...], "columns": {name: [cell tuples]}}."""
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    cols = {name: [_parse_cell(r[i]) for r in rows] for i, name in enumerate(header) if i >= 2}
    return {"sparsity": [r[0] for r in rows], "columns": cols}


def parse_block(block: str) -> list[dict[str, Any]]:
    """A study's generated block -> per panel: label, end-of-training table, early-stopping table."""
    panels: list[dict[str, Any]] = []
    current: list[str] | None = None
    for line in block.splitlines() + [""]:
        if line.startswith("**"):  # a panel's label line
            panels.append({"label": line.split("**")[1], "tables": []})
        if line.startswith("|"):
            current = current if current is not None else []
            current.append(line)
        elif current is not None:
            panels[-1]["tables"].append(_parse_table(current))
            current = None
    return [{"label": p["label"], "end": p["tables"][0], "early": p["tables"][1]} for p in panels if len(p["tables"]) >= 2]


def _joined(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def panel_findings(p: dict[str, Any]) -> list[str]:
    """Generated sentences about one panel's tables (see the module docstring)."""
    end, early = p["end"], p["early"]
    sp = [s.replace(" ", "\u00a0") for s in end["sparsity"]]
    variants = [v for v in end["columns"] if not v.startswith("init − reinit")]
    paired = next((v for v in end["columns"] if v.startswith("init − reinit")), None)
    dense, dense_sd = end["columns"][variants[0]][0][:2]
    out = [f"*{p['label']}* — dense {dense:.3f} ± {dense_sd:.3f}."]
    for v in variants:
        cells = end["columns"][v]
        below = [f"{sp[j]} ({c[0]:.3f})" for j, c in enumerate(cells) if j and c and c[0] < dense]
        at = [sp[j] for j, c in enumerate(cells) if j and c and c[0] >= dense]
        out.append(f"`{v}` is at or above the dense mean " + (f"at {_joined(at)} sparsity" if at else "at no sparsity")
                   + (f" and below it at {_joined(below)}." if below else " and never below it."))
    if len(variants) > 2:
        orders: dict[str, list[str]] = {}
        for j in range(1, len(sp)):
            means = {v: end["columns"][v][j][0] for v in variants}
            order = sorted(variants, key=lambda v: -means[v])
            text = "".join(f"`{a}` {'>' if means[a] > means[b] else '='} " for a, b in zip(order, order[1:])) + f"`{order[-1]}`"
            orders.setdefault(text, []).append(sp[j])
        out.append("Order of the means: " + "; ".join(f"{o} at {_joined(s)}" for o, s in orders.items()) + ".")
    if paired:
        pc = end["columns"][paired]
        rows = [(j, c) for j, c in enumerate(pc) if c]
        n = rows[0][1][3]
        most = [sp[j] for j, c in rows if c[2] >= n - 1]
        least = [sp[j] for j, c in rows if c[2] <= 1]
        rest = [f"{sp[j]} ({c[2]}/{c[3]})" for j, c in rows if 1 < c[2] < n - 1]
        parts = [f"for at least {n - 1} of {n} seeds at {_joined(most)}" if most else "",
                 f"for at most 1 of {n} at {_joined(least)}" if least else "",
                 f"at {_joined(rest)} for the number of seeds in brackets" if rest else ""]
        j, c = max(rows, key=lambda r: abs(r[1][0]))
        out.append("Paired by seed, `init` is higher than `reinit` " + "; ".join(x for x in parts if x)
                   + f". The largest paired mean difference is {c[0]:+.3f} ± {c[1]:.3f} ({c[2]}/{c[3]}) at {sp[j]}.")
    diffs = [(abs(early["columns"][v][j][0] - end["columns"][v][j][0]), v, j)
             for v in variants for j in range(len(sp)) if early["columns"][v][j] and end["columns"][v][j]]
    d, v, j = max(diffs)
    out.append(f"Early-stopping and end-of-training means differ by at most {d:.3f} (`{v}` at {sp[j]}).")
    return out


def findings_block(study: str, block: str) -> str:
    begin, end = f"<!-- imp-findings:{study}:begin -->", f"<!-- imp-findings:{study}:end -->"
    lines = ["Generated from the tables above by `benchmarks/imp_studies.py` (sparsity = share of weights removed):", ""]
    for p in parse_block(block):
        lines += ["- " + " ".join(panel_findings(p))]
    return begin + "\n" + "\n".join(lines) + "\n" + end


def write_findings(text: str, studies: list[str]) -> str:
    """Insert or replace each study's findings block (after its generated block) in ``text``."""
    for study in studies:
        b_begin, b_end = f"<!-- imp-study:{study}:begin -->", f"<!-- imp-study:{study}:end -->"
        if b_begin not in text or b_end not in text:
            continue
        block = text[text.index(b_begin): text.index(b_end)]
        new = findings_block(study, block)
        f_begin, f_end = f"<!-- imp-findings:{study}:begin -->", f"<!-- imp-findings:{study}:end -->"
        if f_begin in text and f_end in text:
            text = text[: text.index(f_begin)] + new + text[text.index(f_end) + len(f_end):]
        else:
            at = text.index(b_end) + len(b_end)
            text = text[:at] + "\n\n" + new + text[at:]
    return text


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", action="append", choices=list(STUDIES), help="study to run (default: all)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel, one thread each (default 2)")
    ap.add_argument("--cache", type=Path, default=ROOT / "out" / "imp_studies", help="where finished runs are kept")
    ap.add_argument("--report-only", action="store_true", help="only rewrite tables and plots from the cache")
    ap.add_argument("--prose-only", action="store_true",
                    help="only regenerate the findings sentences from the tables already in the doc (no cache needed)")
    args = ap.parse_args(argv)
    studies = args.study or list(STUDIES)
    if args.prose_only:
        from ticketlab.atomic import atomic_write_text

        atomic_write_text(DOC, write_findings(DOC.read_text(encoding="utf-8"), studies))
        return
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
