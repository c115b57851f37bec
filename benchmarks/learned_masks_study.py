"""Learned masks at initialization (issue 9): Gem-Miner, edge-popup and Zhou's learned supermask
against IMP and random pruning, and Gem-Miner's sanity checks; regenerates
``docs/results/learned_masks.md`` and ``docs/results/learned_masks.png``.

Every run is one :func:`ticketlab.mining.mine` call (``gem_miner``, ``edge_popup``,
``supermask_learned``, ``random`` with ``train_ticket``, one ``imp`` run per seed whose explicit
schedule passes through every density of the study) or one sanity check of a finished gem
ticket (the gem's mask shuffled layer-wise / the weights re-initialised, each fine-tuned with the
gem's own fine-tuning config, plus a rebuild of the gem's fine-tuning itself that must reproduce
the ticket's accuracy). A finished run is kept in ``--cache`` under a name carrying a hash of its
resolved configuration, so a rerun skips it and a changed setting runs afresh. The page is
rewritten whole (atomically) from the cache.

Usage (from the repository root)::

    .venv/bin/python benchmarks/learned_masks_study.py                 # all runs, 1 job, seeds 0,1,2
    .venv/bin/python benchmarks/learned_masks_study.py --jobs 2
    .venv/bin/python benchmarks/learned_masks_study.py --report-only   # page and plot from the cache
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "results" / "learned_masks.md"
PNG = DOC.parent / "learned_masks.png"
DENSITIES = (0.2, 0.05, 0.01)
MINERS = ("gem_miner", "edge_popup", "supermask_learned")
LABEL = {"gem_miner": "Gem-Miner", "edge_popup": "edge-popup", "supermask_learned": "learned supermask"}
#: Seed offsets of the sanity checks' own draws (a stream each, never a run's model seed).
_SHUFFLE_STREAM, _REINIT_OFFSET = 0x5A1F, 1000
CHANCE = 0.1  # both data sets have 10 balanced classes


@dataclass(frozen=True)
class Panel:
    """One model on one data set: its densities, epochs of the learned-mask miners, IMP's
    rewinding point, and which runs it has (``runs``: labels of :data:`RUNS`)."""

    key: str
    model: str
    dataset: str
    epochs: int  # score-training epochs = Gem-Miner's fine-tuning epochs (train_epochs)
    rewind: int  # IMP --reset rewind:K (iterations of the dense run)
    densities: tuple[float, ...] = DENSITIES
    runs: tuple[str, ...] = MINERS
    imp: bool = True  # IMP and the Gem-Miner sanity checks (the expensive baselines)


#: Run label -> (method, miner options, other ``mine`` arguments). A label is a method with its
#: defaults, or a variant.
RUNS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    **{m: (m, {}, {}) for m in MINERS},
    "gem_miner@reference": ("gem_miner", {"protocol": "reference"}, {}),
    "edge_popup@reference": ("edge_popup", {"protocol": "reference"}, {}),
    # the reference protocol at the λ it used before (1e-4): where its strict > can empty the network
    "gem_miner@reference,lmbda=0.0001": ("gem_miner", {"protocol": "reference", "lmbda": 1e-4}, {}),
    # conv4 (batch-norm free): edge-popup's scale_fan weights for all three (see benchmarks/learned_conv.py)
    "gem_miner@scaled": ("gem_miner", {"weights": "scaled_signed_constant"}, {}),
    "edge_popup@scaled": ("edge_popup", {"weights": "scaled_signed_constant"}, {}),
    "supermask_learned@scaled": ("supermask_learned", {"weights": "scaled_signed_constant", "score_lr": 1000.0}, {}),
    # the default λ with 100 score-training epochs (this page's setting before issue 21)
    "gem_miner@E=100": ("gem_miner", {}, {"train_epochs": 100}),
}
#: Gem-Miner's regularizer weights of the λ section (lenet_300_100 / digits).
LAMBDAS = (1e-4, 1e-3)  # next to the default (3e-4)
RUNS.update({f"gem_miner@lmbda={lam:g}": ("gem_miner", {"lmbda": lam}, {}) for lam in LAMBDAS})

PANELS = (
    # digits: the miners' default 150 score-training epochs (the acceptance of issue 21 is stated at the defaults)
    Panel("lenet_digits", "lenet_300_100", "digits", epochs=150, rewind=50,
          runs=(*MINERS, "gem_miner@reference", "edge_popup@reference", "gem_miner@reference,lmbda=0.0001",
                *(f"gem_miner@lmbda={lam:g}" for lam in LAMBDAS), "gem_miner@E=100")),
    Panel("lenet_mnist1d", "lenet_300_100", "mnist1d", epochs=50, rewind=100),
    Panel("conv4_digits", "conv4", "digits", epochs=20, rewind=0, densities=(0.5, 0.2, 0.05),
          runs=("gem_miner@scaled", "edge_popup@scaled", "supermask_learned@scaled", "edge_popup"), imp=False),
)


def imp_schedule(densities: tuple[float, ...] = DENSITIES, rate: float = 0.2) -> list[float]:
    """IMP's per-round densities: about ``rate`` of the survivors removed per round, passing
    exactly through every density of ``densities`` (geometric steps between them)."""
    out, prev = [], 1.0
    for d in densities:
        steps = max(1, round(math.log(d / prev) / math.log(1 - rate)))
        out += [prev * (d / prev) ** (k / steps) for k in range(1, steps)] + [d]
        prev = d
    return out


# ---------------------------------------------------------------------------------- jobs
def mine_kwargs(panel: Panel, run: str, density: float | None, seed: int) -> dict[str, Any]:
    """The resolved arguments of one ``mine`` call of the study (``run``: a :data:`RUNS` label,
    ``random`` or ``imp``)."""
    kw: dict[str, Any] = {"model": panel.model, "dataset": panel.dataset, "seed": seed, "device": "cpu"}
    if run in RUNS:
        kw.update(density=density, train_epochs=panel.epochs)
        if RUNS[run][1]:
            kw["miner_config"] = dict(RUNS[run][1])
        kw.update(RUNS[run][2])
    elif run == "random":
        kw.update(density=density, train_ticket=True)  # the model's default_train_config
    elif run == "imp":
        kw.update(schedule=imp_schedule(panel.densities), miner_config={"reset": f"rewind:{panel.rewind}"})
    else:
        raise ValueError(run)
    return kw


def method_of(run: str) -> str:
    return RUNS[run][0] if run in RUNS else run


def _hash(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:10]


def run_path(cache: Path, panel: Panel, run: str, density: float | None, seed: int) -> Path:
    """The ticket of one run; a run that stopped with an error leaves ``<that>.failed.json``."""
    kw = mine_kwargs(panel, run, density, seed)
    tag = "all" if density is None else f"d{density:g}"
    name = run.replace("@", "-").replace("=", "").replace(",", "-")
    return cache / panel.key / f"{name}_{tag}_s{seed}_{_hash([method_of(run), kw])}.h5"


def failed_path(path: Path) -> Path:
    return path.with_name(path.name + ".failed.json")


def finished(path: Path) -> bool:
    return path.exists() or failed_path(path).exists()


def sanity_path(cache: Path, panel: Panel, density: float, seed: int) -> Path:
    gem = run_path(cache, panel, "gem_miner", density, seed)
    return gem.with_name(f"sanity_d{density:g}_s{seed}_{_hash([gem.name, _SHUFFLE_STREAM, _REINIT_OFFSET])}.json")


def _mine_job(job: tuple[str, str, float | None, int, str]) -> tuple[str, float]:
    """One ``mine`` run in a worker process (one thread); returns its file and wall seconds. A run
    that stops with ticketlab's one-line error (e.g. the reference protocol emptying the network)
    is recorded as failed, with that line, instead of a ticket."""
    import torch

    from ticketlab.atomic import atomic_write_text
    from ticketlab.errors import TicketlabError
    from ticketlab.fileformat import save
    from ticketlab.mining import mine

    panel_key, run, density, seed, cache = job
    torch.set_num_threads(1)
    panel = next(p for p in PANELS if p.key == panel_key)
    out = run_path(Path(cache), panel, run, density, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        ticket = mine(method_of(run), omit_weights=True, omit_scores=True, **mine_kwargs(panel, run, density, seed))
    except TicketlabError as e:
        atomic_write_text(failed_path(out), json.dumps({"error": str(e), "seconds": time.perf_counter() - started}))
        return str(failed_path(out)), time.perf_counter() - started
    save(ticket, out)  # atomic (ticketlab.fileformat)
    return str(out), time.perf_counter() - started


def shuffle_layerwise(masks: dict[str, Any], seed: int) -> dict[str, Any]:
    """Each layer's mask permuted uniformly at random (same count per layer), seeded."""
    import torch

    g = torch.Generator().manual_seed(seed)
    out = {}
    for n, m in masks.items():
        flat = m.flatten()
        out[n] = flat[torch.randperm(flat.numel(), generator=g)].view(m.shape)
    return out


