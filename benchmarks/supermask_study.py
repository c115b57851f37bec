"""Reproduce the supermask results of issue 10 and regenerate ``docs/results/supermask.md``.

Three parts, each a list of jobs run by a process pool (one torch thread per worker); every
finished job's result is a JSON file in ``--cache`` whose name carries a hash of the job's
configuration, so a rerun skips it (and a changed configuration runs again):

* ``fig3``: Zhou et al. 2019, Fig. 3 analogue. Per data set and seed the dense lenet_300_100 is
  trained **once** (as the ``supermask`` miner trains it) and every criterion x kept-weights
  action is swept from that one θ0/θT pair with the library's own pieces
  (:func:`~ticketlab.miners.supermask.criterion_scores`, :func:`~ticketlab.selection.select_top`
  per layer, :func:`~ticketlab.weights.kept_weights`,
  :func:`~ticketlab.training.evaluate_untrained` from the initial state). The miner itself is
  also run once per seed (``--criterion large_final_same_sign --weights signed_std``) and the job
  asserts that its 24 sweep rows equal the computed ones exactly.
* ``recipe``: the seed recipe end to end on mlp_200_30 / mnist5k: ``ticketlab.mine("supermask",
  thresholds=..., final_weights="early_stop")`` after 20,000 dense iterations, then 5,000
  iterations of training of the chosen mask with its zeros frozen.
* ``baseline``: the recipe's layer-size baseline, dense 784-h1-h2-10 nets trained 5,000 iterations.
* ``reference``: the ``fig3`` sweeps again under the miner's ``protocol="reference"`` (Zhou et
  al.'s code: the sign criteria's 0 scores, the count ``N - int(N * pp / 100)``, the output layer
  at ``0.9^p``, biases under the kept action), for the criteria of :data:`REF_CRITERIA`, from the
  same dense training per seed; the masks of every ranking criterion under both protocols at the
  same density (Jaccard per layer); and the miner run end to end with ``--protocol reference``,
  whose sweep rows must equal the computed ones.

Usage (from the repository root)::

    .venv/bin/python benchmarks/supermask_study.py                # everything missing, then the page
    .venv/bin/python benchmarks/supermask_study.py --report-only  # page and plots from the cache
    .venv/bin/python benchmarks/supermask_study.py --part fig3 --fig3-seeds 0,1,2,3,4
    .venv/bin/python benchmarks/supermask_study.py --part reference   # only the protocol comparison

The page and its PNGs (``docs/results/supermask*.png``) are generated as a whole: edit this
script, not the page.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "results" / "supermask.md"
COMMAND = ".venv/bin/python benchmarks/supermask_study.py"

# ----------------------------------------------------------------------------- configuration
FIG3_MODEL = "lenet_300_100"
#: panel name -> (data set, create_model options). ``zhou``: Glorot-normal weights (Frankle & Carbin
#: 2019) and zero biases (the TensorFlow/Keras default of Zhou et al.'s code); the others keep
#: PyTorch's default initialization, whose non-zero biases dominate a sparse untrained network.
FIG3_PANELS: dict[str, tuple[str, dict[str, Any]]] = {
    "mnist5k": ("mnist5k", {}),
    "mnist5k_zhou": ("mnist5k", {"init": "xavier_normal", "zero_bias": True}),
    "digits": ("digits", {}),
}
SWEEP = "0.8^1..0.8^24"  # Zhou et al. Fig. 3 and the miner's default
FIG3_KEPT = ("init", "signed_std")  # signed_std = Zhou's "signed constant"
#: extra kept actions, only for these criteria (section 3): the signs shuffled
FIG3_SIGN_KEPT = {"large_final_same_sign": ("rand_signed_std",)}
FIG3_SINGLE_KEPT = ("init", "signed_std")
MINER_CHECK = {"criterion": "large_final_same_sign", "kept": "signed_std"}
#: criteria whose test accuracy is computed too (the others: validation only, to save time)
TEST_CRITERIA = ("large_final_same_sign",)
TABLE_POWERS = (3, 7, 10, 14, 20, 24)  # densities 0.8^k shown in the tables
REF_TABLE_POWERS = (1, 2, 3, 5, 7, 10, 14, 20)  # section 4: the dense end too, where the scorings differ

#: protocol "reference": the criteria swept again (where the protocols score differently, the default
#: and large_final, whose curve changes by the counts, the output rate and the biases only)
REF_CRITERIA = ("large_final_same_sign", "large_final_diff_sign", "magnitude_increase_same_sign",
                "magnitude_increase_diff_sign", "large_final")
REF_KEPT = ("init", "signed_std")
#: the criteria the protocols score differently: also swept with the reference scores alone (ticketlab's
#: counts, one density for every layer, initial biases), which isolates the scoring
REF_SCORE_CRITERIA = REF_CRITERIA[:4]
#: the protocols figure: one column per criterion
REF_PLOT_CRITERIA = ("magnitude_increase_same_sign", "large_final_diff_sign", "large_final")
MINER_CHECK_REF = {"criterion": "large_final_diff_sign", "kept": "signed_std", "protocol": "reference"}

RECIPE_MODEL, RECIPE_DATASET = "mlp_200_30", "mnist5k"
ADAM = {"optimizer": "adam", "lr": 0.0012, "batch_size": 60}
RECIPE_DENSE = {**ADAM, "iterations": 20_000, "eval_every": 100}
RECIPE_TICKET = {**ADAM, "iterations": 5_000, "eval_every": 100}
# sign(θ0)·θT >= t on the raw weights (no --normalize): t = 0 keeps every same-sign weight
# (~77 % of mlp_200_30's weights), t = 0.1 about 1 %, t = 0.15 a few hundred
THRESHOLDS = tuple(round(0.005 * i, 4) for i in range(21)) + (0.12, 0.15)
BASELINE_HIDDEN = tuple((h1, h2) for h1 in (50, 100, 150) for h2 in (5, 15, 25))

# the seed's numbers (full MNIST) and Zhou et al.'s
SEED_BEFORE, SEED_AFTER = (0.101, 0.016), (0.977, 0.001)
ZHOU_UNTRAINED = 0.86


def _ranking_criteria() -> list[str]:
    from ticketlab.miners.supermask import CRITERIA, SINGLE

    return [c for c in CRITERIA if c not in SINGLE]


def _single_criteria() -> list[str]:
    from ticketlab.miners.supermask import SINGLE

    return list(SINGLE)


# ----------------------------------------------------------------------------- jobs
def _job_config(kind: str, **kw: Any) -> dict[str, Any]:
    if kind == "fig3":
        dataset, model_kwargs = FIG3_PANELS[kw["panel"]]
        return {"kind": kind, "model": FIG3_MODEL, "dataset": dataset, "model_kwargs": model_kwargs,
                "sweep": SWEEP, "kept": list(FIG3_KEPT), "sign_kept": {k: list(v) for k, v in FIG3_SIGN_KEPT.items()},
                "single_kept": list(FIG3_SINGLE_KEPT), "test_criteria": list(TEST_CRITERIA), "criteria": _ranking_criteria(), "miner": MINER_CHECK,
                "recalibrate": 10, **kw}
    if kind == "reference":
        dataset, model_kwargs = FIG3_PANELS[kw["panel"]]
        return {"kind": kind, "model": FIG3_MODEL, "dataset": dataset, "model_kwargs": model_kwargs,
                "sweep": SWEEP, "kept": list(REF_KEPT), "criteria": list(REF_CRITERIA),
                "score_only": list(REF_SCORE_CRITERIA),
                "jaccard_criteria": [c for c in _ranking_criteria() if c != "random"], "miner": MINER_CHECK_REF,
                "recalibrate": 10, **kw}
    if kind == "recipe":
        return {"kind": kind, "model": RECIPE_MODEL, "dataset": RECIPE_DATASET, "dense": RECIPE_DENSE,
                "ticket": RECIPE_TICKET, "thresholds": list(THRESHOLDS), **kw}
    if kind == "baseline":
        return {"kind": kind, "model": RECIPE_MODEL, "dataset": RECIPE_DATASET, "train": RECIPE_TICKET, **kw}
    raise ValueError(kind)


def job_path(cache: Path, config: dict[str, Any]) -> Path:
    """``cache/KIND/NAME_HASH.json``: the hash covers the whole job configuration."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
    if config["kind"] in ("fig3", "reference"):
        name = f"{config['panel']}_s{config['seed']}"
    elif config["kind"] == "recipe":
        name = f"s{config['seed']}"
    else:
        name = f"h{config['hidden'][0]}x{config['hidden'][1]}_s{config['seed']}"
    return cache / config["kind"] / f"{name}_{digest}.json"


def _kept_generator(seed: int):
    """The generator the miner draws ``--weights`` permutations from (SupermaskMiner._kept_weights)."""
    import torch

    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, 0x6E97]).generate_state(1)[0]))


