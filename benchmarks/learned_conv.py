"""Learned masks on a batch-norm-free conv net (conv4/digits): untrained accuracy, and fine-tuning.

(i) **Untrained accuracy.** ``mine(method, model="conv4", dataset="digits", density=d, seed=s,
train_epochs=E, miner_config={"weights": w, ...})`` for the three learned-mask miners, with the
frozen weights ``signed_constant`` (``sign(w0) * sqrt(2 / fan_in)``) and ``scaled_signed_constant``
(the same divided by ``sqrt(d)``, edge-popup's ``scale_fan``). The table gives the untrained test
accuracy of the exact-density ticket (the history's ``round`` row), that of the method's own
mask (``popup`` / ``gem`` / ``supermask`` row) and the run's wall time. Gem-Miner runs with
``finetune=False`` here (its fine-tuning is part (ii)). Chance is 0.10 (10 balanced classes).

(ii) **Fine-tuning from one mask.** For each model (conv4: no batch norm; lenet_300_100), one
``gem_miner`` ticket (no fine-tuning) is trained with ``ticketlab.train`` from its treated initial
weights under several configs: Gem-Miner's fine-tuning before this change (SGD lr 0.01, momentum
0.9, weight decay 1e-4, x0.1 at 53 % and 80 % of the iterations, batch 128), the same schedule
with SGD lr 0.1 or Adam (lr 3e-4 and 1e-3), and the model's own ``default_train_config``. The
table gives the final test accuracy and the wall time.

Every run uses one thread (``torch.set_num_threads(1)``, pinned below), seed 0 unless
``--seeds`` says otherwise, the CPU.

Measured on the shared 2-core machine (seed 0, 20 epochs; ticket / own-rule untrained test accuracy):
edge_popup 0.05 signed_constant 0.097, scaled 0.797 (10 s); 0.2 scaled 0.905; gem_miner 0.5
signed_constant 0.705 / 0.721, scaled 0.916 / 0.972, 0.2 scaled 0.103 (Gem-Miner's forward starts at
the gem density ~0.5, where weights scaled for 0.2 make the first epoch's loss ~80, and its freezing
events then end at chance); supermask_learned 0.5 scaled 0.206 at its default lr 100, 0.334 at lr 1000
(its Bernoulli forward runs at ~0.5 throughout). Part (i) 89 s. Fine-tuning (conv4 / lenet_300_100):
SGD 0.01 step 0.100 / 0.691, SGD 0.1 step 0.103 / 0.961, Adam 3e-4 step 0.582 / 0.616, Adam 1e-3 step
0.836 / 0.844, the model's own config 0.908 / 0.964. Part (ii) 116 s.

Usage:
    python benchmarks/learned_conv.py [--part untrained|finetune|all] [--seeds 0] [--epochs 20]
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import torch

torch.set_num_threads(1)  # pinned: the numbers and times below are one-thread numbers

import ticketlab  # noqa: E402
from ticketlab.data import load_dataset  # noqa: E402
from ticketlab.training import TrainConfig, default_train_config, total_iterations  # noqa: E402

#: (method, weights, density, extra miner options) of part (i); score epochs from --epochs.
UNTRAINED = [
    ("edge_popup", "signed_constant", 0.05, {}),
    ("edge_popup", "scaled_signed_constant", 0.05, {}),
    ("edge_popup", "scaled_signed_constant", 0.2, {}),
    ("gem_miner", "signed_constant", 0.5, {}),
    ("gem_miner", "scaled_signed_constant", 0.5, {}),
    ("gem_miner", "scaled_signed_constant", 0.2, {}),  # the dense start (gem density ~0.5) blows up: chance
    ("supermask_learned", "scaled_signed_constant", 0.5, {}),
    ("supermask_learned", "scaled_signed_constant", 0.5, {"score_lr": 1000.0}),
]

OWN_STAGE = {"edge_popup": "popup", "gem_miner": "gem", "supermask_learned": "supermask"}


def untrained(seeds: list[int], epochs: int) -> None:
    print(f"(i) untrained test accuracy, conv4/digits, {epochs} score epochs, 1 thread")
    print(f"{'method':18s} {'weights':23s} {'density':>7s} {'seed':>4s} {'options':18s} "
          f"{'ticket':>6s} {'own':>6s} {'seconds':>7s}")
    for method, weights, density, extra in UNTRAINED:
        for seed in seeds:
            options: dict[str, Any] = {"weights": weights, **extra}
            if method == "gem_miner":
                options["finetune"] = False
            start = time.perf_counter()
            t = ticketlab.mine(method, model="conv4", dataset="digits", density=density, seed=seed,
                               train_epochs=epochs, miner_config=options, device="cpu", omit_weights=True)
            seconds = time.perf_counter() - start
            rnd = next(r for r in t.history if r.get("stage") == "round")
            own = next(r for r in t.history if r.get("stage") == OWN_STAGE[method])
            shown = ",".join(f"{k}={v}" for k, v in extra.items()) or "-"
            print(f"{method:18s} {weights:23s} {density:7.2f} {seed:4d} {shown:18s} "
                  f"{rnd['untrained_test_accuracy']:6.3f} {own['untrained_test_accuracy']:6.3f} {seconds:7.1f}",
                  flush=True)


def finetune_candidates(model: str, epochs: int) -> dict[str, dict[str, Any]]:
    """Full TrainConfig fields of every candidate (``train_options`` replace all of them)."""
    data = load_dataset("digits", seed=0)
    base = TrainConfig(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4, batch_size=128, epochs=epochs)
    total = total_iterations(base, data)
    step = {"schedule": "step", "milestones": tuple(sorted({max(1, math.floor(f * total)) for f in (0.53, 0.8)}))}
    sgd = {**base.to_dict(), **step}
    adam = {**sgd, "optimizer": "adam", "momentum": 0.0}
    own = default_train_config(model, "digits").to_dict()
    return {
        "sgd 0.01 step (before)": sgd,
        "sgd 0.1 step": {**sgd, "lr": 0.1},
        "adam 3e-4 step": {**adam, "lr": 3e-4},
        "adam 1e-3 step": {**adam, "lr": 1e-3},
        f"model default ({own['optimizer']} {own['lr']:g}, batch {own['batch_size']})": {**own, "epochs": epochs,
                                                                                          "iterations": None},
    }


def finetune(seeds: list[int], epochs: int, density: float) -> None:
    print(f"\n(ii) fine-tuning one gem_miner ticket (density {density}, {epochs} score epochs, default weights), "
          f"{epochs} epochs, 1 thread")
    print(f"{'model':14s} {'seed':>4s} {'config':40s} {'test acc':>8s} {'seconds':>7s}")
    for model in ("conv4", "lenet_300_100"):
        for seed in seeds:
            ticket = ticketlab.mine("gem_miner", model=model, dataset="digits", density=density, seed=seed,
                                    train_epochs=epochs, miner_config={"finetune": False}, device="cpu")
            untrained_acc = next(r for r in ticket.history if r.get("stage") == "round")["untrained_test_accuracy"]
            print(f"{model:14s} {seed:4d} {'(untrained ticket)':40s} {untrained_acc:8.3f} {'':>7s}", flush=True)
            for name, options in finetune_candidates(model, epochs).items():
                start = time.perf_counter()
                trained = ticketlab.train(ticket, train_epochs=epochs, train_options=options, device="cpu")
                seconds = time.perf_counter() - start
                acc = trained.history[-1]["test_accuracy"]
                print(f"{model:14s} {seed:4d} {name:40s} {acc:8.3f} {seconds:7.1f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("untrained", "finetune", "all"), default="all")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds")
    ap.add_argument("--epochs", type=int, default=20, help="score epochs (and fine-tuning epochs)")
    ap.add_argument("--finetune-density", type=float, default=0.1)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.perf_counter()
    if args.part in ("untrained", "all"):
        untrained(seeds, args.epochs)
    if args.part in ("finetune", "all"):
        finetune(seeds, args.epochs, args.finetune_density)
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