def _sanity_job(job: tuple[str, float, int, str]) -> tuple[str, float]:
    """Gem-Miner's sanity checks of one gem ticket: fine-tune (a) the gem's own mask rebuilt from
    scratch (must equal the ticket's fine-tuned accuracy), (b) its layer-wise shuffle and (c) the
    gem mask over re-initialised weights; same treatment and fine-tuning config as the gem."""
    import torch

    from ticketlab.atomic import atomic_write_text
    from ticketlab.data import load_dataset
    from ticketlab.fileformat import load
    from ticketlab.models import create_model, prunable_parameters
    from ticketlab.training import TrainConfig, fit
    from ticketlab.weights import apply_recorded_treatment_

    panel_key, density, seed, cache = job
    torch.set_num_threads(1)
    panel = next(p for p in PANELS if p.key == panel_key)
    gem = load(run_path(Path(cache), panel, "gem_miner", density, seed), weights=False, scores=False)
    prov = gem.provenance
    config = TrainConfig.from_dict(prov["train_config"])  # the gem's own fine-tuning config
    data = load_dataset(panel.dataset, seed=seed)
    masks = {n: torch.from_numpy(m) for n, m in gem.masks.items()}

    def finetune(model_seed: int, ticket_masks: dict[str, torch.Tensor]) -> dict[str, float]:
        net = create_model(panel.model, data.spec, seed=model_seed)
        apply_recorded_treatment_(prunable_parameters(net), prov)
        res = fit(net, data, config, masks=ticket_masks, seed=seed, device="cpu")
        return {"test_accuracy": res.final_test_accuracy, "train_seconds": res.wall_time_s}

    shuffled = shuffle_layerwise(masks, seed + _SHUFFLE_STREAM)
    assert all(int(shuffled[n].sum()) == int(masks[n].sum()) for n in masks)
    out = {
        "gem_file": run_path(Path(cache), panel, "gem_miner", density, seed).name,
        "weights": prov["weights"], "train_config": config.to_dict(),
        "rebuilt": finetune(seed, masks),
        "shuffled": finetune(seed, shuffled),
        "reinit": {**finetune(seed + _REINIT_OFFSET, masks), "model_seed": seed + _REINIT_OFFSET},
        "ticket_test_accuracy": gem.history[-1]["test_accuracy"],
    }
    path = sanity_path(Path(cache), panel, density, seed)
    atomic_write_text(path, json.dumps(out, indent=1))
    return str(path), sum(v["train_seconds"] for v in out.values() if isinstance(v, dict) and "train_seconds" in v)


# ---------------------------------------------------------------------------------- collect
def _row(history: list[dict[str, Any]], stage: str) -> dict[str, Any]:
    return next(r for r in history if r.get("stage") == stage)


def primary(panel: Panel, method: str) -> str | None:
    """The run label that stands for ``method`` in ``panel``'s main tables: the first of its runs."""
    return next((r for r in panel.runs if method_of(r) == method), None)