def _fig3(config: dict[str, Any]) -> dict[str, Any]:
    """Dense training once, then every criterion x kept sweep; the miner's own sweep must match."""
    import torch

    from ticketlab.data import load_dataset
    from ticketlab.mining import mine
    from ticketlab.streams import MINER, offset_generator
    from ticketlab.miners.supermask import criterion_scores, parse_sweep
    from ticketlab.models import create_model, prunable_parameters
    from ticketlab.selection import select_top
    from ticketlab.training import default_train_config, evaluate_untrained, state_copy, fit
    from ticketlab.weights import kept_weights

    dataset, seed, model, model_kwargs = config["dataset"], config["seed"], config["model"], config["model_kwargs"]
    data = load_dataset(dataset, seed=seed)  # as ticketlab.mine builds the run
    net = create_model(model, data.spec, seed=seed, **model_kwargs)
    params = prunable_parameters(net)
    init_state = state_copy(net)
    theta0 = {n: p.detach().clone() for n, p in params.items()}
    cfg = default_train_config(model, dataset)
    res = fit(net, data, cfg, seed=seed, device="cpu")
    thetaT = {n: p.detach().clone() for n, p in params.items()}
    grid = parse_sweep(config["sweep"])

    def run(masks: dict[str, torch.Tensor], kept: str, test: bool = True) -> dict[str, float]:
        gen = _kept_generator(seed)  # a fresh generator per mask, as the miner does
        w = {n: kept_weights(kept, theta0[n], masks[n], generator=gen) for n in masks}
        ev = evaluate_untrained(net, data, masks, w, state=init_state, recalibrate=config["recalibrate"], seed=seed,
                                splits=("val", "test") if test else ("val",))
        k = sum(int(m.sum()) for m in masks.values())
        out = {"kept": k, "density": k / sum(m.numel() for m in masks.values()), "val": ev["val"][1],
               "val_loss": ev["val"][0]}
        if test:
            out["test"] = ev["test"][1]
        return out

    curves: dict[str, dict[str, dict[str, list[float]]]] = {}
    for crit in config["criteria"]:
        gen = offset_generator(seed, MINER)  # the miner's ctx.generator (random)
        scores = criterion_scores(crit, theta0, thetaT, generator=gen)
        kepts = list(config["kept"]) + list(config["sign_kept"].get(crit, []))
        per_kept: dict[str, dict[str, list[float]]] = {k: {} for k in kepts}
        for d in grid:
            masks = select_top(scores, d, scope="layer")
            for kept in kepts:
                for key, v in run(masks, kept, test=crit in config["test_criteria"]).items():
                    per_kept[kept].setdefault(key, []).append(v)
        curves[crit] = per_kept
    single = {}
    for crit in _single_criteria():
        scores = criterion_scores(crit, theta0, thetaT)
        masks = {n: s > 0.5 for n, s in scores.items()}
        single[crit] = {kept: run(masks, kept) for kept in config["single_kept"]}

    # the miner, end to end (its own dense training): its sweep must be the computed one
    ticket = mine("supermask", model=model, dataset=dataset, seed=seed, device="cpu", model_kwargs=model_kwargs,
                  miner_config=dict(config["miner"]), omit_weights=True, omit_scores=True)
    rows = [r for r in ticket.history if r.get("stage") == "sweep"]
    mine_curve = curves[config["miner"]["criterion"]][config["miner"]["kept"]]
    assert len(rows) == len(grid), (len(rows), len(grid))
    for i, r in enumerate(rows):
        mine_row = (r["kept"], r["density"], r["val_accuracy"], r["val_loss"], r["test_accuracy"])
        ours = (mine_curve["kept"][i], mine_curve["density"][i], mine_curve["val"][i], mine_curve["val_loss"][i],
                mine_curve["test"][i])
        assert mine_row == ours, f"miner sweep row {i} differs: {mine_row} != {ours}"
    chosen = [i for i, r in enumerate(rows) if r.get("selected")]
    assert chosen == [int(np.argmax(mine_curve["val"]))], (chosen, mine_curve["val"])
    final = ticket.history[-1]
    return {"dense": {"val_accuracy": res.final_val_accuracy, "test_accuracy": res.final_test_accuracy,
                      "iterations": res.final_iteration, "train_size": int(len(data.train[1])),
                      "val_size": int(len(data.val[1])), "test_size": int(len(data.test[1]))},
            "grid": grid, "curves": curves, "single": single,
            "miner": {"rows_checked": len(rows), "selected_density": final["density"],
                      "untrained_val_accuracy": final["untrained_val_accuracy"],
                      "untrained_test_accuracy": final["untrained_test_accuracy"]}}


def _reference(config: dict[str, Any]) -> dict[str, Any]:
    """Dense training once (as ``_fig3``), then the protocol-reference sweeps of ``REF_CRITERIA``
    and the two protocols' masks at equal densities; the miner's own reference sweep must match."""
    import torch

    from ticketlab.data import load_dataset
    from ticketlab.mining import mine
    from ticketlab.streams import MINER, TIE, offset_generator
    from ticketlab.miners.supermask import REFERENCE_OUTPUT_BASE, criterion_scores, parse_sweep, sweep_powers
    from ticketlab.models import create_model, prunable_parameters
    from ticketlab.selection import select_target, select_top
    from ticketlab.training import default_train_config, evaluate_untrained, state_copy, fit
    from ticketlab.weights import kept_generator, kept_weights, layer_biases, start_biases

    dataset, seed, model, model_kwargs = config["dataset"], config["seed"], config["model"], config["model_kwargs"]
    data = load_dataset(dataset, seed=seed)
    net = create_model(model, data.spec, seed=seed, **model_kwargs)
    params = prunable_parameters(net)
    init_state = state_copy(net)
    theta0 = {n: p.detach().clone() for n, p in params.items()}
    fit(net, data, default_train_config(model, dataset), seed=seed, device="cpu")
    thetaT = {n: p.detach().clone() for n, p in params.items()}
    base, lo, hi = sweep_powers(config["sweep"])
    points = [(base ** k, REFERENCE_OUTPUT_BASE ** k) for k in range(lo, hi + 1)]  # hidden, output (Zhou)
    out_layer = list(params)[-1]
    targets = [{n: (o if n == out_layer else d) for n in params} for d, o in points]
    biases = list(layer_biases(dict(net.named_parameters()), params).values())
    b0 = {n: init_state[n] for n in biases}
    ones = {n: torch.ones_like(b, dtype=torch.bool) for n, b in b0.items()}  # ranking criteria: biases unmasked

    def tie() -> torch.Generator:  # the run's selection stream, as every sweep point starts from it
        return offset_generator(seed, TIE)

    def run(masks: dict[str, torch.Tensor], kept: str, test: bool) -> dict[str, float]:
        gen = kept_generator(seed)
        w = {n: kept_weights(kept, theta0[n], masks[n], generator=gen, within="layer") for n in masks}
        start = {**init_state, **{n: b.to(init_state[n].dtype)
                                  for n, b in start_biases(kept, b0, ones, seed=seed, within="layer").items()}}
        ev = evaluate_untrained(net, data, masks, w, state=start, recalibrate=config["recalibrate"], seed=seed,
                                splits=("val", "test") if test else ("val",))
        k = sum(int(m.sum()) for m in masks.values())
        out = {"kept": k, "density": k / sum(m.numel() for m in masks.values()), "val": ev["val"][1],
               "val_loss": ev["val"][0]}
        if test:
            out["test"] = ev["test"][1]
        return out

    check = config["miner"]
    curves: dict[str, dict[str, dict[str, list[float]]]] = {}
    for crit in config["criteria"]:
        scores = criterion_scores(crit, theta0, thetaT, generator=offset_generator(seed, MINER),
                                  protocol="reference")
        per_kept: dict[str, dict[str, list[float]]] = {k: {} for k in config["kept"]}
        for target in targets:
            masks = select_target(scores, target, scope="layer", count_rule="truncated_percent", generator=tie())
            for kept in config["kept"]:
                test = crit == check["criterion"] and kept == check["kept"]
                for key, v in run(masks, kept, test).items():
                    per_kept[kept].setdefault(key, []).append(v)
        curves[crit] = per_kept

    # the reference scores alone: everything else as section 1's exact sweeps (its selection call,
    # one density for every layer, ticketlab's count, the initial biases, signs shuffled among the kept)
    grid = parse_sweep(config["sweep"])
    score_only: dict[str, dict[str, list[float]]] = {}
    for crit in config["score_only"]:
        scores = criterion_scores(crit, theta0, thetaT, protocol="reference")
        per: dict[str, list[float]] = {k: [] for k in config["kept"]}
        for d in grid:
            masks = select_top(scores, d, scope="layer")
            for kept in config["kept"]:
                gen = kept_generator(seed)
                w = {n: kept_weights(kept, theta0[n], masks[n], generator=gen) for n in masks}
                ev = evaluate_untrained(net, data, masks, w, state=init_state, recalibrate=config["recalibrate"],
                                        seed=seed, splits=("val",))
                per[kept].append(ev["val"][1])
        score_only[crit] = per

    # the two protocols' masks at the same density for every layer: scores and count rule only
    jaccard: dict[str, dict[str, list[float]]] = {}

    def jac(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, float]:
        return {n: float((a[n] & b[n]).sum()) / max(float((a[n] | b[n]).sum()), 1.0) for n in a}

    for crit in config["jaccard_criteria"]:
        exact = criterion_scores(crit, theta0, thetaT)
        ref = criterion_scores(crit, theta0, thetaT, protocol="reference")
        rows: dict[str, list[float]] = {}
        for d in grid:
            m_exact = select_top(exact, d, scope="layer", generator=tie())
            m_ref = select_top(ref, d, scope="layer", count_rule="truncated_percent", generator=tie())
            m_count = select_top(exact, d, scope="layer", count_rule="truncated_percent", generator=tie())
            for n, v in jac(m_exact, m_ref).items():
                rows.setdefault(n, []).append(v)
            for n, v in jac(m_exact, m_count).items():
                rows.setdefault(f"count:{n}", []).append(v)
        jaccard[crit] = rows

    # the miner, end to end with --protocol reference: its sweep must be the computed one
    ticket = mine("supermask", model=model, dataset=dataset, seed=seed, device="cpu", model_kwargs=model_kwargs,
                  miner_config={**check, "sweep": config["sweep"]}, omit_weights=True, omit_scores=True)
    rows = [r for r in ticket.history if r.get("stage") == "sweep"]
    mine_curve = curves[check["criterion"]][check["kept"]]
    assert len(rows) == len(targets), (len(rows), len(targets))
    for i, r in enumerate(rows):
        mine_row = (r["kept"], r["density"], r["val_accuracy"], r["val_loss"], r["test_accuracy"],
                    r["target_density"], r["target_output_density"])
        ours = (mine_curve["kept"][i], mine_curve["density"][i], mine_curve["val"][i], mine_curve["val_loss"][i],
                mine_curve["test"][i], points[i][0], points[i][1])
        assert mine_row == ours, f"miner reference sweep row {i} differs: {mine_row} != {ours}"
    chosen = [i for i, r in enumerate(rows) if r.get("selected")]
    assert chosen == [int(np.argmax(mine_curve["val"]))], (chosen, mine_curve["val"])
    final = ticket.history[-1]
    return {"grid": [d for d, _ in points], "output_grid": [o for _, o in points], "curves": curves,
            "score_only": score_only, "jaccard": jaccard, "sizes": {n: int(p.numel()) for n, p in params.items()},
            "miner": {"rows_checked": len(rows), "selected_density": final["density"],
                      "count_rule": ticket.provenance["count_rule"],
                      "untrained_val_accuracy": final["untrained_val_accuracy"],
                      "untrained_test_accuracy": final["untrained_test_accuracy"]}}


