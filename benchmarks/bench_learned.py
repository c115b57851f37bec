"""Learned-mask miners: score-training step vs dense weight-training step, and Gem-Miner vs IMP end to end.

(i) One step = zero_grad, forward, cross-entropy (+ the method's regularizer), backward, optimizer
step, then the engine's per-step callbacks (Gem-Miner: the [0, 1] clamp and the freezing check),
exactly as ``ticketlab.training.fit`` runs it. The score-training model is built with the real
engine pieces of ``ticketlab.miners._learned`` (each miner's ``init_scores`` / ``make_rule``
registered as a ``torch.nn.utils.parametrize`` parametrization, weights frozen, the optimizer over
the scores from ``make_optimizer`` with the miner's ``score_masks``, its ``regularizer`` and
``callbacks``). The dense step trains the weights of the same model on the same batch with the
same optimizer settings (the miner's score-training config: SGD momentum 0.9, its lr and weight
decay). Random data (lenet_300_100: 1x28x28, conv4: 3x32x32, 10 classes). Dense and score blocks
alternate (order flipped every repeat) in one process; the per-repeat ratio score / dense is
reported as min and median. Gem-Miner's freezing events are placed beyond the timed steps (they
run once every ``freeze_every`` epochs; the per-step check itself is timed).

(ii) ``mine("gem_miner", model="conv4", dataset="digits", density=d, train_epochs=E)`` (score
training + fine-tuning) against ``mine("imp", ..., density=d, rounds=R, reset rewind:K,
train_epochs=E)`` (R rounds at about 20 % each), one thread, wall time of each and the ratio.

Usage:
    python benchmarks/bench_learned.py [--threads 1] [--repeats 9] [--steps N] [--batch 128]
        [--models lenet_300_100,conv4] [--e2e-density 0.2] [--e2e-epochs 10] [--skip-e2e]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from ticketlab.data.base import DataSpec
from ticketlab.miners import get_miner
from ticketlab.miners._learned import _module_and_attr
from ticketlab.miners.base import MiningContext
from ticketlab.models import create_model, prunable_parameters
from ticketlab.training import StepInfo, make_optimizer
from ticketlab.weights import apply_treatment_

MINERS = ("gem_miner", "edge_popup", "supermask_learned")
SHAPES = {"lenet_300_100": DataSpec("mnist", "tensor", (1, 28, 28), 10),
          "conv4": DataSpec("cifar10", "tensor", (3, 32, 32), 10)}
DENSITY = 0.05


def score_setup(method: str, model_name: str, spec: DataSpec, density: float = DENSITY, seed: int = 0
                ) -> tuple[torch.nn.Module, Any, Callable[[], torch.Tensor] | None, list[Callable[[Any], None]], Any]:
    """A model parametrized for ``method``'s score training, as ``LearnedMaskMiner.prepare`` builds
    it: (model, optimizer over the scores, regularizer, per-step callbacks, score-training config)."""
    miner = get_miner(method)()
    model = create_model(model_name, spec, seed=seed)
    params = prunable_parameters(model)
    ctx = MiningContext(model=model, params=params, spec=spec, data=None, device=torch.device("cpu"), seed=seed,
                        generator=torch.Generator().manual_seed(seed), schedule=[density],
                        scope=miner.scopes[0], tie_generator=torch.Generator().manual_seed(seed + 1))
    apply_treatment_(params, miner.weight_treatment(), miner.treatment_density(ctx))  # as mine() does
    if method == "supermask_learned":  # what its prepare() sets before the shared engine runs
        miner._generator = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.requires_grad_(False)
    rules = {}
    for name, p in params.items():
        rule = miner.make_rule(ctx, name, miner.init_scores(ctx, name, p.detach()).to(p.dtype), density)
        module, attr = _module_and_attr(model, name)
        parametrize.register_parametrization(module, attr, rule)
        rules[name] = rule
    ids = {id(p): n for n, p in model.named_parameters()}
    trainable = {ids[id(r.scores)]: r.scores for r in rules.values()}
    miner.score_names = {name: ids[id(r.scores)] for name, r in rules.items()}
    masks = miner.score_masks(ctx, rules)
    masks = None if masks is None else {miner.score_names[n]: m for n, m in masks.items()}
    config = miner.score_train_config(ctx)
    optimizer = make_optimizer(model, config, masks, trainable=trainable)
    # freezing events every freeze_every epochs of 10**6 steps: never inside the timed steps
    callbacks = miner.callbacks(ctx, rules, density, total_iterations=10**9, per_epoch=10**6)
    return model, optimizer, miner.regularizer(rules), callbacks, config


def dense_setup(model_name: str, spec: DataSpec, config: Any, seed: int = 0) -> tuple[torch.nn.Module, Any]:
    model = create_model(model_name, spec, seed=seed)
    return model, make_optimizer(model, config)


def bench_step(method: str, model_name: str, *, batch: int, repeats: int, steps: int, block_s: float = 0.4
               ) -> dict[str, Any]:
    spec = SHAPES[model_name]
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(batch, *spec.input_shape, generator=g) for _ in range(8)]
    ys = [torch.randint(0, spec.num_classes, (batch,), generator=g) for _ in range(8)]
    s_model, s_opt, reg, callbacks, config = score_setup(method, model_name, spec)
    d_model, d_opt = dense_setup(model_name, spec, config)
    s_model.train()
    d_model.train()
    it = {"score": 0}

    def score_step(i: int) -> None:
        loss = F.cross_entropy(s_model(xs[i % 8]), ys[i % 8])
        if reg is not None:
            loss = loss + reg()
        s_opt.zero_grad(set_to_none=True)
        loss.backward()
        s_opt.step()
        loss = loss.detach()
        it["score"] += 1
        for cb in callbacks:
            cb(StepInfo(it["score"], loss, config.lr, s_model, s_opt))

    def dense_step(i: int) -> None:
        loss = F.cross_entropy(d_model(xs[i % 8]), ys[i % 8])
        d_opt.zero_grad(set_to_none=True)
        loss.backward()
        d_opt.step()

    fns = {"dense": dense_step, "score": score_step}

    def timed(mode: str, n: int) -> float:
        t0 = time.perf_counter()
        for i in range(n):
            fns[mode](i)
        return (time.perf_counter() - t0) / n * 1e3

    for mode in fns:  # warm-up
        timed(mode, 3)
    if steps <= 0:
        steps = max(3, round(block_s * 1e3 / timed("dense", 3)))
    times: dict[str, list[float]] = {"dense": [], "score": []}
    for r in range(repeats):
        for mode in (("dense", "score") if r % 2 == 0 else ("score", "dense")):
            times[mode].append(timed(mode, steps))
    ratios = [s / d for s, d in zip(times["score"], times["dense"])]
    return {"method": method, "model": model_name, "steps": steps, "dense_ms": statistics.median(times["dense"]),
            "score_ms": statistics.median(times["score"]), "min_ratio": min(ratios),
            "median_ratio": statistics.median(ratios)}


def bench_e2e(density: float, epochs: int, rate: float = 0.2, rewind: int = 20, freeze_every: int = 2) -> dict[str, Any]:
    """Gem-Miner (score training + fine-tuning) vs IMP to ``density`` on conv4/digits."""
    from ticketlab.mining import mine

    rounds = max(1, round(math.log(density) / math.log(1 - rate)))
    common = dict(model="conv4", dataset="digits", density=density, seed=0, device="cpu", train_epochs=epochs,
                  omit_weights=True, omit_scores=True)
    t0 = time.perf_counter()
    gem = mine("gem_miner", miner_config={"freeze_every": freeze_every}, **common)
    gem_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    imp = mine("imp", rounds=rounds, miner_config={"reset": f"rewind:{rewind}"}, **common)
    imp_s = time.perf_counter() - t0
    gem_rows = {r["stage"]: r for r in gem.history}
    return {"density": density, "epochs": epochs, "rounds": rounds, "rewind": rewind, "freeze_every": freeze_every,
            "gem_s": gem_s, "gem_mine_s": gem_rows["gem"]["train_seconds"], "imp_s": imp_s,
            "gem_acc": gem_rows["ticket"]["test_accuracy"], "imp_acc": imp.history[-1]["test_accuracy"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--steps", type=int, default=0, help="steps per timed block (default: about 0.4 s worth)")
    ap.add_argument("--batch", type=int, default=128, help="minibatch (default 128, the score-training default)")
    ap.add_argument("--models", default="lenet_300_100,conv4")
    ap.add_argument("--methods", default=",".join(MINERS))
    ap.add_argument("--e2e-density", type=float, default=0.2)
    ap.add_argument("--e2e-epochs", type=int, default=10)
    ap.add_argument("--skip-e2e", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"cpu, torch.get_num_threads() = {torch.get_num_threads()}; torch {torch.__version__}; batch {args.batch}; "
          f"score density {DENSITY}; {args.repeats} interleaved repeats (ratio per repeat)", flush=True)
    print(f"{'model':<14} {'method':<18} {'steps':>5} {'dense ms':>9} {'score ms':>9} {'min ratio':>10} "
          f"{'median ratio':>13} {'<= 1.3x':>8}", flush=True)
    for model_name in args.models.split(","):
        for method in args.methods.split(","):
            r = bench_step(method, model_name, batch=args.batch, repeats=args.repeats, steps=args.steps)
            ok = "yes" if r["median_ratio"] <= 1.3 else "NO"
            print(f"{r['model']:<14} {r['method']:<18} {r['steps']:>5} {r['dense_ms']:>9.3f} {r['score_ms']:>9.3f} "
                  f"{r['min_ratio']:>9.2f}x {r['median_ratio']:>12.2f}x {ok:>8}", flush=True)
    if not args.skip_e2e:
        e = bench_e2e(args.e2e_density, args.e2e_epochs)
        print(f"\nconv4/digits end to end to density {e['density']:g}, {e['epochs']} epochs per training (1 thread):")
        print(f"  gem_miner (freeze_every {e['freeze_every']}; score training + fine-tuning): {e['gem_s']:.1f} s "
              f"(mining {e['gem_mine_s']:.1f} s), fine-tuned test accuracy {e['gem_acc']:.3f}")
        print(f"  imp ({e['rounds']} rounds, rewind:{e['rewind']}, dense run + {e['rounds']} trainings): {e['imp_s']:.1f} s, "
              f"test accuracy {e['imp_acc']:.3f}")
        print(f"  IMP / Gem-Miner wall time: {e['imp_s'] / e['gem_s']:.1f}x "
              f"(IMP / Gem-Miner mining alone: {e['imp_s'] / e['gem_mine_s']:.1f}x)", flush=True)


if __name__ == "__main__":
    main()