def collect(cache: Path, panel: Panel, seeds: list[int]) -> dict[str, Any]:
    """Per (quantity, density): {seed: value} for every finished run of ``panel``; quantities are
    ``"<run label>:<what>"`` (``gem_miner:finetuned``, ``gem_miner@reference:failed``, ...)."""
    from ticketlab.fileformat import load

    res: dict[str, Any] = {}

    def put(key: str, d: float, seed: int, value: Any) -> None:
        res.setdefault(key, {}).setdefault(d, {})[seed] = value if isinstance(value, str) else float(value)

    own_stage = {"gem_miner": "gem", "edge_popup": "popup", "supermask_learned": "supermask"}

    def health(label: str, d: float, seed: int, t: Any) -> None:
        h = t.provenance.get("health") or {}
        unreachable = h.get("unreachable_classes")
        if h.get("classes") is not None and unreachable is not None:
            put(f"{label}:classes_connected", d, seed, h["classes"] - len(unreachable))
        put(f"{label}:unhealthy", d, seed, float(h.get("status") == "unhealthy"))

    for seed in seeds:
        for d in panel.densities:
            for label in panel.runs:
                m = method_of(label)
                path = run_path(cache, panel, label, d, seed)
                if failed_path(path).exists():
                    put(f"{label}:failed", d, seed, json.loads(failed_path(path).read_text(encoding="utf-8"))["error"])
                    continue
                if not path.exists():
                    continue
                t = load(path, weights=False, scores=False)
                own, rnd = _row(t.history, own_stage[m]), _row(t.history, "round")
                put(f"{label}:own_untrained", d, seed, own["untrained_test_accuracy"])
                put(f"{label}:own_density", d, seed, own["density"])
                put(f"{label}:ticket_untrained", d, seed, rnd["untrained_test_accuracy"])
                put(f"{label}:ticket_density", d, seed, t.provenance["achieved_density"])
                put(f"{label}:mine_seconds", d, seed, own["train_seconds"])
                put(f"{label}:seconds", d, seed, t.provenance["wall_seconds"])
                health(label, d, seed, t)
                if m == "gem_miner":
                    ticket = _row(t.history, "ticket")
                    put(f"{label}:finetuned", d, seed, ticket["test_accuracy"])
                    put(f"{label}:steps", d, seed, own["iterations"] + ticket["iterations"])
                    score_rows = [r for r in t.history if r.get("stage") == "score_training" and "at_upper" in r]
                    if score_rows:
                        put(f"{label}:at_upper_max", d, seed, max(r["at_upper"] for r in score_rows))
                        put(f"{label}:at_upper_last", d, seed, score_rows[-1]["at_upper"])
                    freezes = [r for r in t.history if r.get("stage") == "freeze"]
                    put(f"{label}:tie_drawn", d, seed, sum(r.get("tied_kept", 0) for r in freezes))
                    put(f"{label}:tie_events", d, seed, sum(1 for r in freezes if r.get("tied_kept", 0) > 0))
                    # events where the draw chose more than 1 % of what they kept (mine's warning)
                    put(f"{label}:tie_warned", d, seed,
                        sum(1 for r in freezes if r.get("tied_kept", 0) > 0.01 * max(r.get("kept", 0), 1)))
            path = run_path(cache, panel, "random", d, seed)
            if path.exists():
                t = load(path, weights=False, scores=False)
                put("random:trained", d, seed, _row(t.history, "ticket")["test_accuracy"])
                health("random", d, seed, t)
            path = sanity_path(cache, panel, d, seed)
            if path.exists():
                s = json.loads(path.read_text(encoding="utf-8"))
                for k in ("rebuilt", "shuffled", "reinit"):
                    put(f"sanity:{k}", d, seed, s[k]["test_accuracy"])
        path = run_path(cache, panel, "imp", None, seed)
        if panel.imp and path.exists():
            t = load(path, weights=False, scores=False)
            dense = _row(t.history, "dense")
            put("imp:dense", 1.0, seed, dense["test_accuracy"])
            elapsed, steps = float(dense["seconds"]), int(dense["iterations"])
            for r in t.history:
                if r.get("stage") != "round":
                    continue
                elapsed += float(r["seconds"])
                steps += int(r["iterations"]) - panel.rewind  # a rewound round restarts at iteration K
                for d in panel.densities:
                    if abs(r["target_density"] - d) < 1e-12:
                        put("imp:trained", d, seed, r["test_accuracy"])
                        put("imp:seconds", d, seed, elapsed)
                        put("imp:rounds", d, seed, r["round"])
                        put("imp:steps", d, seed, steps)
    for d in panel.densities:
        gs, ims = res.get("gem_miner:steps", {}).get(d, {}), res.get("imp:steps", {}).get(d, {})
        for seed in sorted(set(gs) & set(ims)):
            put("imp:steps_ratio", d, seed, ims[seed] / gs[seed])
    return res


def _vals(res: dict[str, Any], key: str, d: float) -> dict[int, float]:
    return res.get(key, {}).get(d, {})


def _ms(v: dict[int, float]) -> tuple[float, float, int]:
    a = np.array(list(v.values()), dtype=float)
    if len(a) == 0:
        return math.nan, math.nan, 0
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0, len(a)


def _cell(v: dict[int, float], fmt: str = ".3f") -> str:
    m, s, n = _ms(v)
    if n == 0:
        return "–"
    return f"{m:{fmt}}" if n == 1 else f"{m:{fmt}} ± {s:{fmt}}"


def _paired(a: dict[int, float], b: dict[int, float]) -> tuple[float, float, int, int]:
    """mean and sd of a - b over common seeds, seeds where a > b, number of common seeds."""
    common = sorted(set(a) & set(b))
    diff = np.array([a[s] - b[s] for s in common], dtype=float)
    if len(diff) == 0:
        return math.nan, math.nan, 0, 0
    return float(diff.mean()), float(diff.std(ddof=1)) if len(diff) > 1 else 0.0, int((diff > 0).sum()), len(diff)


def _pcell(a: dict[int, float], b: dict[int, float]) -> str:
    m, s, k, n = _paired(a, b)
    return "–" if n == 0 else f"{m:+.3f} ± {s:.3f} ({k}/{n})"


# ---------------------------------------------------------------------------------- prose
def _verdict(a: dict[int, float], b: dict[int, float], margin: float = 0.01) -> str:
    """'higher' / 'lower' when every common seed agrees and the mean differs by > margin, else 'tied'."""
    m, _, k, n = _paired(a, b)
    if n == 0:
        return "n/a"
    if k == n and m > margin:
        return "higher"
    if k == 0 and m < -margin:
        return "lower"
    return "tied"