def _train_config(options: dict[str, Any]):
    from ticketlab.training import TrainConfig

    return TrainConfig.from_dict(options)


def _recipe(config: dict[str, Any]) -> dict[str, Any]:
    """The seed recipe with the miner, then 5,000 iterations of the chosen mask (zeros frozen)."""
    import torch

    import ticketlab
    from ticketlab.data import load_dataset
    from ticketlab.masking import from_numpy_masks
    from ticketlab.mining import mine
    from ticketlab.models import create_model, prunable_parameters
    from ticketlab.training import fit

    seed = config["seed"]
    ticket = mine("supermask", model=config["model"], dataset=config["dataset"], seed=seed, device="cpu",
                  train_options=dict(config["dense"]), omit_scores=True,
                  miner_config={"criterion": "large_final_same_sign", "kept": "init", "final_weights": "early_stop",
                                "thresholds": ",".join(str(t) for t in config["thresholds"])})
    dense = next(r for r in ticket.history if r.get("stage") == "dense")
    sweep = [r for r in ticket.history if r.get("stage") == "sweep"]
    chosen = next(r for r in sweep if r.get("selected"))
    # the stored ticket, evaluated by the public API, is the chosen sweep point
    check = ticketlab.evaluate(ticket, split="val", device="cpu")
    assert check["accuracy"] == chosen["val_accuracy"], (check, chosen)

    data = load_dataset(config["dataset"], seed=seed)
    net = create_model(config["model"], data.spec, seed=seed)  # biases: the initial ones
    params = prunable_parameters(net)
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(torch.as_tensor(np.asarray(ticket.weights["init"][n])))
    masks = from_numpy_masks(ticket.masks, params)
    res = fit(net, data, _train_config(config["ticket"]), masks=masks, seed=seed, device="cpu")
    return {"dense": dense, "sweep": sweep, "chosen": chosen, "layer_density": ticket.layer_density(),
            "kept": ticket.kept, "total": ticket.total,
            "trained": {"val_accuracy": res.final_val_accuracy, "test_accuracy": res.final_test_accuracy,
                        "best_val_accuracy": res.best_val_accuracy, "early_stop_iteration": res.early_stop_iteration,
                        "early_stop_test_accuracy": res.early_stop_test_accuracy}}


def _baseline(config: dict[str, Any]) -> dict[str, Any]:
    from ticketlab.data import load_dataset
    from ticketlab.models import create_model, prunable_parameters
    from ticketlab.training import fit

    seed = config["seed"]
    data = load_dataset(config["dataset"], seed=seed)
    net = create_model(config["model"], data.spec, seed=seed, hidden=tuple(config["hidden"]))
    weights = sum(p.numel() for p in prunable_parameters(net).values())
    res = fit(net, data, _train_config(config["train"]), seed=seed, device="cpu")
    return {"weights": weights, "val_accuracy": res.final_val_accuracy, "test_accuracy": res.final_test_accuracy,
            "early_stop_test_accuracy": res.early_stop_test_accuracy}


def _run(job: tuple[dict[str, Any], str]) -> tuple[str, float]:
    """One job in a worker process: compute, then write its JSON atomically."""
    import torch

    from ticketlab.atomic import atomic_write_text

    config, path = job
    torch.set_num_threads(1)
    started, cpu = time.perf_counter(), time.process_time()
    result = {"recipe": _recipe, "fig3": _fig3, "baseline": _baseline, "reference": _reference}[config["kind"]](config)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps({"config": config, "seconds": seconds, "cpu_seconds": cpu, **result},
                                      default=float))
    return path, seconds


def all_jobs(parts: list[str], fig3_seeds: list[int], recipe_seeds: list[int],
             baseline_seeds: list[int]) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    if "fig3" in parts:
        jobs += [_job_config("fig3", panel=p, seed=s) for p in FIG3_PANELS for s in fig3_seeds]
    if "baseline" in parts:
        jobs += [_job_config("baseline", hidden=list(h), seed=s) for s in baseline_seeds for h in BASELINE_HIDDEN]
    if "recipe" in parts:
        jobs += [_job_config("recipe", seed=s) for s in recipe_seeds]
    if "reference" in parts:
        jobs += [_job_config("reference", panel=p, seed=s) for p in FIG3_PANELS for s in fig3_seeds]
    return jobs


def _load(cache: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    path = job_path(cache, config)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- formatting
def _pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f} %"


def _mm(values: np.ndarray) -> str:
    """mean [min–max] of accuracies, in %."""
    v = np.asarray(values, dtype=float)
    if len(v) == 1:
        return f"{100 * v[0]:.1f}"
    return f"{100 * v.mean():.1f} [{100 * v.min():.1f}–{100 * v.max():.1f}]"


def _msd(values: Any, digits: int = 3) -> str:
    v = np.asarray(values, dtype=float)
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def _density_label(d: float) -> str:
    return f"{100 * d:.3g} %"


# ----------------------------------------------------------------------------- fig3 report
def _fig3_arrays(results: list[dict[str, Any]]) -> dict[str, Any]:
    """crit -> kept -> {"val": seeds x grid, "test": ...}; singles; dense; seeds."""
    out: dict[str, Any] = {"grid": np.array(results[0]["grid"]), "seeds": [r["config"]["seed"] for r in results],
                           "curves": {}, "single": {}}
    for crit in results[0]["curves"]:
        out["curves"][crit] = {kept: {key: np.array([r["curves"][crit][kept][key] for r in results])
                                      for key in ("val", "test", "density") if key in results[0]["curves"][crit][kept]}
                               for kept in results[0]["curves"][crit]}
    for crit in results[0]["single"]:
        out["single"][crit] = {kept: {key: np.array([r["single"][crit][kept][key] for r in results])
                                      for key in ("val", "test", "density")}
                               for kept in results[0]["single"][crit]}
    out["dense_val"] = np.array([r["dense"]["val_accuracy"] for r in results])
    out["dense_test"] = np.array([r["dense"]["test_accuracy"] for r in results])
    out["dense"] = results[0]["dense"]
    out["config"] = results[0]["config"]
    out["miner"] = [r["miner"] for r in results]
    out["seconds"] = sum(r["seconds"] for r in results)
    out["cpu_seconds"] = sum(r.get("cpu_seconds", math.nan) for r in results)
    return out


def _style(i: int, crit: str) -> dict[str, Any]:
    import matplotlib

    if crit == "large_final_same_sign":  # the default criterion, drawn on top
        return {"color": "k", "linestyle": "-", "lw": 2.2, "zorder": 5}
    cmap = matplotlib.colormaps["tab20"]
    return {"color": cmap(i % 20), "linestyle": ("-", "--", ":")[i % 3], "lw": 1.4}


def _xaxis(ax: Any, lo: float) -> None:
    ax.set_xscale("log")
    ticks = [t for t in (100, 50, 20, 10, 5, 2, 1, 0.5, 0.2) if t >= lo * 0.8]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.invert_xaxis()
    ax.set_xlabel("weights remaining (%)")
    ax.grid(alpha=0.3)


def _spread(v: Any) -> list[list[float]]:
    """Error-bar lengths from the mean to the min and the max (never negative)."""
    v = np.asarray(v, dtype=float)
    return [[max(v.mean() - v.min(), 0.0)], [max(v.max() - v.mean(), 0.0)]]


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    from ticketlab.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


PANEL_TITLES = {"mnist5k": "PyTorch default init",
                "mnist5k_zhou": "mnist5k with Glorot-normal init and zero biases",
                "digits": "PyTorch default init"}


def _title(panel: str, markdown: bool = True) -> str:
    name = f"`{panel}`" if markdown else panel
    return f"{name} ({PANEL_TITLES[panel]})" if panel in PANEL_TITLES else name


def _plot_fig3(per_ds: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kepts = ("init", "signed_std")
    fig, axes = plt.subplots(len(per_ds), len(kepts), figsize=(13, 4.4 * len(per_ds) + 0.9), squeeze=False)
    for row, (ds, a) in enumerate(per_ds.items()):
        x = a["grid"] * 100
        for col, kept in enumerate(kepts):
            ax = axes[row][col]
            for i, (crit, c) in enumerate(a["curves"].items()):
                v = c[kept]["val"]
                st = _style(i, crit)
                ax.plot(x, v.mean(0), label=crit, **st)
                ax.fill_between(x, v.min(0), v.max(0), color=st["color"], alpha=0.15, lw=0)
            for j, (crit, c) in enumerate(a["single"].items()):
                s = c[kept]
                ax.errorbar(s["density"].mean() * 100, s["val"].mean(), yerr=_spread(s["val"]), fmt="*^"[j], ms=10,
                            color="k", label=crit)
            ax.axhline(a["dense_val"].mean(), color="gray", lw=0.8, ls="-.", label="dense, trained")
            ax.axhline(0.1, color="gray", lw=0.6, ls=":")
            _xaxis(ax, x.min())
            ax.set_ylim(0, 1)
            ax.set_ylabel("untrained validation accuracy")
            name = "init (θ0)" if kept == "init" else "signed_std (Zhou's signed constant)"
            ax.set_title(f"{FIG3_MODEL} / {_title(ds, False)}\nkept = {name}; n={len(a['seeds'])} seeds", fontsize=9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=8)
    fig.suptitle("Supermasks untrained (Zhou et al. 2019, Fig. 3 analogue): mean over seeds, min–max shaded",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0.9 / (4.4 * len(per_ds) + 0.9), 1, 0.98))
    _save(fig, path)


