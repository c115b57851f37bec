"""ticketlab's pruning-at-initialization miners against a re-implementation of the reference
scoring loop (issue 15), in one process, at **one torch thread** (``torch.set_num_threads(1)``).

The reference side is written here from Tanaka et al. 2020 (Synaptic-Flow, Algorithm 1) and the
documented behaviour of the authors' pruners, "the obvious way", not copied from their code:

* **SynFlow**, every round: take ``|θ|`` of every parameter and buffer of a float copy of the
  model (the copy is made once, as the reference prunes its model in place, and the signs are
  put back after the round), feed one all-ones input, ``R = sum(output)``, backward, score
  ``|dR/dθ ⊙ θ|`` of the masked weights (a mask multiplies the weight in the forward pass, so
  a pruned weight scores 0), then one ``kthvalue`` threshold over the concatenation of all
  scores: the ``k`` lowest are pruned, and every score tied at the threshold with them.
* **SNIP**: mean cross-entropy of the batch, backward, score ``|g ⊙ θ|``, same threshold.
* **GraSP**: ``g = ∇L(f(x)/T)`` (T = 200) in a first pass, then a second forward pass and
  ``Hg = ∇(g_stopped · ∇L)``; score ``θ ⊙ Hg`` (keep the highest), same threshold.

The reference prunes ``k = int((1 - d) * N)`` weights per round (``rule="reference"`` of the
reference functions below); ticketlab keeps ``keep_count(d, N)`` (round half up). To compare
masks on identical counts the timed reference runs with ``k = N - keep_count(d, N)`` and, in the
rare rounds where scores tie at the threshold, prunes only as many of the tied weights as that
count allows (the last ones, as ticketlab keeps the earliest); the script checks Jaccard >= 0.999
between the two final masks and reports how many rounds had such ties. (One weight more or less
in one round changes much of a 100-round SynFlow mask, so the check needs identical counts.)
ticketlab's ``count_rule="threshold"`` run is also compared with the reference's own ``int((1 - d) * N)`` rule and tie pruning (untimed).

Both sides get the same model, initial weights, batch (the miner's own class-balanced draw) and
counts; they alternate (A, B, A, B, ...) ``--repeat`` times and the script prints the minimum and
median of each and the ratios ticketlab / reference. The ticketlab side is what
``ticketlab.mining.mine`` runs: ``get_miner(...)`` + ``MiningContext`` + the shared
``select_top``. Usage (about 6 minutes on 2 shared cores with the defaults, 12 with both precisions)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pai_reference.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pai_reference.py --methods synflow \\
        --models resnet20 --rounds 20 --precision float64,float32
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
from typing import Callable

import torch
from torch import nn

from bench_pai import SPEC, _context, _random_data  # the same model shape, context and batch as bench_pai.py
from ticketlab.data.base import TensorData
from ticketlab.miners import get_miner
from ticketlab.miners._datadriven import sample_batches
from ticketlab.models import create_model, prunable_parameters
from ticketlab.selection import SelectionBuffers, exponential_schedule, keep_count, select_top

DTYPES = {"float64": torch.float64, "float32": torch.float32}
Masks = dict[str, torch.Tensor]


# ----------------------------------------------------------------------------------------------
# ticketlab side: the miner + the shared selection, as ticketlab.mining.mine runs them


def ticketlab_run(method: str, model: nn.Module, schedule: list[float], precision: str,
                  data: TensorData | None = None, timers: dict[str, float] | None = None,
                  **select_kw) -> Masks:
    """Prepare, then per round score + select_top; ``timers`` gets the score / select seconds."""
    timers = timers if timers is not None else {}
    ctx = _context(model, data)
    miner = get_miner(method)(precision=precision)
    t0 = time.perf_counter()
    miner.prepare(ctx)
    timers["prepare"] = timers.get("prepare", 0.0) + time.perf_counter() - t0
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in ctx.params.items()}
    select_kw.setdefault("buffers", SelectionBuffers())  # mine() reuses one set per run
    for d in schedule:
        t0 = time.perf_counter()
        scores = miner.score(ctx, masks)
        t1 = time.perf_counter()
        masks = select_top(scores, d, masks=masks, **select_kw)
        t2 = time.perf_counter()
        timers["score"] = timers.get("score", 0.0) + t1 - t0
        timers["select"] = timers.get("select", 0.0) + t2 - t1
    miner.finish(ctx)
    return masks


# ----------------------------------------------------------------------------------------------
# reference side: written from the paper and the reference's documented behaviour


def _pruned_count(density: float, n: int, rule: str) -> int:
    """Weights pruned in a round: the reference's ``int((1 - d) N)``, or ticketlab's exact count."""
    return int((1.0 - density) * n) if rule == "reference" else n - keep_count(density, n)


def _threshold_masks(scores: dict[str, torch.Tensor], density: float, rule: str,
                     ties: list[int] | None = None) -> dict[str, torch.Tensor]:
    """One global ``kthvalue`` threshold; scores ``<=`` the threshold are pruned (ties included).
    ``ties`` gets the number of weights pruned beyond ``k`` because they tie at the threshold."""
    flat = torch.cat([s.flatten() for s in scores.values()])
    k = _pruned_count(density, flat.numel(), rule)
    if k < 1:
        return {n: torch.ones_like(s) for n, s in scores.items()}
    threshold = torch.kthvalue(flat, k).values
    extra = int((flat <= threshold).sum()) - k
    if ties is not None:
        ties.append(extra)
    if rule == "exact" and extra > 0:  # identical counts: ticketlab keeps the earliest tied weights
        keep = torch.ones_like(flat)
        keep[flat < threshold] = 0.0
        tied = torch.nonzero(flat == threshold).flatten()
        keep[tied[len(tied) - (k - int((flat < threshold).sum())):]] = 0.0
        out, offset = {}, 0
        for n, sc in scores.items():
            out[n] = keep[offset: offset + sc.numel()].view(sc.shape)
            offset += sc.numel()
        return out
    return {n: torch.where(sc <= threshold, 0.0, 1.0).to(sc.dtype) for n, sc in scores.items()}


def _masked_forward(net: nn.Module, names: list[str], masks: dict[str, torch.Tensor], *inputs):
    """The forward pass with every prunable weight multiplied by its mask (a masked layer)."""
    params = dict(net.named_parameters())
    weights = {n: params[n] * masks[n] for n in names}
    return torch.func.functional_call(net, weights, inputs, strict=False)


def reference_synflow(model: nn.Module, schedule: list[float], dtype: torch.dtype, rule: str,
                      trace: list[float] | None = None, ties: list[int] | None = None) -> Masks:
    """Tanaka et al. 2020, Algorithm 1, per round: linearize, R = 1^T f(1), |dR/dθ ⊙ θ|, threshold."""
    net = copy.deepcopy(model).to(dtype).eval()
    names = list(prunable_parameters(net))
    params = dict(net.named_parameters())
    masks = {n: torch.ones_like(params[n]) for n in names}
    x = torch.ones((1, *SPEC.input_shape), dtype=dtype)
    for density in schedule:
        with torch.no_grad():  # linearize: |.| of the whole state, signs kept to restore it
            signs = {k: torch.sign(v) for k, v in net.state_dict().items() if v.is_floating_point()}
            for k, v in net.state_dict().items():
                if v.is_floating_point():
                    v.abs_()
        net.zero_grad()
        r = _masked_forward(net, names, masks, x).sum()  # R, Tanaka et al. Eq. 2
        if trace is not None:
            trace.append(float(r.detach()))
        r.backward()
        scores = {n: (params[n].grad * params[n]).detach().abs() for n in names}  # Eq. 1
        with torch.no_grad():  # nonlinearize
            for k, v in net.state_dict().items():
                if k in signs:
                    v.mul_(signs[k])
        masks = _threshold_masks(scores, density, rule, ties)
    return {n: m.bool() for n, m in masks.items()}


def _eval_copy(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    return copy.deepcopy(model).to(dtype).eval()


def reference_snip(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], density: float,
                   dtype: torch.dtype, rule: str) -> Masks:
    """Lee et al. 2019, Eq. 6 (unnormalised): |dL/dw ⊙ w| on one batch."""
    net = _eval_copy(model, dtype)
    names = list(prunable_parameters(net))
    params = dict(net.named_parameters())
    x, y = batch
    nn.functional.cross_entropy(net(x), y).backward()
    scores = {n: (params[n].grad * params[n]).detach().abs() for n in names}
    return {n: m.bool() for n, m in _threshold_masks(scores, density, rule).items()}


def reference_grasp(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], density: float,
                    dtype: torch.dtype, rule: str, temperature: float = 200.0) -> Masks:
    """Wang et al. 2020, Eq. 8: pass 1 g = ∇L(f/T); pass 2 Hg = ∇(g_stopped · ∇L); keep top θ ⊙ Hg."""
    net = _eval_copy(model, dtype)
    names = list(prunable_parameters(net))
    params = dict(net.named_parameters())
    weights = [params[n] for n in names]
    x, y = batch
    g = torch.autograd.grad(nn.functional.cross_entropy(net(x) / temperature, y), weights)
    grads = torch.autograd.grad(nn.functional.cross_entropy(net(x) / temperature, y), weights, create_graph=True)
    z = sum((gi.detach() * d).sum() for gi, d in zip(g, grads))
    net.zero_grad()
    z.backward()
    scores = {n: (params[n].detach() * params[n].grad) for n in names}
    return {n: m.bool() for n, m in _threshold_masks(scores, density, rule).items()}


# ----------------------------------------------------------------------------------------------
# timing and reporting


def jaccard(a: Masks, b: Masks) -> float:
    inter = sum(int((a[n] & b[n]).sum()) for n in a)
    union = sum(int((a[n] | b[n]).sum()) for n in a)
    return inter / union if union else 1.0


def alternate(fa: Callable[[], Masks], fb: Callable[[], Masks],
              repeat: int) -> tuple[list[float], list[float], Masks, Masks]:
    """Run A, B, A, B, ... ``repeat`` times each; the times of each and their last masks."""
    ta, tb = [], []
    ma = mb = {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        ma = fa()
        ta.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        mb = fb()
        tb.append(time.perf_counter() - t0)
    return ta, tb, ma, mb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="vgg16,resnet20", help="models for SynFlow (default vgg16,resnet20)")
    ap.add_argument("--methods", default="synflow,snip,grasp", help="miners to time (default synflow,snip,grasp)")
    ap.add_argument("--rounds", type=int, default=100, help="SynFlow rounds (default 100)")
    ap.add_argument("--density", type=float, default=0.01, help="target density (default 0.01)")
    ap.add_argument("--samples", type=int, default=100, help="SNIP/GraSP samples, 10 classes (default 100)")
    ap.add_argument("--repeat", type=int, default=3, help="alternating runs of each side (default 3)")
    ap.add_argument("--precision", default="float64",
                    help="comma-separated scoring dtypes, each run on both sides (default: SynFlow float64; "
                         "SNIP/GraSP always use their float32 default)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    methods = args.methods.split(",")
    precisions = args.precision.split(",")
    print(f"torch {torch.__version__}, Python {platform.python_version()}, CPU, "
          f"torch.set_num_threads(1): {torch.get_num_threads()} thread; density {args.density}; "
          f"{args.repeat} alternating repeats; ratios = ticketlab / reference")
    rows: list[tuple[str, ...]] = []
    synflow_masks: dict[tuple[str, str, str], Masks] = {}

    def report(task: str, model: str, ta: list[float], tb: list[float], jac: float, extra: str = "") -> None:
        rows.append((task, model, f"{min(ta):.2f}", f"{statistics.median(ta):.2f}", f"{min(tb):.2f}",
                     f"{statistics.median(tb):.2f}", f"{min(ta) / min(tb):.2f}x",
                     f"{statistics.median(ta) / statistics.median(tb):.2f}x", f"{jac:.4f}", extra))
        print(" | ".join(rows[-1]), flush=True)

    if "synflow" in methods:
        schedule = exponential_schedule(args.density, args.rounds)
        for name in args.models.split(","):
            model = create_model(name, SPEC, seed=0)
            for prec in precisions:
                timers: dict[str, float] = {}
                ta, tb, ma, mb = alternate(
                    lambda: ticketlab_run("synflow", model, schedule, prec, timers=timers),
                    lambda: reference_synflow(model, schedule, DTYPES[prec], "exact"), args.repeat)
                jac = jaccard(ma, mb)
                synflow_masks[(name, prec, "ticketlab")] = ma
                synflow_masks[(name, prec, "reference")] = mb
                per = args.repeat * args.rounds
                report(f"synflow x{args.rounds} {prec}", name, ta, tb, jac,
                       f"score {timers['score'] / per * 1e3:.1f} ms/round, select {timers['select'] / per * 1e3:.1f} "
                       f"ms/round, prepare {timers['prepare'] / args.repeat * 1e3:.0f} ms")
                if jac < 0.999:
                    print(f"WARNING: masks disagree on identical counts (Jaccard {jac:.4f} < 0.999)")
                mt = ticketlab_run("synflow", model, schedule, prec, count_rule="threshold")
                mr = reference_synflow(model, schedule, DTYPES[prec], "reference")
                synflow_masks[(name, prec, "reference rule")] = mr
                print(f"  {name} {prec}: ticketlab count_rule=threshold vs the reference's int((1-d)N) rule: "
                      f"Jaccard {jaccard(mt, mr):.4f}; exact vs threshold (ticketlab): {jaccard(ma, mt):.4f}")
                trace: list[float] = []
                ties: list[int] = []
                reference_synflow(model, schedule, DTYPES[prec], "exact", trace, ties)
                print(f"  {name} {prec}: R at initialization {trace[0]:.3e}, largest {max(trace):.3e} (float32 max "
                      f"3.4e+38); scores tied at the exact-count threshold in {sum(t > 0 for t in ties)} of "
                      f"{len(ties)} rounds ({sum(ties)} weights the reference's tie rule would prune too)")
            if {"float32", "float64"} <= set(precisions):
                j = jaccard(synflow_masks[(name, "float32", "ticketlab")],
                            synflow_masks[(name, "float64", "ticketlab")])
                t32 = next(r for r in rows if r[0] == f"synflow x{args.rounds} float32" and r[1] == name)
                t64 = next(r for r in rows if r[0] == f"synflow x{args.rounds} float64" and r[1] == name)
                print(f"  {name}: ticketlab float32 (final mask vs ticketlab float64: Jaccard {j:.4f}) / reference "
                      f"float64: {float(t32[2]) / float(t64[4]):.2f}x (min), "
                      f"{float(t32[3]) / float(t64[5]):.2f}x (median)")
            if len(precisions) > 1:
                a, b = precisions[:2]
                line = (f"  {name}: {a} vs {b} final masks, Jaccard: ticketlab "
                        f"{jaccard(synflow_masks[(name, a, 'ticketlab')], synflow_masks[(name, b, 'ticketlab')]):.4f}")
                ra, rb = synflow_masks[(name, a, "reference rule")], synflow_masks[(name, b, "reference rule")]
                line += f", reference with its own int((1-d)N) rule and tie pruning {jaccard(ra, rb):.4f}"
                print(line)

    data_methods = [m for m in ("snip", "grasp") if m in methods]
    if data_methods:
        model = create_model("vgg16", SPEC, seed=0)
        per_class = max(1, args.samples // SPEC.num_classes)
        data = _random_data(per_class)
        for method in data_methods:
            prec = get_miner(method).Config().precision  # the miner's default (float32)
            # the miner's own class-balanced draw (seeded as in _context), so both sides see one batch
            (b,) = sample_batches(data, SPEC, per_class, 1, torch.Generator().manual_seed(0), torch.device("cpu"),
                                  DTYPES[prec])
            batch = (b.inputs[0], b.targets)
            ref = reference_snip if method == "snip" else reference_grasp
            timers = {}
            ta, tb, ma, mb = alternate(
                lambda: ticketlab_run(method, model, [args.density], prec, data, timers),
                lambda: ref(model, batch, args.density, DTYPES[prec], "exact"), args.repeat)
            report(f"{method} {per_class * SPEC.num_classes} samples {prec}", "vgg16", ta, tb, jaccard(ma, mb),
                   f"score {timers['score'] / args.repeat:.3f} s, select {timers['select'] / args.repeat:.3f} s, "
                   f"prepare {timers['prepare'] / args.repeat:.3f} s")

    print("\n| task | model | ticketlab min s | median s | reference min s | median s | ratio min | "
          "ratio median | Jaccard (same counts) | ticketlab breakdown (mean) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