def findings(panel: Panel, res: dict[str, Any]) -> list[str]:
    """Sentences comparing the numbers with the papers' claims, each with its numbers."""
    out = []
    for d in DENSITIES:
        gem, imp = _vals(res, "gem_miner:finetuned", d), _vals(res, "imp:trained", d)
        if not gem or not imp:
            continue
        v = _verdict(gem, imp)
        agree = {"higher": "agrees with", "tied": "is consistent with", "lower": "disagrees with"}.get(v, "–")
        out.append(
            f"- Fine-tuned Gem-Miner vs IMP (rewind:{panel.rewind}) at density {d:g}: "
            f"{_cell(gem)} vs {_cell(imp)}, paired gem − IMP {_pcell(gem, imp)}: gem is {v}; this {agree} "
            "the Rare Gems claim that Gem-Miner is competitive with or better than IMP.")
    for d in DENSITIES:
        g, sh, ri = (_vals(res, k, d) for k in ("gem_miner:finetuned", "sanity:shuffled", "sanity:reinit"))
        if not g or not sh or not ri:
            continue
        vs, vr = _verdict(g, sh), _verdict(g, ri)
        passed = [name for name, v in (("shuffling", vs), ("re-initialising", vr)) if v == "higher"]
        rnd = _vals(res, "random:trained", d)
        if rnd and _ms(rnd)[0] >= _ms(g)[0] - 0.01:
            verdict_note = (f" (at this density a random global mask trains to {_cell(rnd)} with IMP's recipe, so "
                            "the checks have little room to show an effect)")
        else:
            verdict_note = ""
        verdict = ("both hurt, as the paper says" if len(passed) == 2 else
                   f"only {passed[0]} hurts clearly; the paper says both hurt" if passed else
                   "neither hurts clearly (each within a seed's noise or better); the paper says both hurt")
        out.append(f"- Sanity checks at density {d:g}: gem {_cell(g)}, shuffled {_cell(sh)} (gem − shuffled "
                   f"{_pcell(g, sh)}), re-initialised {_cell(ri)} (gem − reinit {_pcell(g, ri)}): {verdict}{verdict_note}.")
    for d in DENSITIES:
        pop, sup = _vals(res, "edge_popup:ticket_untrained", d), _vals(res, "supermask_learned:ticket_untrained", d)
        if not pop or not sup:
            continue
        v = _verdict(pop, sup)
        agree = {"higher": "agrees with", "tied": "does not show", "lower": "disagrees with"}.get(v, "–")
        out.append(f"- Untrained edge-popup vs learned supermask, both at exactly density {d:g}: {_cell(pop)} vs "
                   f"{_cell(sup)} (paired {_pcell(pop, sup)}): edge-popup is {v}; this {agree} Ramanujan et "
                   "al.'s report that edge-popup beats Zhou et al.'s supermask.")
    dense = _vals(res, "imp:dense", 1.0)
    for d in DENSITIES:
        pop = _vals(res, "edge_popup:ticket_untrained", d)
        if pop and dense:
            gap = _ms(dense)[0] - _ms(pop)[0]
            word = "matches (within 0.02)" if gap <= 0.02 else f"falls {gap:.3f} short of"
            out.append(f"- Untrained edge-popup at density {d:g}, {_cell(pop)}, {word} the trained dense network "
                       f"({_cell(dense)}); Ramanujan et al. find untrained subnetworks of random weights that "
                       "match trained dense networks only when the network is wide enough and at mid densities "
                       "(best around 30–70 % of the weights kept).")
    for d in DENSITIES:
        g = _vals(res, "gem_miner:own_untrained", d)
        if not g:
            continue
        m, _, _ = _ms(g)
        word = "well above" if m > CHANCE + 0.1 else "near"
        out.append(f"- Untrained gem (own rule s > 0.5, density {_cell(_vals(res, 'gem_miner:own_density', d), '.4f')}) "
                   f"at target {d:g}: {_cell(g)}, {word} chance ({CHANCE:.2f}); Rare Gems reports gems with "
                   "non-trivial accuracy before any weight training.")
    ratios = []
    for d in DENSITIES:
        gs, ims = _vals(res, "gem_miner:seconds", d), _vals(res, "imp:seconds", d)
        common = sorted(set(gs) & set(ims))
        if common:
            ratios.append((d, float(np.mean([ims[s] / gs[s] for s in common]))))
    if ratios:
        best = max(r for _, r in ratios)
        text = ", ".join(f"{r:.1f}× at {d:g}" for d, r in ratios)
        steps = ", ".join(f"{_ms(_vals(res, 'imp:steps_ratio', d))[0]:.1f}× at {d:g}" for d, _ in ratios)
        word = "below" if best < 19 else "at or above"
        out.append(f"- Speed: IMP's wall time to the density over Gem-Miner's (mining + fine-tuning): {text} "
                   f"(optimizer steps: {steps}); the largest, {best:.1f}×, is {word} the paper's 'up to 19×' "
                   "(ResNet-20 on CIFAR-10 at 1.44 %, with as many epochs per IMP round as Gem-Miner's whole "
                   "run; here an IMP round is 20 Adam epochs at batch 60, see the set-up).")
    sup = {d: _vals(res, "supermask_learned:own_density", d) for d in DENSITIES}
    if all(sup.values()):
        dens = ", ".join(f"{_cell(sup[d], '.3f')} at target {d:g}" for d in DENSITIES)
        out.append(f"- The learned supermask's own mask (σ(s) > 1/2) keeps {dens} of the weights: its training "
                   "has no density target, so its own rule ignores the requested density; only the "
                   "exact-density ticket depends on it.")
    return out