SIGN_LINES = (("large_final_same_sign", "signed_std"), ("large_final_diff_sign", "signed_std"),
              ("large_final_same_sign", "rand_signed_std"), ("large_final_same_sign", "init"),
              ("large_final_diff_sign", "init"), ("large_final", "signed_std"))


def _plot_sign(per_ds: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(per_ds), figsize=(5.6 * len(per_ds), 4.4), squeeze=False)
    for ax, (ds, a) in zip(axes[0], per_ds.items()):
        x = a["grid"] * 100
        for i, (crit, kept) in enumerate(SIGN_LINES):
            v = a["curves"][crit][kept]["val"]
            color = f"C{i}"
            ax.plot(x, v.mean(0), color=color, label=f"{crit}, {kept}", marker="o", ms=2.5)
            ax.fill_between(x, v.min(0), v.max(0), color=color, alpha=0.15, lw=0)
        ax.axhline(0.1, color="gray", lw=0.6, ls=":")
        _xaxis(ax, x.min())
        ax.set_ylim(0, 1)
        ax.set_ylabel("untrained validation accuracy")
        ax.set_title(f"{_title(ds, False)}\n(n={len(a['seeds'])} seeds, min–max shaded)", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"{FIG3_MODEL}: signs matter (same vs. different sign; signed constants with shuffled signs)",
                 fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _table_idx(grid: np.ndarray, powers: tuple[int, ...] = TABLE_POWERS) -> list[int]:
    return [int(np.argmin(abs(grid - 0.8 ** k))) for k in powers if any(abs(g - 0.8 ** k) < 1e-12 for g in grid)]


def _fig3_section(per_ds: dict[str, dict[str, Any]]) -> list[str]:
    first = next(iter(per_ds.values()))
    grid = first["grid"]
    idx = _table_idx(grid)
    its = {a["config"]["dataset"]: a["dense"]["iterations"] for a in per_ds.values()}
    checked = ", ".join(f"{sum(m['rows_checked'] for m in a['miner'])} on `{ds}`" for ds, a in per_ds.items())
    L = ["## 1. Zhou et al. Fig. 3 analogue: every criterion, untrained", ""]
    L += [
        "**Protocol.** `lenet_300_100` (784-300-100-10, ReLU; 64-300-100-10 on the 8×8 `digits`) is trained "
        "densely per seed as the `supermask` miner trains it: the data set's default training (Adam 1.2e-3, batch 60, "
        "20 epochs = " + ", ".join(f"{n:,} iterations on `{d}`" for d, n in its.items()) + "), θT = the last "
        "weights. Every weight is scored by each criterion from θ0/θT, and each layer keeps its own top "
        "`keep_count(d, N_l)` (`--scope layer`; the output layer at the same density as the hidden ones, where Zhou "
        f"prune it at half the hidden rate: section 4 runs Zhou's conventions) for d on the grid `{SWEEP}` (80 % down to "
        f"{_density_label(grid.min())}). The kept weights are set to θ0 (`--weights init`) or to Zhou's signed constant "
        "sign(θ0)·std(layer θ0) (`--weights signed_std`; ticketlab's `signed_constant` is the Kaiming constant "
        "sqrt(2/fan_in), not used here); biases stay at their initial values; the masked network is evaluated "
        "**untrained** on the validation split. The two criteria without count control (`same_sign_single`, "
        "`diff_sign_single`) are single points at their achieved density (stars in the plot). Seeds "
        + ", ".join(map(str, first["seeds"])) + "; lines are the mean over seeds, the shaded band the min–max.",
        "",
        "Three panels: `mnist5k` and `digits` with ticketlab's (PyTorch's) default initialization, whose biases "
        "are uniform in ±1/sqrt(fan_in), and `mnist5k` with Zhou's set-up, Glorot-normal weights (Frankle & Carbin "
        "2019) and zero biases (`create_model(..., init=\"xavier_normal\", zero_bias=True)`; "
        "`--init xavier_normal --zero-bias` on the command line).",
        "",
        "Each seed's dense network is trained once and all sweeps are computed from it with the library's functions "
        "(`criterion_scores`, `select_top(scope=\"layer\")`, `kept_weights`, `evaluate_untrained` from the initial "
        "state). The miner is also run end to end once per seed and panel, "
        f"`ticketlab.mine(\"supermask\", miner_config={MINER_CHECK})`; the script asserts that its sweep rows "
        f"({checked}) equal the computed ones exactly (kept count, density, validation accuracy and loss, test "
        "accuracy) and that it selects the computed argmax. One such run on the command line:",
        "",
        f"    ticketlab mine --method supermask --model {FIG3_MODEL} --dataset mnist5k --criterion "
        "large_final_same_sign --weights signed_std --seed 0 -o t.h5",
        "",
        "![Fig. 3 analogue](supermask_fig3.png)",
        "",
    ]
    for ds, a in per_ds.items():
        dv, dt = a["dense_val"], a["dense_test"]
        L += [f"### {_title(ds)}", "",
              f"Dense trained network: validation accuracy {_mm(dv)} %, test {_mm(dt)} % "
              f"({a['dense']['train_size']:,} training / {a['dense']['val_size']:,} validation / "
              f"{a['dense']['test_size']:,} test images). Untrained validation accuracy in % (mean [min–max] over "
              f"{len(a['seeds'])} seeds) at some grid densities; *best* is the grid point of highest mean:", ""]
        for kept in ("signed_std", "init"):
            L += [f"kept = `{kept}`:", "",
                  "| criterion | " + " | ".join(_density_label(grid[i]) for i in idx) + " | best (density) |",
                  "|---|" + "---:|" * (len(idx) + 1)]
            for crit, c in a["curves"].items():
                v = c[kept]["val"]
                b = int(np.argmax(v.mean(0)))
                cells = [_mm(v[:, i]) for i in idx] + [f"{_mm(v[:, b])} ({_density_label(grid[b])})"]
                L.append(f"| `{crit}` | " + " | ".join(cells) + " |")
            for crit, c in a["single"].items():
                s = c[kept]
                L.append(f"| `{crit}` (achieved density {_density_label(s['density'].mean())}) | "
                         + " | ".join("" for _ in idx) + f" | {_mm(s['val'])} |")
            L.append("")
        L += _zhou_sentences(ds, a)
    L += _bias_paragraph(per_ds)
    L += _subset_paragraph(per_ds)
    return L


def _zhou_sentences(ds: str, a: dict[str, Any]) -> list[str]:
    grid = a["grid"]
    c = a["curves"]["large_final_same_sign"]["signed_std"]
    val, test = c["val"], c["test"]
    sel = val.argmax(1)  # per seed, as the miner selects (first on ties)
    rows = np.arange(len(sel))
    b_test = int(np.argmax(test.mean(0)))
    best = sorted(((cc[k]["val"].mean(0).max(), crit, k) for crit, cc in a["curves"].items()
                   for k in ("init", "signed_std")), reverse=True)
    top = best[0]
    t_best = test[:, b_test].mean()
    return [
        f"*Against Zhou et al.'s 86 %.* With signed constants, `large_final_same_sign` selected on validation per "
        f"seed (as the miner does) reaches untrained validation accuracy {_mm(val[rows, sel])} % at densities "
        f"{', '.join(_density_label(grid[i]) for i in sel)}; the test accuracy of those points is "
        f"{_mm(test[rows, sel])} %. Chosen on the test column instead, as Zhou's sweep did, the best grid point "
        f"({_density_label(grid[b_test])}) has mean test accuracy {_pct(t_best)}, "
        f"{abs(100 * (ZHOU_UNTRAINED - t_best)):.1f} points {'below' if t_best < ZHOU_UNTRAINED else 'above'} "
        f"Zhou's {ZHOU_UNTRAINED:.0%} on full MNIST"
        + ("" if a["config"]["dataset"] == "mnist5k" else " (a different task: 8×8 images)")
        + f". The highest mean untrained validation accuracy of any criterion "
        f"and kept action is `{top[1]}` with `{top[2]}` ({_pct(top[0])}). The miner's own runs selected densities "
        f"{', '.join(_density_label(m['selected_density']) for m in a['miner'])} (untrained test accuracy "
        + ", ".join(f"{m['untrained_test_accuracy']:.3f}" for m in a["miner"]) + ").",
        "",
    ]


def _lowest_density(a: dict[str, Any], level: float, crit: str = "large_final_same_sign",
                    kept: str = "signed_std") -> float | None:
    """The lowest grid density down to which the mean untrained val accuracy stays >= level."""
    v = a["curves"][crit][kept]["val"].mean(0)
    ok = None
    for d, x in zip(a["grid"], v):  # the grid runs dense -> sparse
        if x < level:
            break
        ok = d
    return ok


def _bias_paragraph(per_ds: dict[str, dict[str, Any]]) -> list[str]:
    if "mnist5k" not in per_ds or "mnist5k_zhou" not in per_ds:
        return []
    parts = []
    for ds in ("mnist5k", "mnist5k_zhou"):
        a = per_ds[ds]
        v = a["curves"]["large_final_same_sign"]["signed_std"]["val"]
        chance = int((np.abs(v.mean(0) - 0.1) < 0.005).sum())
        d50 = _lowest_density(a, 0.5)
        parts.append(f"with {PANEL_TITLES[ds].replace('mnist5k with ', '')} it stays at or above 50 % down to "
                     f"{_density_label(d50) if d50 else 'no grid density'} and is within half a point of 10 % "
                     f"(chance: the splits are stratified) at {chance} of the {len(a['grid'])} densities")
    return [
        "**Biases decide the sparse end.** For `large_final_same_sign` with signed constants on `mnist5k`, "
        + "; ".join(parts) + ". A masked untrained network's weighted inputs shrink with the density while "
        "PyTorch's non-zero initial biases do not, so below a few percent every input gives the same logits and the "
        "accuracy is exactly chance; with zero biases the network is positively homogeneous and only disconnection "
        "makes it fail. Zhou's code is TensorFlow, whose dense layers start with zero biases by default; the "
        "`mnist5k_zhou` panel assumes that Zhou kept that default (not checked against their configuration).",
        "",
    ]


def _subset_paragraph(per_ds: dict[str, dict[str, Any]]) -> list[str]:
    if "mnist5k" not in per_ds:
        return []
    a = per_ds["mnist5k"]
    n_val = a["dense"]["val_size"]
    se = math.sqrt(0.8 * 0.2 / n_val)
    dense = ", ".join(f"{_pct(per_ds[p]['dense_test'].mean())} (`{p}`)" for p in per_ds if p.startswith("mnist5k"))
    return [
        "**How the 5k subset limits the comparison.** `mnist5k` has "
        f"{a['dense']['train_size']:,} training images (Frankle & Carbin, whose set-up Zhou follow, train LeNet on "
        f"55,000 MNIST images for 50,000 iterations); the dense network here trains {a['dense']['iterations']:,} iterations "
        f"and reaches a mean test accuracy of {dense}, against about 98 % on full MNIST. θT is therefore a "
        "shorter, noisier training run, and every criterion built from it (the sign agreement above all) carries "
        f"less information than in the paper. The validation split has {n_val} images: one image is "
        f"{100 / n_val:.1f} points, and at 80 % accuracy the binomial standard error is {100 * se:.1f} points, so "
        "gaps of a few points between criteria are noise; the test split "
        f"({a['dense']['test_size']:,} images) is a tenth of MNIST's. The grid and the kept actions are Zhou's; "
        "the output layer's rate is not, except in section 4. Absolute numbers are therefore only roughly comparable "
        "with Zhou's; the ordering of the criteria and the sign effects are the comparable part.",
        "",
    ]


def _sign_section(per_ds: dict[str, dict[str, Any]]) -> list[str]:
    L = ["## 3. Signs matter", "",
         "From the runs of section 1 (same seeds, same masks): the gap between `large_final_same_sign` and "
         "`large_final_diff_sign` (kept init and signed_std), and between Zhou's signed constant (`signed_std`) and "
         "the same constant with its signs shuffled among each layer's kept weights (`rand_signed_std`), both on the "
         "`large_final_same_sign` mask. Differences in points of untrained validation accuracy, paired by seed: "
         "mean [min, max].", "", "![signs](supermask_sign.png)", ""]
    for ds, a in per_ds.items():
        grid, cur = a["grid"], a["curves"]
        pairs = [("same − diff sign, init", cur["large_final_same_sign"]["init"]["val"],
                  cur["large_final_diff_sign"]["init"]["val"]),
                 ("same − diff sign, signed_std", cur["large_final_same_sign"]["signed_std"]["val"],
                  cur["large_final_diff_sign"]["signed_std"]["val"]),
                 ("signed_std − rand_signed_std", cur["large_final_same_sign"]["signed_std"]["val"],
                  cur["large_final_same_sign"]["rand_signed_std"]["val"])]
        L += [f"{_title(ds)}:", "", "| density | " + " | ".join(p[0] for p in pairs) + " |",
              "|---:|" + "---:|" * len(pairs)]
        for i in _table_idx(grid):
            cells = []
            for _, x, y in pairs:
                d = 100 * (x[:, i] - y[:, i])
                cells.append(f"{d.mean():+.1f} [{d.min():+.1f}, {d.max():+.1f}]")
            L.append(f"| {_density_label(grid[i])} | " + " | ".join(cells) + " |")
        L.append("")
        live = a["curves"]["large_final_same_sign"]["signed_std"]["val"].mean(0) >= 0.2
        sent = []
        for name, x, y in pairs:
            d = 100 * (x - y)
            m = d.mean(0)
            j = int(np.argmax(m))
            if live.any():
                dl = d[:, live]
                sent.append(f"{name}: {dl.mean():+.1f} points on average over the {int(live.sum())} densities where "
                            f"the same-sign signed-constant mask is above 20 % (positive in {int((dl > 0).sum())} of "
                            f"{dl.size} seed × density pairs), largest {m[j]:+.1f} at {_density_label(grid[j])}")
        L += [f"On {_title(ds)}: " + "; ".join(sent) + ".", ""]
    return L


# ----------------------------------------------------------------------------- protocol report
def _ref_arrays(results: list[dict[str, Any]]) -> dict[str, Any]:
    """crit -> kept -> {"val": seeds x grid}; jaccard crit -> layer -> seeds x grid; seeds."""
    out: dict[str, Any] = {"grid": np.array(results[0]["grid"]), "output_grid": np.array(results[0]["output_grid"]),
                           "seeds": [r["config"]["seed"] for r in results], "sizes": results[0]["sizes"],
                           "miner": [r["miner"] for r in results], "config": results[0]["config"]}
    out["curves"] = {crit: {kept: {key: np.array([r["curves"][crit][kept][key] for r in results])
                                   for key in ("val", "density")}
                            for kept in results[0]["curves"][crit]} for crit in results[0]["curves"]}
    out["score_only"] = {crit: {kept: np.array([r["score_only"][crit][kept] for r in results])
                                for kept in results[0]["score_only"][crit]} for crit in results[0]["score_only"]}
    out["jaccard"] = {crit: {layer: np.array([r["jaccard"][crit][layer] for r in results])
                             for layer in results[0]["jaccard"][crit]} for crit in results[0]["jaccard"]}
    out["seconds"] = sum(r["seconds"] for r in results)
    out["cpu_seconds"] = sum(r.get("cpu_seconds", math.nan) for r in results)
    return out


def _plot_protocols(per_ds: dict[str, dict[str, Any]], refs: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [ds for ds in refs if ds in per_ds]
    fig, axes = plt.subplots(len(panels), len(REF_PLOT_CRITERIA), figsize=(15, 4.2 * len(panels) + 0.7),
                             squeeze=False)
    for row, ds in enumerate(panels):
        a, r = per_ds[ds], refs[ds]
        x = r["grid"] * 100
        for col, crit in enumerate(REF_PLOT_CRITERIA):
            ax = axes[row][col]
            for i, kept in enumerate(REF_KEPT):
                color = f"C{i}"
                e = a["curves"][crit][kept]["val"]
                ax.plot(x, e.mean(0), color=color, lw=1.6, label=f"kept {kept}: exact")
                if crit in r["score_only"]:
                    so = r["score_only"][crit][kept]
                    ax.plot(x, so.mean(0), color=color, lw=1.6, ls=":", label=f"kept {kept}: reference scores only")
                f = r["curves"][crit][kept]["val"]
                ax.plot(x, f.mean(0), color=color, lw=1.6, ls="--", label=f"kept {kept}: reference")
                ax.fill_between(x, f.min(0), f.max(0), color=color, alpha=0.10, lw=0)
            ax.axhline(0.1, color="gray", lw=0.6, ls=":")
            _xaxis(ax, x.min())
            ax.set_xlabel("hidden layers' weights remaining (%)")
            ax.set_ylim(0, 1)
            ax.set_ylabel("untrained validation accuracy")
            ax.set_title(f"{_title(ds, False)}\n{crit} (n={len(r['seeds'])} seeds; reference min–max shaded)",
                         fontsize=9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8)
    fig.suptitle(f"{FIG3_MODEL}, supermasks untrained: exact (solid) against Zhou et al.'s conventions: the "
                 "reference scores alone (dotted) and all of them (dashed; output layer at 0.9^p, biases under the "
                 "kept action)", fontsize=10)
    fig.tight_layout(rect=(0, 0.7 / (4.2 * len(panels) + 0.7), 1, 0.97))
    _save(fig, path)


def _count_sentence(refs: dict[str, dict[str, Any]]) -> str:
    from ticketlab.selection import keep_count, keep_count_truncated_percent

    parts = []
    for ds, r in refs.items():
        sizes = list(r["sizes"].values())
        grid = r["grid"]
        more = sum(keep_count_truncated_percent(d, n) - keep_count(d, n) for d in grid for n in sizes)
        differ = sum(keep_count_truncated_percent(d, n) != keep_count(d, n) for d in grid for n in sizes)
        parts.append(f"`{ds}` (layers of {', '.join(f'{n:,}' for n in sizes)} weights): {differ} of "
                     f"{len(grid) * len(sizes)} layer × density points, {more:+d} weights in all")
    return ("Zhou's count `N − int(N·pp/100)` is `ceil(d·N)` up to floating point, ticketlab's `floor(d·N + 1/2)` "
            "rounds: Zhou keeps one weight more wherever `d·N` has a fractional part below one half; at the same "
            "density `0.8^p` for every layer that is " + "; ".join(parts) + ".")


def _jaccard_lines(ds: str, r: dict[str, Any]) -> list[str]:
    grid = r["grid"]
    layers = list(r["sizes"])
    rows, same = [], []
    for crit, jl in r["jaccard"].items():
        means = {n: jl[n].mean(0) for n in layers}
        counts = {n: jl[f"count:{n}"].mean(0) for n in layers}
        worst = min(float(m.min()) for m in means.values())
        count_worst = min(float(m.min()) for m in counts.values())
        if worst < count_worst - 1e-9:  # the scoring changes the mask, not only the count
            cells = []
            for n in layers:
                m = means[n]
                i = int(np.argmin(m))
                low = int((m < 0.99).sum())
                cells.append(f"{m[i]:.2f} at {_density_label(grid[i])} ({low} below 0.99)")
            rows.append(f"| `{crit}` | " + " | ".join(cells) + " |")
        else:
            same.append(crit)
    L = [f"{_title(ds)}: the criteria whose masks differ beyond the count (mean Jaccard over "
         f"{len(r['seeds'])} seeds; its minimum over the grid, where, and at how many of the {len(grid)} densities "
         "it is below 0.99):", "",
         "| criterion | " + " | ".join(f"`{n}`" for n in layers) + " |", "|---|" + "---|" * len(layers)]
    L += rows + [""]
    if same:
        def low(names: list[str]) -> str:
            v = min((float(r["jaccard"][c][f"count:{n}"].mean(0).min()), n) for c in same for n in names)
            return f"{v[0]:.4f} (`{v[1]}`)"

        L += ["The other criteria differ by the count only (" + ", ".join(f"`{c}`" for c in same)
              + "): their masks under the two protocols have the Jaccard index of ticketlab's masks at the two "
              f"counts, lowest {low(layers[:-1])} in the hidden layers and {low(layers[-1:])} in the output layer "
              "(one weight of the few it keeps at the sparse end).", ""]
    return L


def _protocol_section(per_ds: dict[str, dict[str, Any]], refs: dict[str, dict[str, Any]]) -> list[str]:
    checked = ", ".join(f"{sum(m['rows_checked'] for m in r['miner'])} on `{ds}`" for ds, r in refs.items())
    L = ["## 4. Zhou's conventions (`--protocol reference`) against ticketlab's defaults", "",
         "**Protocol.** For " + ", ".join(f"`{c}`" for c in REF_CRITERIA) + " the sweeps of section 1 are computed "
         "again from the same dense networks (same seeds; seeded training gives the same θ0 and θT) under the "
         "conventions of Zhou et al.'s code, the `supermask` miner's `--protocol reference` (each convention, "
         "ticketlab's default and the reference line it follows: `docs/learned_masks.md`): (1) the sign criteria "
         "score the other sign group 0, where `exact` ranks it below every weight of the named group; (2) each layer "
         "keeps `N − int(N·pp/100)`, `pp = (1 − d)·100` (count rule `truncated_percent`); (3) the output layer is at "
         "`0.9^p` while the hidden layers are at `0.8^p` (the x-axis and the tables give the hidden layers' density); "
         "(4) the biases of the pruned layers take the kept action too (`signed_std`: sign(b0)·std(b0) per layer; "
         "`init`: unchanged; on `mnist5k_zhou` the biases are 0 under every action); (5) weights tied at a score "
         "(the many zeros of (1)) are drawn by the run's seeded selection stream. The kept weights are θ0 "
         "(`init`) or Zhou's signed constant (`signed_std`). The miner is run end to end once per seed and panel, "
         f"`ticketlab.mine(\"supermask\", miner_config={MINER_CHECK_REF})`; the script asserts that its sweep rows "
         f"({checked}) equal the computed ones exactly (kept count, density, validation accuracy and loss, test "
         "accuracy, both target densities) and that it selects the computed argmax. On the command line:", "",
         f"    ticketlab mine --method supermask --model {FIG3_MODEL} --dataset mnist5k --protocol reference "
         "--criterion large_final_diff_sign --weights signed_std --seed 0 -o t.h5", "",
         "![protocols](supermask_protocols.png)", "",
         _protocol_summary(per_ds, refs), "",
         "**Where the masks differ.** " + _count_sentence(refs) + " At one density for every layer, the masks of "
         "the two protocols are compared per layer (Jaccard index |A∩B| / |A∪B|).", ""]
    for ds, r in refs.items():
        L += _jaccard_lines(ds, r)
    L += ["**The scoring alone.** Untrained validation accuracy of the four sign criteria with the reference's "
          "scores and everything else as in section 1 (ticketlab's count, one density for every layer, the "
          "initial biases): the best grid point of each (mean [min–max] over seeds, in %), and reference scores − "
          "exact in points at some densities, paired by seed (mean [min, max]); the last column counts the "
          "densities of the 24 where the mean differs by more than 2 points, and gives their range.", ""]
    for ds, r in refs.items():
        if ds in per_ds:
            L += _score_only_lines(ds, per_ds[ds], r)
    L += ["**All of Zhou's conventions.** The same, under the whole reference protocol: the output layer at "
          "0.9^p (the densities are the hidden layers'), Zhou's count and, with `signed_std`, the biases at "
          "sign(b0)·std(b0). `large_final` scores the same under both protocols, so its row is the effect of the "
          "output-layer rate and the biases (the count adds at most one weight per layer).", ""]
    for ds, r in refs.items():
        if ds not in per_ds:
            continue
        a = per_ds[ds]
        grid = r["grid"]
        idx = _table_idx(grid, REF_TABLE_POWERS)
        L += [f"{_title(ds)}:", "",
              "| criterion, kept | best exact | best reference | " + " | ".join(_density_label(grid[i]) for i in idx)
              + " |", "|---|---:|---:|" + "---:|" * len(idx)]
        big = []
        for crit in REF_CRITERIA:
            for kept in REF_KEPT:
                e, f = a["curves"][crit][kept]["val"], r["curves"][crit][kept]["val"]
                be, bf = int(np.argmax(e.mean(0))), int(np.argmax(f.mean(0)))
                d = 100 * (f - e)
                cells = [f"{d[:, i].mean():+.1f} [{d[:, i].min():+.1f}, {d[:, i].max():+.1f}]" for i in idx]
                L.append(f"| `{crit}`, {kept} | {_mm(e[:, be])} ({_density_label(grid[be])}) | "
                         f"{_mm(f[:, bf])} ({_density_label(grid[bf])}) | " + " | ".join(cells) + " |")
                m = d.mean(0)
                j = int(np.argmax(np.abs(m)))
                big.append((abs(m[j]), m[j], crit, kept, grid[j], 100 * (f[:, bf].mean() - e[:, be].mean())))
        L.append("")
        big.sort(reverse=True)
        top = big[0]
        best_gap = max(big, key=lambda b: abs(b[5]))
        within = [b for b in big if b[0] < 2.0]
        L += [f"On {_title(ds)} the largest mean difference is {top[1]:+.1f} points (`{top[2]}`, {top[3]}, at "
              f"{_density_label(top[4])}); the best grid points differ most for `{best_gap[2]}`, {best_gap[3]} "
              f"({best_gap[5]:+.1f} points); {len(within)} of the {len(big)} criterion × kept curves stay within 2 "
              "points of each other at every density (a validation image is "
              f"{100 / a['dense']['val_size']:.1f} points).", ""]
    return L


def _protocol_summary(per_ds: dict[str, dict[str, Any]], refs: dict[str, dict[str, Any]]) -> str:
    """The section's findings in numbers: the scoring's effect on magnitude_increase_same_sign at the
    densest point, and the output-layer rate's on large_final (scored alike under both protocols)."""
    first, rate, best, chance, total = [], [], [], [], 0
    for ds, r in refs.items():
        if ds not in per_ds:
            continue
        a = per_ds[ds]
        for kept in REF_KEPT:
            v = a["curves"]["magnitude_increase_same_sign"][kept]["val"].mean(0)
            best.append(_density_label(r["grid"][int(np.argmax(v))]))
            d = 100 * (r["score_only"]["magnitude_increase_same_sign"][kept][:, 0]
                       - a["curves"]["magnitude_increase_same_sign"][kept]["val"][:, 0])
            first.append(f"{d.mean():+.1f} [{d.min():+.1f}, {d.max():+.1f}] on `{ds}` ({kept})")
        d = 100 * (r["curves"]["large_final"]["init"]["val"] - a["curves"]["large_final"]["init"]["val"])
        j = int(np.argmax(d.mean(0)))
        rate.append(f"{d.mean(0)[j]:+.1f} points at {_density_label(r['grid'][j])} on `{ds}`")
        for crit in ("large_final_diff_sign", "magnitude_increase_diff_sign"):
            low = [(a["curves"][crit][k]["val"].mean(0) < 0.2) & (r["curves"][crit][k]["val"].mean(0) < 0.2)
                   for k in REF_KEPT]
            chance.append(int(np.sum(low)))
            total += sum(len(x) for x in low)
    grid = next(iter(refs.values()))["grid"]
    return ("**In short.** The scoring matters where the issue found it: with the reference's scores and nothing "
            f"else changed, `magnitude_increase_same_sign` at {_density_label(grid[0])}, the densest grid point, "
            "changes by " + "; ".join(first) + " points (seeds paired, mean [min, max]); section 1's best point "
            "for this criterion is at " + ", ".join(best) + " in the same order. The output layer's 0.9^p on its "
            "own: `large_final` is scored alike under both protocols and with kept `init` its biases do not change, "
            "so its reference curve differs by the rate and the count only; it gains up to " + "; ".join(rate)
            + ", where the output layer keeps more weights than the hidden ones. The two diff-sign criteria, whose "
            "masks differ most (Jaccard below), stay below 20 % mean validation accuracy under both protocols at "
            f"{sum(chance)} of their {total} panel × kept × density points.")


def _score_only_lines(ds: str, a: dict[str, Any], r: dict[str, Any]) -> list[str]:
    grid = r["grid"]
    idx = _table_idx(grid, REF_TABLE_POWERS)
    big: list[tuple[Any, ...]] = []
    L = [f"{_title(ds)}, reference scores only:", "",
         "| criterion, kept | best exact | best reference scores | " + " | ".join(_density_label(grid[i]) for i in idx)
         + " | densities > 2 points apart |", "|---|---:|---:|" + "---:|" * (len(idx) + 1)]
    for crit, per in r["score_only"].items():
        for kept, f in per.items():
            e = a["curves"][crit][kept]["val"]
            be, bf = int(np.argmax(e.mean(0))), int(np.argmax(f.mean(0)))
            d = 100 * (f - e)
            cells = [f"{d[:, i].mean():+.1f} [{d[:, i].min():+.1f}, {d[:, i].max():+.1f}]" for i in idx]
            apart = np.flatnonzero(np.abs(d.mean(0)) > 2.0)
            where = (f"{len(apart)}: {_density_label(grid[apart].max())}–{_density_label(grid[apart].min())}"
                     if len(apart) else "0")
            L.append(f"| `{crit}`, {kept} | {_mm(e[:, be])} ({_density_label(grid[be])}) | "
                     f"{_mm(f[:, bf])} ({_density_label(grid[bf])}) | " + " | ".join(cells) + f" | {where} |")
            m = d.mean(0)
            j = int(np.argmax(np.abs(m)))
            big.append((abs(m[j]), m[j], crit, kept, grid[j], e[:, be].mean(), f[:, bf].mean(), grid[be], grid[bf]))
    L.append("")
    big.sort(key=lambda b: b[0], reverse=True)
    top = big[0]
    mis = [b for b in big if b[2] == "magnitude_increase_same_sign"]
    L += [f"The reference scoring moves the curves by at most {top[1]:+.1f} points on average (`{top[2]}`, {top[3]}, at "
          f"{_density_label(top[4])}). For `magnitude_increase_same_sign` the best grid point goes from "
          + " and ".join(f"{100 * b[5]:.1f} % at {_density_label(b[7])} to {100 * b[6]:.1f} % at "
                         f"{_density_label(b[8])} ({b[3]})" for b in mis) + ".", ""]
    return L


# ----------------------------------------------------------------------------- recipe report
def _plot_recipe(recipes: list[dict[str, Any]], baselines: dict[tuple[int, int], list[dict[str, Any]]],
                 path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12.5, 4.4))
    for i, r in enumerate(recipes):
        t = [row["threshold"] for row in r["sweep"]]
        v = [row["val_accuracy"] for row in r["sweep"]]
        ax1.plot(t, v, color=f"C{i % 10}", lw=1, alpha=0.8, label=f"seed {r['config']['seed']}")
        ax1.plot(r["chosen"]["threshold"], r["chosen"]["val_accuracy"], "o", color=f"C{i % 10}", ms=5)
    ax3 = ax1.twinx()
    dens = np.array([[row["density"] for row in r["sweep"]] for r in recipes])
    ax3.plot([row["threshold"] for row in recipes[0]["sweep"]], dens.mean(0) * 100, "k--", lw=1.2)
    ax3.set_ylabel("density (%), dashed: mean over seeds")
    ax1.set_xlabel("threshold t (keep θ0 where sign(θ0)·θT ≥ t)")
    ax1.set_ylabel("untrained validation accuracy")
    ax1.set_title("seed recipe: threshold sweep (dots: chosen on validation)", fontsize=10)
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=7, ncol=2)
    for (h1, h2), rows in sorted(baselines.items()):
        w = rows[0]["weights"]
        acc = np.array([r["test_accuracy"] for r in rows])
        ax2.errorbar(w, acc.mean(), yerr=_spread(acc), fmt="s", color="C0", ms=4)
        ax2.annotate(f"{h1}-{h2}", (w, acc.mean()), fontsize=7, xytext=(3, -9), textcoords="offset points")
    kept = np.array([r["kept"] for r in recipes])
    tacc = np.array([r["trained"]["test_accuracy"] for r in recipes])
    ax2.errorbar(kept.mean(), tacc.mean(), xerr=_spread(kept), yerr=_spread(tacc), fmt="o", color="C3", ms=6,
                 label="supermask ticket, trained 5,000 its")
    dacc = np.array([r["dense"]["early_stop_test_accuracy"] for r in recipes])
    ax2.errorbar(recipes[0]["total"], dacc.mean(), yerr=_spread(dacc), fmt="D", color="C2", ms=6, label="dense 200-30 (early stop)")
    ax2.plot([], [], "s", color="C0", label="dense h1-h2 baseline, 5,000 its")
    ax2.set_xscale("log")
    ax2.set_xlabel("weights (log)")
    ax2.set_ylabel("test accuracy")
    ax2.set_title("mlp_200_30 / mnist5k: ticket vs. layer-size baseline (min–max bars)", fontsize=10)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    _save(fig, path)