# ---------------------------------------------------------------------------------- report
def _plot(results: list[tuple[Panel, dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ticketlab.atomic import atomic_path

    fig, axes = plt.subplots(2, len(results), figsize=(5.6 * len(results), 7.6), squeeze=False)
    curves = [
        (0, "gem_miner:own_untrained", "gem (own rule s>0.5)", "C0", "-"),
        (0, "gem_miner:ticket_untrained", "Gem-Miner ticket", "C0", ":"),
        (0, "edge_popup:ticket_untrained", "edge-popup", "C1", "-"),
        (0, "supermask_learned:own_untrained", "supermask (own rule σ>1/2)", "C2", "-"),
        (0, "supermask_learned:ticket_untrained", "supermask ticket", "C2", ":"),
        (1, "gem_miner:finetuned", "Gem-Miner, fine-tuned", "C0", "-"),
        (1, "imp:trained", "IMP (rewind)", "C3", "-"),
        (1, "random:trained", "random, trained", "C7", "-"),
        (1, "sanity:shuffled", "gem shuffled per layer", "C4", "--"),
        (1, "sanity:reinit", "gem mask, weights re-initialised", "C5", ":"),
    ]
    for col, (panel, res) in enumerate(results):
        x = np.array(panel.densities) * 100
        for row, key, label, color, style in curves:
            method, _, what = key.partition(":")
            if method in MINERS:  # the panel's own run of that method (conv4: the scaled weights)
                run = primary(panel, method)
                if run is None:
                    continue
                key = f"{run}:{what}"
                label = label + (" (scaled weights)" if "@scaled" in run else "")
            stats = [_ms(_vals(res, key, d)) for d in panel.densities]
            if not any(n for _, _, n in stats):
                continue
            mean, sd = np.array([s[0] for s in stats]), np.array([s[1] for s in stats])
            ax = axes[row, col]
            ax.plot(x, mean, marker="o", ms=3, color=color, ls=style, label=label)
            ax.fill_between(x, mean - sd, mean + sd, color=color, alpha=0.12)
        for row, what in enumerate(("untrained test accuracy", "test accuracy after training")):
            ax = axes[row, col]
            ax.set_xscale("log")
            ax.set_xticks(list(x), [f"{t:g}" for t in x])
            ax.minorticks_off()
            ax.invert_xaxis()
            ax.axhline(CHANCE, color="k", lw=0.6, ls="--")
            ax.set_xlabel("weights remaining (%)")
            ax.set_ylabel(what)
            ax.set_title(f"{panel.model} / {panel.dataset}", fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle("Learned masks at initialization (mean ± 1 sd over seeds; dashed line: chance; conv4: no IMP, "
                 "no sanity checks)", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


COMMAND = ".venv/bin/python benchmarks/learned_masks_study.py --jobs 2 --seeds 0,1,2"


def _signal_path(cache: Path, panel: Panel) -> Path:
    return cache / panel.key / f"signal_{_hash([panel.model, panel.dataset, SIGNAL_DENSITIES, SIGNAL_SEEDS])}.json"


#: Densities and seeds of the logit-signal measurement (conv panel; no training, forward passes only).
SIGNAL_DENSITIES = (1.0, 0.5, 0.2, 0.05, 0.01)
SIGNAL_SEEDS = (0, 1, 2)


def _signal_job(job: tuple[str, str]) -> tuple[str, float]:
    """How much of the untrained network's output depends on the input, under a random mask.

    For each density d, treatment (``signed_constant``, ``scaled_signed_constant``) and bias
    setting (the model's own initial biases, or zero): the network with its weights treated and a
    uniformly random mask of d per layer (seeded), evaluated on the test split; the measure is the
    standard deviation over test images of each logit, averaged over the classes (the part of the
    logits that varies with the input; a constant bias adds nothing to it). Mean over seeds."""
    import torch

    from ticketlab.atomic import atomic_write_text
    from ticketlab.data import load_dataset
    from ticketlab.models import create_model, prunable_parameters
    from ticketlab.weights import apply_treatment_

    panel_key, cache = job
    torch.set_num_threads(1)
    started = time.perf_counter()
    panel = next(p for p in PANELS if p.key == panel_key)
    out: dict[str, Any] = {"densities": list(SIGNAL_DENSITIES), "seeds": list(SIGNAL_SEEDS), "rows": []}
    for treatment in ("signed_constant", "scaled_signed_constant"):
        for bias in ("init", "zero"):
            for d in SIGNAL_DENSITIES:
                values = []
                for seed in SIGNAL_SEEDS:
                    data = load_dataset(panel.dataset, seed=seed)
                    net = create_model(panel.model, data.spec, seed=seed)
                    params = prunable_parameters(net)
                    apply_treatment_(params, treatment, d)
                    g = torch.Generator().manual_seed(seed + _SHUFFLE_STREAM)
                    with torch.no_grad():
                        for p in params.values():
                            keep = torch.zeros(p.numel(), dtype=torch.bool)
                            keep[torch.randperm(p.numel(), generator=g)[: max(1, round(d * p.numel()))]] = True
                            p.mul_(keep.view(p.shape).to(p.dtype))
                        if bias == "zero":
                            for name, q in net.named_parameters():
                                if name.endswith("bias"):
                                    q.zero_()
                        net.eval()
                        logits = net(data.test[0])
                    values.append(float(logits.std(dim=0).mean()))
                out["rows"].append({"weights": treatment, "bias": bias, "density": d, "signal": float(np.mean(values))})
    path = _signal_path(Path(cache), panel)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(out, indent=1))
    return str(path), time.perf_counter() - started


def report(cache: Path, seeds: list[int], total_seconds: float | None = None, n_runs: int = 0) -> None:
    """Rewrite docs/results/learned_masks.md and its plot from the cache."""
    from ticketlab.atomic import atomic_write_text
    from ticketlab.miners import get_miner
    from ticketlab.training import default_train_config

    lam = get_miner("gem_miner").Config().lmbda
    results = [(p, collect(cache, p, seeds)) for p in PANELS]
    main = [(p, r) for p, r in results if p.imp]
    lines = [
        "# Learned masks at initialization: Gem-Miner, edge-popup, learned supermask",
        "",
        "Regenerate this page and `learned_masks.png` with (from the repository root; finished runs are",
        "cached in `out/learned_masks/`, `--report-only` rewrites the page from the cache):",
        "", "```", COMMAND, "```", "",
        f"Seeds {', '.join(map(str, seeds))}; cells are mean ± sd over seeds (sample sd); paired "
        "differences are mean ± sd over seeds, with (seeds where the first is higher / seeds). Test "
        "accuracy on the data set's test split; chance is 0.10. All runs on CPU, one thread each. "
        "*classes* = output classes with an input-to-output path in the ticket (`ticketlab.health`; "
        "minimum over seeds); a ticket marked † is unhealthy (a collapsed layer, an unreachable class, or "
        "an accuracy within the 99 % binomial band of chance).",
        "",
        "Contents: " + ", ".join(f"[{p.model} / {p.dataset}](#{_anchor(p)})" for p in PANELS)
        + ", [protocols: exact and reference](#protocols-exact-and-reference), "
        "[Gem-Miner's λ and score saturation](#gem-miners-λ-and-score-saturation), "
        "[why conv4 needed scaled weights](#why-conv4-needed-scaled-weights).",
        "",
        "## Set-up",
        "",
        "- **Models / data.** `lenet_300_100` on `digits` (1,079 / 359 / 359 train / val / test "
        "8×8 images) and on `mnist1d` (3,600 / 400 / 1,000 40-d signals); `conv4` (batch-norm free) on "
        "`digits`, see [its section](#" + _anchor(PANELS[-1]) + ").",
        "- **Learned-mask miners** (`mine(method, density=d, train_epochs=E)`): their defaults "
        "(protocol `exact`; signed Kaiming constant weights for Gem-Miner and edge-popup, the model's own "
        f"init for the supermask; SGD momentum 0.9, cosine, batch 128; Gem-Miner λ = {lam:g} and freezing "
        "every 5 epochs; supermask lr 100), with E score-training epochs: "
        + ", ".join(f"E = {p.epochs} on {p.model}/{p.dataset}" for p in PANELS)
        + " (the paper's 150 would not fit the budget). Global scope except edge-popup (layer-wise). Ties "
        "at a selection threshold (Gem-Miner's freezing events included) are drawn from the run's seeded "
        "selection stream (`docs/selection.md`).",
        "- **Gem-Miner fine-tuning** (its default `finetune`): the exact-density ticket's weights from "
        "the treated init, for E epochs, with the model's own training config (these models have no batch "
        "norm: " + "; ".join(sorted({f"{p.model}/{p.dataset}: {_train_text(default_train_config(p.model, p.dataset))}"
                                    for p in PANELS})) + "). edge-popup and the supermask are not fine-tuned "
        "(their accuracy here is untrained).",
        "- **IMP** (lenet panels): one run per seed, `mine(\"imp\", schedule=..., miner_config={\"reset\": \"rewind:K\"})` "
        f"with {len(imp_schedule())} rounds of ~20 % removal whose explicit schedule passes exactly "
        "through 0.2, 0.05 and 0.01; the round at each density gives its accuracy, and IMP's wall time "
        "to a density is the dense run plus every round up to it. Training per round is the model's "
        "`default_train_config` (" + ", ".join(f"K = {p.rewind} on {p.dataset}" for p, _ in main) + ").",
        "- **Random pruning**: `mine(\"random\", density=d, train_ticket=True)` (global uniform mask, "
        "trained from the init with the model's `default_train_config`).",
        "- **Sanity checks** (Rare Gems Sec. 5; lenet panels): each gem ticket's mask (a) shuffled uniformly "
        "within each layer (per-layer counts kept) and (b) kept, over weights re-initialised "
        f"(`create_model(seed + {_REINIT_OFFSET})`, then the same signed-constant treatment, which keeps "
        "the magnitudes and redraws the signs); each fine-tuned with the gem's own fine-tuning config "
        "and batch order. A rebuild of the gem's own fine-tuning by the same code must reproduce the "
        "ticket's accuracy (column *rebuilt = ticket*).",
        "",
    ]
    for panel, res in main:
        lines += _panel_lines(panel, res)
    lines += ["![learned masks](learned_masks.png)", ""]
    lines += _protocol_lines(*results[0])
    lines += _lambda_lines(*results[0], lam)
    for panel, res in results:
        if not panel.imp:
            lines += _conv_lines(cache, panel, res)
    last = cache / "last_run.json"
    if total_seconds is not None:
        atomic_write_text(last, json.dumps({"wall_seconds": total_seconds, "runs": n_runs}))
    if last.exists():
        info = json.loads(last.read_text(encoding="utf-8"))
        lines += [f"Wall time of the last invocation that ran jobs: {info['wall_seconds'] / 60:.1f} min for "
                  f"{info['runs']} runs (other work shared the 2-core machine).", ""]
    atomic_write_text(DOC, "\n".join(lines).rstrip() + "\n")
    _plot(results, PNG)


def _anchor(panel: Panel) -> str:
    return f"{panel.model}--{panel.dataset}".replace("_", "_").lower()


def _classes(res: dict[str, Any], label: str, d: float) -> str:
    v = _vals(res, f"{label}:classes_connected", d)
    return ("–" if not v else f"{int(min(v.values()))}") + _mark(res, label, d)


def _mark(res: dict[str, Any], label: str, d: float) -> str:
    """`` †k`` when k seeds' tickets of ``label`` at ``d`` are unhealthy (``ticketlab.health``)."""
    bad = sum(1 for x in _vals(res, f"{label}:unhealthy", d).values() if x)
    return f" †{bad}" if bad else ""


def _failed(res: dict[str, Any], label: str, d: float) -> dict[int, str]:
    return _vals(res, f"{label}:failed", d)


def _protocol_lines(panel: Panel, res: dict[str, Any]) -> list[str]:
    """Gem-Miner and edge-popup under protocol exact (ticketlab's) and reference (the reference codes')."""
    v = lambda key, d: _vals(res, key, d)  # noqa: E731
    out = ["## Protocols: exact and reference", "",
           f"{panel.model} / {panel.dataset}, E = {panel.epochs}. `protocol=\"reference\"` reproduces the reference "
           "codes' conventions (per-epoch cosine, freezing after 0-based epochs T, 2T, ..., `ceil(p·active)` "
           "frozen at a constant rate, a strict `>` that freezes every tied score, frozen scores drifting "
           "under L2 and momentum, the gem as the ticket, the reference's fine-tuning milestones; edge-popup's "
           "`N − int((1 − k)N)` per layer); `docs/learned_masks.md` lists them with the reference file of "
           "each. Under `reference` the Gem-Miner ticket is the gem at whatever density it has; a run whose "
           "strict `>` empties the network stops with one line, as the reference gives no ticket there "
           "(*stopped*).", "",
           "| density | gem exact: density | untrained | fine-tuned | classes | gem reference: density | untrained "
           "| fine-tuned | classes | reference at λ = 1e-4: fine-tuned | edge-popup exact | edge-popup reference |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    ref, old, pref = "gem_miner@reference", "gem_miner@reference,lmbda=0.0001", "edge_popup@reference"

    def stopped(label: str, d: float) -> str:
        fails = _failed(res, label, d)
        return f" (stopped {len(fails)}/{len(fails) + len(v(f'{label}:finetuned', d))})" if fails else ""

    for d in panel.densities:
        out.append(f"| {d:g} | {_cell(v('gem_miner:ticket_density', d), '.4f')} | {_cell(v('gem_miner:ticket_untrained', d))} "
                   f"| {_cell(v('gem_miner:finetuned', d))} | {_classes(res, 'gem_miner', d)} "
                   f"| {_cell(v(f'{ref}:ticket_density', d), '.4f')}{stopped(ref, d)} | {_cell(v(f'{ref}:ticket_untrained', d))} "
                   f"| {_cell(v(f'{ref}:finetuned', d))} | {_classes(res, ref, d)} "
                   f"| {_cell(v(f'{old}:finetuned', d))}{stopped(old, d)} "
                   f"| {_cell(v('edge_popup:ticket_untrained', d))} | {_cell(v(f'{pref}:ticket_untrained', d))} |")
        for label, what in ((ref, "reference"), (old, "reference, λ = 1e-4")):
            for seed, err in sorted(_failed(res, label, d).items()):
                notes.append(f"- {what}, density {d:g}, seed {seed}: {err}")
    if notes:
        out += ["", "Runs that stopped (the reference's strict `>` froze every score of the network):", "", *notes]
    out += ["", "Paired differences, exact − reference (seeds where both finished): "
            + "; ".join(f"density {d:g}: gem fine-tuned {_pcell(v('gem_miner:finetuned', d), v('gem_miner@reference:finetuned', d))}, "
                        f"edge-popup untrained {_pcell(v('edge_popup:ticket_untrained', d), v('edge_popup@reference:ticket_untrained', d))}"
                        for d in panel.densities) + ".", ""]
    return out


def _lambda_rows(default: float, epochs: int) -> list[tuple[str, float, int]]:
    """(run label, λ, score epochs) of the λ section, by λ then epochs."""
    rows = [("gem_miner", default, epochs), ("gem_miner@E=100", default, 100)]
    rows += [(f"gem_miner@lmbda={lam:g}", lam, epochs) for lam in LAMBDAS if lam != default]
    return sorted(rows, key=lambda r: (r[1], -r[2]))


def _lambda_lines(panel: Panel, res: dict[str, Any], default: float) -> list[str]:
    """Gem-Miner's λ: saturation at the clamp value 1, tie draws at the freezing events, connectivity."""
    v = lambda key, d: _vals(res, key, d)  # noqa: E731
    rows = _lambda_rows(default, panel.epochs)
    out = ["## Gem-Miner's λ and score saturation", "",
           f"{panel.model} / {panel.dataset}, the defaults (E = {panel.epochs}) but λ, and the default λ with "
           "E = 100. *at 1 (max)*: the largest share, over the score-training epochs, of the active scores "
           "sitting exactly at the clamp value 1.0 (the history's `at_upper`); *drawn*: weights whose freezing "
           "was decided by the seeded tie draw (summed over the events, mean over seeds), and in brackets the "
           "events where the draw chose more than 1 % of what the event kept (where `mine` warns); *gem "
           "density*: the gem's own density (`s > 0.5` of the active scores) against the ticket's target.", "",
           "| λ | E | density | at 1 (max) | drawn (events > 1 %) | gem density | classes | untrained ticket | fine-tuned |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for lab, lam, epochs in rows:
        for d in panel.densities:
            if not v(f"{lab}:finetuned", d):
                continue
            out.append(f"| {lam:g}{' (default)' if lam == default else ''} | {epochs} | {d:g} "
                       f"| {_cell(v(f'{lab}:at_upper_max', d))} "
                       f"| {_cell(v(f'{lab}:tie_drawn', d), '.0f')} ({_cell(v(f'{lab}:tie_warned', d), '.1f')}) "
                       f"| {_cell(v(f'{lab}:own_density', d), '.4f')} | {_classes(res, lab, d)} "
                       f"| {_cell(v(f'{lab}:ticket_untrained', d))} | {_cell(v(f'{lab}:finetuned', d))} |")
    out += ["", _lambda_reading(panel, res, rows, default), ""]
    return out


def _lambda_reading(panel: Panel, res: dict[str, Any], rows: list[tuple[str, float, int]], default: float) -> str:
    """One paragraph, generated from the table: which setting keeps every ticket connected, its
    freezing decided by the scores (no event where the draw chose over 1 %), and the gem at its target."""
    ok, bad = [], []
    ds = panel.densities
    for lab, lam, epochs in rows:
        name = f"λ = {lam:g} (E = {epochs})"
        conn = [min(_vals(res, f"{lab}:classes_connected", d).values(), default=0) for d in ds]
        warned = [sum(_vals(res, f"{lab}:tie_warned", d).values()) for d in ds]
        gem_ratio = [_ms(_vals(res, f"{lab}:own_density", d))[0] / d for d in ds]
        problems = []
        if any(c < 10 for c in conn):
            lost = [f"{d:g} ({sum(1 for x in _vals(res, f'{lab}:classes_connected', d).values() if x < 10)} of "
                    f"{len(_vals(res, f'{lab}:classes_connected', d))} seeds)" for d, c in zip(ds, conn) if c < 10]
            problems.append("loses a class at density " + ", ".join(lost))
        if any(w > 0 for w in warned):
            problems.append("lets tie draws decide freezing at density "
                            + ", ".join(f"{d:g}" for d, w in zip(ds, warned) if w > 0))
        if any(r < 0.9 for r in gem_ratio if not math.isnan(r)):
            problems.append("leaves the gem well below the target density at "
                            + ", ".join(f"{d:g}" for d, r in zip(ds, gem_ratio) if r < 0.9))
        (bad if problems else ok).append(name + (f" {' and '.join(problems)}" if problems else ""))
    text = "Reading: " + ("; ".join(bad) + ". " if bad else "")
    text += (f"{', '.join(ok)} keeps every ticket connected at every density, with no freezing event decided by "
             "a tie draw and the gem at its target." if ok else "No setting tested does all three.")
    return text + f" The default is λ = {default:g}."


def _conv_lines(cache: Path, panel: Panel, res: dict[str, Any]) -> list[str]:
    """A panel without IMP (conv4): the learned masks untrained, Gem-Miner fine-tuned, random trained."""
    v = lambda key, d: _vals(res, key, d)  # noqa: E731
    out = [f"## {panel.model} / {panel.dataset}", "",
           f"Densities {', '.join(f'{d:g}' for d in panel.densities)}; E = {panel.epochs} score-training epochs; "
           "weights `scaled_signed_constant` (edge-popup's `scale_fan`: the signed Kaiming constant divided "
           "by sqrt(d)) for all three miners, supermask score lr 1000; edge-popup with the plain "
           "`signed_constant` weights as the control. No IMP here: its ~13 rounds to 0.05 at 20 epochs each "
           "would take about 15 min per seed on this machine.", "",
           "| density | Gem-Miner (own) | Gem-Miner ticket | classes | Gem-Miner fine-tuned | edge-popup scaled "
           "| classes | edge-popup signed_constant | supermask scaled (own) | supermask ticket | random, trained |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    g, e, sm = "gem_miner@scaled", "edge_popup@scaled", "supermask_learned@scaled"
    for d in panel.densities:
        out.append(f"| {d:g} | {_cell(v(f'{g}:own_untrained', d))} | {_cell(v(f'{g}:ticket_untrained', d))} "
                   f"| {_classes(res, g, d)} | {_cell(v(f'{g}:finetuned', d))} | {_cell(v(f'{e}:ticket_untrained', d))} "
                   f"| {_classes(res, e, d)} | {_cell(v('edge_popup:ticket_untrained', d))} "
                   f"| {_cell(v(f'{sm}:own_untrained', d))} | {_cell(v(f'{sm}:ticket_untrained', d))} "
                   f"| {_cell(v('random:trained', d))}{_mark(res, 'random', d)} |")
    above = []
    for lab, name in ((g, "Gem-Miner"), (e, "edge-popup"), (sm, "the supermask"), ("edge_popup", "edge-popup (signed_constant)")):
        for d in panel.densities:
            vals = v(f"{lab}:ticket_untrained", d)
            if vals:
                lo = min(vals.values())
                above.append(f"{name} at {d:g}: {'above' if lo > CHANCE + 0.1 else 'not clearly above'} chance "
                             f"(lowest seed {lo:.3f})")
    out += ["", "Untrained tickets against chance (0.10; *above* when every seed is more than 0.1 above it): " + "; ".join(above) + ".", ""]
    out += ["### Why conv4 needed scaled weights", ""]
    sig = _signal_path(cache, panel)
    if sig.exists():
        rows = json.loads(sig.read_text(encoding="utf-8"))["rows"]
        dens = sorted({r["density"] for r in rows}, reverse=True)
        out += ["How much of the untrained network's output depends on the input under a uniformly random mask "
                "of density d per layer: the standard deviation over the test images of each logit, averaged over "
                "the classes (mean over seeds 0-2; forward passes only, no training). A constant bias adds "
                "nothing to it.", "",
                "| weights | biases | " + " | ".join(f"d = {d:g}" for d in dens) + " |",
                "|---|---|" + "---:|" * len(dens)]
        for w in ("signed_constant", "scaled_signed_constant"):
            for b in ("init", "zero"):
                cells = {r["density"]: r["signal"] for r in rows if r["weights"] == w and r["bias"] == b}
                out.append(f"| {w} | {'initial' if b == 'init' else 'zero'} | "
                           + " | ".join(f"{cells[d]:.2g}" for d in dens) + " |")
        sc = {r["density"]: r["signal"] for r in rows if r["weights"] == "signed_constant" and r["bias"] == "init"}
        lo, hi = min(dens), max(dens)
        slope = math.log(sc[hi] / sc[lo]) / math.log(hi / lo) if sc[lo] > 0 else math.nan
        out += ["", f"With `signed_constant` weights the input-dependent part of the logits shrinks like d^{slope:.1f} "
                f"(fitted between d = {lo:g} and {hi:g}), whether the biases are the initial ones or zero: the "
                "signal vanishes with the mask, not under the biases (this page said so before; that was not what "
                "we measured). Dividing the weights by sqrt(d) (`scaled_signed_constant`) keeps each unit's "
                "variance for the d·fan_in inputs it keeps, and with it the signal that the scores learn from. "
                "Gem-Miner and the learned supermask still struggle on conv4 at density 0.2 and below: their "
                "forward pass starts near density 0.5 (the gem `s > 0.5` of U[0,1] scores, the supermask's "
                "Bernoulli draws), where weights scaled for d are too large (Gem-Miner's first-epoch loss is "
                "about 80 at d = 0.2, `benchmarks/learned_conv.py`).", ""]
    out += ["Fine-tuning: the paper's SGD lr 0.01 recipe does not train batch-norm-free conv4 (0.100 from a "
            "gem ticket at density 0.1, against 0.908 with the model's own Adam config and 0.964 on lenet: "
            "`.venv/bin/python benchmarks/learned_conv.py --part finetune`), so Gem-Miner now fine-tunes "
            "batch-norm-free models with their own training config.", ""]
    return out


def _train_text(cfg: Any) -> str:
    return f"{cfg.optimizer} lr {cfg.lr:g}, batch {cfg.batch_size}, {cfg.epochs} epochs"


def _panel_lines(panel: Panel, res: dict[str, Any]) -> list[str]:
    v = lambda key, d: _vals(res, key, d)  # noqa: E731
    dense = _cell(v("imp:dense", 1.0))
    out = [f"## {panel.model} / {panel.dataset}", "",
           f"Dense network (IMP's round 0): test accuracy {dense}.", "",
           "**Untrained accuracy** (frozen weights, no weight training). *own*: the method's own rule "
           "(Gem-Miner `s > 0.5` of the active scores, supermask `σ(s) > 1/2`; edge-popup's own rule is the "
           "exact-density top-k), with its density; *ticket*: the exact-density mask saved.", "",
           "| density | gem (own) | gem density | Gem-Miner ticket | edge-popup | supermask (own) | supermask density | supermask ticket |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for d in DENSITIES:
        out.append(f"| {d:g} | {_cell(v('gem_miner:own_untrained', d))} | {_cell(v('gem_miner:own_density', d), '.4f')} "
                   f"| {_cell(v('gem_miner:ticket_untrained', d))} | {_cell(v('edge_popup:ticket_untrained', d))} "
                   f"| {_cell(v('supermask_learned:own_untrained', d))} | {_cell(v('supermask_learned:own_density', d), '.4f')} "
                   f"| {_cell(v('supermask_learned:ticket_untrained', d))} |")
    out += ["", "**Accuracy after training** (Gem-Miner fine-tuned; IMP and random trained; sanity checks fine-tuned "
            "like the gem).", "",
            "| density | Gem-Miner | classes | IMP | random | gem − IMP | gem shuffled | gem − shuffled | weights re-init | gem − re-init | rebuilt = ticket |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for d in DENSITIES:
        g = v("gem_miner:finetuned", d)
        rb = v("sanity:rebuilt", d)
        same = [s for s in rb if s in g and rb[s] == g[s]]
        out.append(f"| {d:g} | {_cell(g)} | {_classes(res, 'gem_miner', d)} | {_cell(v('imp:trained', d))} "
                   f"| {_cell(v('random:trained', d))}{_mark(res, 'random', d)} "
                   f"| {_pcell(g, v('imp:trained', d))} | {_cell(v('sanity:shuffled', d))} | {_pcell(g, v('sanity:shuffled', d))} "
                   f"| {_cell(v('sanity:reinit', d))} | {_pcell(g, v('sanity:reinit', d))} | {len(same)}/{len(rb)} |")
    out += ["", "**Wall time** (seconds per run; Gem-Miner: mining + fine-tuning, in brackets mining alone; "
            "edge-popup and the supermask: mining alone; IMP: dense run + rounds to the density, each trained). "
            "Ratio = IMP / miner, mean over seeds; the wall times are noisy (other work shared the machine), "
            "the optimizer-step ratio (IMP: dense run + every round's steps after its rewind point; Gem-Miner: "
            "score training + fine-tuning) is not.", "",
            "| density | Gem-Miner | edge-popup | supermask | IMP (rounds) | IMP / Gem-Miner | IMP / edge-popup | IMP / supermask | steps IMP / Gem-Miner |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for d in DENSITIES:
        ims = v("imp:seconds", d)
        ratios = []
        for m in MINERS:
            ms = v(f"{m}:seconds", d)
            common = sorted(set(ms) & set(ims))
            ratios.append(f"{np.mean([ims[s] / ms[s] for s in common]):.1f}×" if common else "–")
        rounds = v("imp:rounds", d)
        r_text = f" ({int(next(iter(rounds.values())))})" if rounds else ""
        out.append(f"| {d:g} | {_cell(v('gem_miner:seconds', d), '.1f')} [{_cell(v('gem_miner:mine_seconds', d), '.1f')}] "
                   f"| {_cell(v('edge_popup:seconds', d), '.1f')} | {_cell(v('supermask_learned:seconds', d), '.1f')} "
                   f"| {_cell(ims, '.1f')}{r_text} | " + " | ".join(ratios)
                   + f" | {_cell(v('imp:steps_ratio', d), '.1f')} |")
    out += ["", "**Against the papers** (generated from the numbers above):", ""]
    out += findings(panel, res) or ["- No finished runs yet."]
    out.append("")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel, one thread each (default 1)")
    ap.add_argument("--cache", type=Path, default=ROOT / "out" / "learned_masks", help="where finished runs are kept")
    ap.add_argument("--report-only", action="store_true", help="only rewrite the page and plot from the cache")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        report(args.cache, seeds)
        return
    started = time.perf_counter()
    mine_jobs = [(p.key, r, d, s, str(args.cache)) for p in PANELS for s in seeds
                 for r, d in ([("imp", None)] if p.imp else []) + [(r, d) for d in p.densities for r in (*p.runs, "random")]
                 if not finished(run_path(args.cache, p, r, d, s))]
    signal_jobs = [(p.key, str(args.cache)) for p in PANELS if not p.imp and not _signal_path(args.cache, p).exists()]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        print(f"{len(mine_jobs)} mining runs and {len(signal_jobs)} signal measurements to do", file=sys.stderr, flush=True)
        futures = [pool.submit(_signal_job, j) for j in signal_jobs] + [pool.submit(_mine_job, j) for j in mine_jobs]
        for fut in as_completed(futures):
            path, seconds = fut.result()
            print(f"done {os.path.relpath(path, ROOT)} in {seconds:.1f} s", file=sys.stderr, flush=True)
        sanity_jobs = [(p.key, d, s, str(args.cache)) for p in PANELS if p.imp for s in seeds for d in p.densities
                       if not sanity_path(args.cache, p, d, s).exists()]
        print(f"{len(sanity_jobs)} sanity checks to do", file=sys.stderr, flush=True)
        for fut in as_completed([pool.submit(_sanity_job, j) for j in sanity_jobs]):
            path, seconds = fut.result()
            print(f"done {os.path.relpath(path, ROOT)} in {seconds:.1f} s", file=sys.stderr, flush=True)
    n_runs = len(mine_jobs) + len(sanity_jobs) + len(signal_jobs)
    report(args.cache, seeds, time.perf_counter() - started if n_runs else None, n_runs)


if __name__ == "__main__":
    main()