def _recipe_section(recipes: list[dict[str, Any]], baselines: dict[tuple[int, int], list[dict[str, Any]]],
                    recipe_seeds: list[int], baseline_seeds: list[int]) -> list[str]:
    L = ["## 2. The seed recipe end to end (mlp_200_30 / mnist5k)", ""]
    thr = ", ".join(f"{t:g}" for t in THRESHOLDS)
    L += [
        "**Protocol.** For each seed: (1) `mlp_200_30` (784-200-30-10, ReLU, PyTorch's default init) is trained "
        "densely for 20,000 iterations, Adam lr 0.0012, batch 60, validation loss every 100 iterations; (2) θT = "
        "the weights at the minimum validation loss (`--final-weights early_stop`: kept during the one training "
        "run, which ticketlab's seeded training makes equal to retraining from θ0 to that iteration); (3) for "
        f"every threshold t in {{{thr}}} (raw weights, no `--normalize`, one global threshold) the mask "
        "sign(θ0)·θT ≥ t with the kept weights at θ0 is evaluated untrained on the validation split; (4) the "
        "point of highest validation accuracy is chosen; (5, 6) that mask, its zeros frozen, is trained from θ0 "
        "(biases at their initial values) for 5,000 iterations with the same optimizer. Steps 1-4 are one call of "
        "the miner; the script asserts that `ticketlab.evaluate` of the stored ticket gives the chosen point's "
        "validation accuracy. Seeds " + ", ".join(map(str, sorted(r["config"]["seed"] for r in recipes))) + ".",
        "",
        "Steps 1-4 on the command line:",
        "",
        "    ticketlab mine --method supermask --model mlp_200_30 --dataset mnist5k --criterion "
        "large_final_same_sign \\",
        "        --final-weights early_stop --thresholds " + ",".join(f"{t:g}" for t in THRESHOLDS) + " \\",
        "        --train-option iterations=20000 --train-option eval_every=100 --seed 0 -o recipe_s0.h5",
        "",
        "![recipe](supermask_recipe.png)",
        "",
        "| seed | dense early stop (it.) | dense test (early stop) | chosen t | density | fc1 / fc2 / fc3 density "
        "| untrained val | untrained test | trained val | trained test |",
        "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in sorted(recipes, key=lambda r: r["config"]["seed"]):
        c, t, d = r["chosen"], r["trained"], r["dense"]
        ld = " / ".join(f"{100 * v:.1f}" for v in r["layer_density"].values())
        L.append(f"| {r['config']['seed']} | {d['early_stop_iteration']:,} | {d['early_stop_test_accuracy']:.3f} | "
                 f"{c['threshold']:g} | {_density_label(c['density'])} | {ld} % | {c['val_accuracy']:.3f} | "
                 f"{c['test_accuracy']:.3f} | {t['val_accuracy']:.3f} | {t['test_accuracy']:.3f} |")
    before = np.array([r["chosen"]["val_accuracy"] for r in recipes])
    after = np.array([r["trained"]["val_accuracy"] for r in recipes])
    after_test = np.array([r["trained"]["test_accuracy"] for r in recipes])
    dens = np.array([r["chosen"]["density"] for r in recipes])
    stops = np.array([r["dense"]["early_stop_iteration"] for r in recipes])
    dense_val = np.array([r["dense"]["val_accuracy"] for r in recipes])
    L += ["",
          f"**Summary over {len(recipes)} seeds (mean ± sd).** The dense network's validation loss is lowest at "
          f"iteration {_msd(stops, 0)} of 20,000 (so θT is an early, little-trained network; its final validation "
          f"accuracy after 20,000 iterations is {_msd(dense_val)}). The chosen supermask keeps "
          f"{_pct(dens.mean())} of the weights (range {_pct(dens.min())}–{_pct(dens.max())}) and reaches "
          f"untrained validation accuracy **{_msd(before)}**; after 5,000 iterations of training it reaches "
          f"**{_msd(after)}** (test {_msd(after_test)}). The seed reports {SEED_BEFORE[0]:.3f} ± {SEED_BEFORE[1]:.3f} "
          f"before and {SEED_AFTER[0]:.3f} ± {SEED_AFTER[1]:.3f} after, on full MNIST: "
          + _seed_comparison(before, after, dense_val),
          ""]
    L += _baseline_table(recipes, baselines, baseline_seeds)
    return L


def _seed_comparison(before: np.ndarray, after: np.ndarray, dense_val: np.ndarray) -> str:
    parts = []
    gap = before.mean() - SEED_BEFORE[0]
    if abs(gap) > 3 * max(SEED_BEFORE[1], before.std(ddof=1) if len(before) > 1 else 0):
        parts.append(f"before training ours is {100 * gap:+.1f} points from the seed's, far outside both spreads "
                     "(the seed's chosen supermasks were at chance level, 10 classes; ours are not)"
                     if before.mean() > 0.2 else
                     f"before training ours is {100 * gap:+.1f} points from the seed's")
    else:
        parts.append(f"before training ours agrees with the seed's within the spreads ({100 * gap:+.1f} points)")
    gap_a = after.mean() - SEED_AFTER[0]
    parts.append(f"after training ours is {100 * gap_a:+.1f} points from the seed's")
    if dense_val.mean() < SEED_AFTER[0]:
        parts.append(f"the dense 200-30 network on this subset reaches only {dense_val.mean():.3f} validation "
                     "accuracy itself (3,500 training images against MNIST's 55,000-60,000), so the seed's "
                     "0.977 is out of reach of any network trained here")
    return "; ".join(parts) + "."


def _baseline_table(recipes: list[dict[str, Any]], baselines: dict[tuple[int, int], list[dict[str, Any]]],
                    baseline_seeds: list[int]) -> list[str]:
    kept = np.array([r["kept"] for r in recipes])
    L = ["**The ticket against the dense net and the layer-size baseline.** Weights = the prunable weights "
         "(biases not counted). Every row is trained with Adam 0.0012, batch 60; the baselines and the ticket for "
         "5,000 iterations, the dense 200-30 net for 20,000 (its accuracy at the early-stopping iteration and at the "
         "end). Accuracy at the end of training unless marked; mean ± sd over the seeds shown"
         + (f" (baselines: {len(baseline_seeds)} seeds, {', '.join(map(str, baseline_seeds))}, to fit the time "
            "budget)" if len(baseline_seeds) < len(recipes) else "") + ".", "",
         "| network | weights | seeds | val accuracy | test accuracy | test at early stop |",
         "|---|---:|---:|---:|---:|---:|"]
    tr = [r["trained"] for r in recipes]
    L.append(f"| supermask ticket (chosen mask, 5,000 its) | {kept.mean():,.0f} ± {kept.std(ddof=1) if len(kept) > 1 else 0:,.0f} "
             f"| {len(recipes)} | {_msd([t['val_accuracy'] for t in tr])} | {_msd([t['test_accuracy'] for t in tr])} "
             f"| {_msd([t['early_stop_test_accuracy'] for t in tr])} |")
    de = [r["dense"] for r in recipes]
    L.append(f"| dense 784-200-30-10 (20,000 its) | {recipes[0]['total']:,} | {len(recipes)} | "
             f"{_msd([d['val_accuracy'] for d in de])} | {_msd([d['test_accuracy'] for d in de])} | "
             f"{_msd([d['early_stop_test_accuracy'] for d in de])} |")
    rows = []
    for (h1, h2), rs in sorted(baselines.items()):
        rows.append((rs[0]["weights"], h1, h2, rs))
        L.append(f"| dense 784-{h1}-{h2}-10 (5,000 its) | {rs[0]['weights']:,} | {len(rs)} | "
                 f"{_msd([r['val_accuracy'] for r in rs])} | {_msd([r['test_accuracy'] for r in rs])} | "
                 f"{_msd([r['early_stop_test_accuracy'] for r in rs])} |")
    L.append("")
    if rows:
        t_test = np.mean([t["test_accuracy"] for t in tr])
        closest = min(rows, key=lambda r: abs(math.log(r[0] / kept.mean())))
        best = max(rows, key=lambda r: np.mean([x["test_accuracy"] for x in r[3]]))
        c_test = np.mean([x["test_accuracy"] for x in closest[3]])
        b_test = np.mean([x["test_accuracy"] for x in best[3]])
        beaten = sum(np.mean([x["test_accuracy"] for x in r[3]]) < t_test for r in rows)
        L += [f"The trained ticket ({kept.mean():,.0f} weights, test {t_test:.3f}) against the baseline of "
              f"closest size, 784-{closest[1]}-{closest[2]}-10 ({closest[0]:,} weights, test {c_test:.3f}): "
              f"{100 * (t_test - c_test):+.1f} points; the best baseline is 784-{best[1]}-{best[2]}-10 "
              f"({best[0]:,} weights, test {b_test:.3f}); the ticket's mean test accuracy is above "
              f"{beaten} of the {len(rows)} baselines'."]
        common = [r for r in recipes if r["config"]["seed"] in {x["config"]["seed"] for x in closest[3]}]
        if common and len(common) < len(recipes):
            by_seed = {x["config"]["seed"]: x["test_accuracy"] for x in closest[3]}
            diff = np.array([r["trained"]["test_accuracy"] - by_seed[r["config"]["seed"]] for r in common])
            L[-1] += (f" The data split depends on the seed, so on the baseline seeds alone "
                      f"({', '.join(str(r['config']['seed']) for r in common)}) the ticket minus that baseline is "
                      f"{100 * diff.mean():+.1f} points (per seed {', '.join(f'{100 * d:+.1f}' for d in diff)}).")
        dense_test = np.mean([r["dense"]["test_accuracy"] for r in recipes])
        L[-1] += (f" Against its own dense 200-30 network (test {dense_test:.3f} after 20,000 iterations) the "
                  f"ticket is {100 * (t_test - dense_test):+.1f} points with {100 * kept.mean() / recipes[0]['total']:.0f} % "
                  "of its weights.")
        L.append("")
    return L


# ----------------------------------------------------------------------------- the page
def report(cache: Path, fig3_seeds: list[int], recipe_seeds: list[int], baseline_seeds: list[int]) -> None:
    """Rewrite docs/results/supermask.md and its PNGs from the cache (missing runs are listed)."""
    from ticketlab.atomic import atomic_write_text

    missing: list[str] = []
    seconds = cpu = 0.0

    def panels(part: str, arrays: Any) -> dict[str, dict[str, Any]]:
        """Every panel's finished seeds of job kind ``part``, as ``arrays`` makes them."""
        nonlocal seconds, cpu
        out: dict[str, dict[str, Any]] = {}
        for ds in FIG3_PANELS:
            found = []
            for s in fig3_seeds:
                r = _load(cache, _job_config(part, panel=ds, seed=s))
                if r is None:
                    missing.append(f"{part} {ds} s{s}")
                else:
                    found.append(r)
            if found:
                out[ds] = arrays(found)
                seconds += out[ds]["seconds"]
                cpu += out[ds]["cpu_seconds"]
        return out

    per_ds = panels("fig3", _fig3_arrays)
    refs = panels("reference", _ref_arrays)
    recipes = []
    for s in recipe_seeds:
        r = _load(cache, _job_config("recipe", seed=s))
        if r is None:
            missing.append(f"recipe s{s}")
        else:
            recipes.append(r)
            seconds += r["seconds"]
            cpu += r.get("cpu_seconds", math.nan)
    baselines: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for h in BASELINE_HIDDEN:
        for s in baseline_seeds:
            r = _load(cache, _job_config("baseline", hidden=list(h), seed=s))
            if r is None:
                missing.append(f"baseline {h[0]}x{h[1]} s{s}")
            else:
                baselines.setdefault(h, []).append(r)
                seconds += r["seconds"]
                cpu += r.get("cpu_seconds", math.nan)

    L = ["# Supermasks: Zhou et al.'s criteria untrained, and the validation-selected seed recipe", "",
         "Issue 10. Zhou, Lan, Liu & Yosinski 2019, \"Deconstructing Lottery Tickets: Zeros, Signs, and the "
         "Supermask\" (NeurIPS), with ticketlab's `supermask` miner, on CPU. This page and its plots are "
         "generated, and regenerated, by one command (from the repository root):", "",
         f"    {COMMAND}" + (f" --fig3-seeds {','.join(map(str, fig3_seeds))}" if fig3_seeds != [0, 1, 2] else ""), "",
         "It runs whatever is missing into `out/supermask_study/` (one JSON file per job, named by a hash of the "
         "job's configuration; finished jobs are skipped), then rewrites this whole file and "
         "`supermask_fig3.png`, `supermask_sign.png`, `supermask_recipe.png`, `supermask_protocols.png`; edit the "
         "script, not this page. "
         "`--report-only` redraws from the cache. "
         f"The jobs took {seconds / 60:.1f} minutes of wall time together"
         + ("" if math.isnan(cpu) else f" ({cpu / 60:.1f} minutes of CPU time)")
         + " with 1 torch thread, 1 job at a time, on a shared 2-core x86 machine.", ""]
    if missing:
        L += ["**Missing runs:** " + ", ".join(missing) + ".", ""]
    if per_ds:
        L += _fig3_section(per_ds)
        _plot_fig3(per_ds, DOC.parent / "supermask_fig3.png")
    if recipes:
        L += _recipe_section(recipes, baselines, recipe_seeds, baseline_seeds)
        _plot_recipe(recipes, baselines, DOC.parent / "supermask_recipe.png")
    if per_ds:
        L += _sign_section(per_ds)
        _plot_sign(per_ds, DOC.parent / "supermask_sign.png")
    if refs and all(r["seeds"] == per_ds[ds]["seeds"] for ds, r in refs.items() if ds in per_ds):
        L += _protocol_section(per_ds, refs)
        _plot_protocols(per_ds, refs, DOC.parent / "supermask_protocols.png")
    atomic_write_text(DOC, "\n".join(L).rstrip() + "\n")


def _seeds(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", action="append", choices=("fig3", "recipe", "baseline", "reference"),
                    help="part to run (default: all)")
    ap.add_argument("--fig3-seeds", default="0,1,2", help="seeds of the Fig. 3 analogue (default 0,1,2)")
    ap.add_argument("--recipe-seeds", default="0,1,2,3,4,5,6,7,8,9", help="seeds of the recipe (default 0-9)")
    ap.add_argument("--baseline-seeds", default="0,1,2", help="seeds of the layer-size baseline (default 0,1,2)")
    ap.add_argument("--jobs", type=int, default=1, help="jobs in parallel, one thread each (default 1)")
    ap.add_argument("--cache", type=Path, default=ROOT / "out" / "supermask_study", help="where finished jobs are kept")
    ap.add_argument("--report-only", action="store_true", help="only rewrite the page and plots from the cache")
    args = ap.parse_args(argv)
    parts = args.part or ["fig3", "baseline", "recipe", "reference"]
    fig3_seeds, recipe_seeds, baseline_seeds = (_seeds(args.fig3_seeds), _seeds(args.recipe_seeds),
                                                _seeds(args.baseline_seeds))
    args.cache.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        started = time.perf_counter()
        todo = [(c, str(job_path(args.cache, c))) for c in all_jobs(parts, fig3_seeds, recipe_seeds, baseline_seeds)
                if not job_path(args.cache, c).exists()]
        print(f"{len(todo)} jobs to do", file=sys.stderr)
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pool.submit(_run, job): job for job in todo}
            for fut in as_completed(futures):
                path, seconds = fut.result()
                print(f"done {Path(path).relative_to(args.cache)} in {seconds:.0f} s "
                      f"({(time.perf_counter() - started) / 60:.1f} min so far)", file=sys.stderr, flush=True)
    report(args.cache, fig3_seeds, recipe_seeds, baseline_seeds)


if __name__ == "__main__":
    main()
