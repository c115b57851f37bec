"""Speed on real data (issue 23 item 4): one epoch on full Fashion-MNIST, ticketlab's ``train``
against a bare PyTorch loop, and what the default evaluation cadence adds.

Data: Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``), read by
``load_dataset("fashion_mnist")`` with no data root: 54,000 training images, so one epoch is 900
steps of batch 60. Models: ``lenet_300_100`` and the convolutional ``lenet5`` (``conv2`` is
registered too, but one epoch of it takes about 150 s at one thread here, 19x lenet5: too slow
for repeats; pass ``--models conv2`` to measure it anyway).

Per model and repeat, in alternating order (flipped every repeat), each from the same initial
weights (``create_model(seed=0)``):

* ``bare``: a plain loop: ``zero_grad``, forward, cross-entropy, backward, ``step``, over the same
  batches in the same order (the permutation ``train`` draws for epoch 0), with the same
  optimizer (``torch.optim.Adam``, fused, at the model's default rate).
* ``train``: ``ticketlab.training.fit`` for one epoch with no evaluation to speak of (the
  validation and test splits cut to one image each; it evaluates once, at the end).
* ``train+eval`` / ``train+eval every``: ``train`` at the model's default cadence on Fashion-MNIST,
  with ``test_eval`` ``stops`` (the default) and ``every``
  (``default_train_config`` gives every LeNet Frankle & Carbin's recipe: every 100 iterations,
  so 9 evaluations of the 6,000 validation and 10,000 test images in the epoch).

Reported: min and median over repeats of the paired ratio train / bare (target: at most 1.1) and
of the evaluation share (train+eval - train) / train+eval (target: at most 25 %), plus the cost
of one validation and one test pass, and the share that evaluating only the validation split at
every point would leave. The bare loop's weights after the epoch are compared with ``train``'s
(``identical`` means bit for bit). One torch thread is pinned (``torch.set_num_threads(1)``), the
CPU time is measured with ``time.perf_counter``; the load average is printed before and after,
since the figures mean little on a busy machine.

Measured on the 2-core development machine, ``--repeats 3 --epochs 2`` (1,800 steps, 18
evaluations), 2026-12-05, after issue 24's merges (load average 2.2 before, 1.1 after): train / bare
1.03x median (lenet_300_100) and 1.01x (lenet5), weights identical; the evaluation share with the
default ``test_eval="stops"`` (the test split only at new validation minima and at the end) is 35 %
(lenet_300_100) and 64 % (lenet5), against 42 % and 68 % with ``test_eval="every"``; the validation
passes alone are 19 % and 44 %: over the 25 % target for both. In the first two epochs most
evaluations are new minima, so "stops" saves little there; a paper-length lenet_300_100 run
(50,000 iterations) reached 20 new minima in its 500 evaluations (the test split then runs 21 times
instead of 500, about 22 % of the run in evaluation). For lenet5 one validation pass (0.63 s) costs about as
much as the 100 training steps between two evaluations (0.81 s): the cadence itself, not the
test split, keeps it over the target.

Usage:
    python benchmarks/bench_real_data.py [--repeats 5] [--models lenet_300_100,lenet5] [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from ticketlab.data import load_dataset
from ticketlab.data.base import TensorData
from ticketlab.data.torchvision_sets import FASHION_MNIST
from ticketlab.errors import DataNotFoundError
from ticketlab.models import create_model
from ticketlab.streams import BATCH_ORDER, seed63  # fit's batch order, so that the bare loop sees the same batches
from ticketlab.training import default_train_config, eval_cadence, evaluate_model, fit

TRAIN_TARGET = 1.1
EVAL_TARGET = 0.25


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bare_epoch(model: torch.nn.Module, data: TensorData, lr: float, batch: int, seed: int, epochs: int = 1) -> float:
    """``epochs`` epochs of a plain PyTorch loop over ``train``'s batches; returns seconds."""
    x, y = data.train
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    model.train()
    start = time.perf_counter()
    for e in range(epochs):
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed63(seed, BATCH_ORDER, e)))
        for b in range(0, len(y), batch):
            idx = perm[b : b + batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return time.perf_counter() - start


def bench_model(name: str, data: TensorData, repeats: int, seed: int, epochs: int = 1) -> dict:
    base = default_train_config(name, "fashion_mnist")
    steps = -(-len(data.train[1]) // base.batch_size) * epochs
    one_epoch = dataclasses.replace(base, iterations=steps, epochs=1, eval_every=None)
    with_eval = dataclasses.replace(base, iterations=steps, epochs=1)  # the default test_eval="stops"
    every = dataclasses.replace(with_eval, test_eval="every")
    cadence = eval_cadence(with_eval, data)
    evaluations = len([i for i in range(1, steps + 1) if i % cadence == 0 or i == steps])
    tiny = TensorData(data.spec, data.train, tuple(t[:1] for t in data.val), tuple(t[:1] for t in data.test))

    def fresh() -> torch.nn.Module:
        return create_model(name, data.spec, seed=seed)

    times: dict[str, list[float]] = {"bare": [], "train": [], "train+eval": [], "train+eval every": []}
    identical = True
    for r in range(repeats):
        order = list(times)
        for kind in order if r % 2 == 0 else order[::-1]:
            model = fresh()
            if kind == "bare":
                times[kind].append(bare_epoch(model, data, base.lr, base.batch_size, seed, epochs))
                bare_state = model.state_dict()
                continue
            cfg, d = {"train": (one_epoch, tiny), "train+eval": (with_eval, data),
                      "train+eval every": (every, data)}[kind]
            start = time.perf_counter()
            fit(model, d, cfg, seed=seed, device="cpu")
            times[kind].append(time.perf_counter() - start)
            if kind == "train":
                train_state = model.state_dict()
        identical = identical and all(torch.equal(bare_state[k], train_state[k]) for k in bare_state)
    model = fresh()
    val_s = min(_timed(lambda: evaluate_model(model, data, "val", batch_size=base.eval_batch_size)) for _ in range(3))
    test_s = min(_timed(lambda: evaluate_model(model, data, "test", batch_size=base.eval_batch_size)) for _ in range(3))
    ratios = [t / b for t, b in zip(times["train"], times["bare"])]
    shares = [(e - t) / e for t, e in zip(times["train"], times["train+eval"])]
    every_shares = [(e - t) / e for t, e in zip(times["train"], times["train+eval every"])]
    train_med = statistics.median(times["train"])
    return {
        "model": name, "steps": steps, "cadence": cadence, "evaluations": evaluations, "times": times,
        "ratios": ratios, "shares": shares, "every_shares": every_shares, "identical": identical, "val_s": val_s, "test_s": test_s,
        "val_only_share": evaluations * val_s / (train_med + evaluations * val_s),
    }


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _mm(values: list[float], fmt: str) -> str:
    return f"{format(min(values), fmt)} / {format(statistics.median(values), fmt)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default="lenet_300_100,lenet5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per timed run (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    folder = FASHION_MNIST.find_system()
    if folder is None:
        print("skipped: Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist")
        return 0
    load_before = _load()
    start = time.perf_counter()
    try:
        data = load_dataset("fashion_mnist", seed=args.seed)
    except DataNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    load_s = time.perf_counter() - start
    sizes = " / ".join(f"{len(s[1]):,}" for s in (data.train, data.val, data.test))
    print(f"Fashion-MNIST from {folder}: train / val / test {sizes}, loaded in {load_s:.2f} s")
    print(f"torch {torch.__version__}, torch.set_num_threads(1) pinned; {args.repeats} repeats, alternating; "
          f"load average (1, 5, 15 min) before: {load_before}")
    results = [bench_model(m, data, args.repeats, args.seed, args.epochs) for m in args.models.split(",")]
    print()
    head = (f"{'model':<14} {'steps':>5} {'bare s':>13} {'train s':>13} {'train/bare':>11} {'same w':>6} "
            f"{'evals':>5} {'train+eval s':>13} {'eval share':>13} {'every: share':>13} {'val s':>6} {'test s':>6} "
            f"{'val-only':>8}")
    print(head)
    print("-" * len(head))
    for r in results:
        t = r["times"]
        print(f"{r['model']:<14} {r['steps']:>5} {_mm(t['bare'], '.2f'):>13} {_mm(t['train'], '.2f'):>13} "
              f"{_mm(r['ratios'], '.2f'):>11} {'yes' if r['identical'] else 'no':>6} "
              f"{r['evaluations']:>5} {_mm(t['train+eval'], '.2f'):>13} "
              f"{_mm([100 * s for s in r['shares']], '.0f') + ' %':>13} "
              f"{_mm([100 * s for s in r['every_shares']], '.0f') + ' %':>13} {r['val_s']:>6.3f} {r['test_s']:>6.3f} "
              f"{100 * r['val_only_share']:>6.0f} %")
    print()
    print("columns: min / median over repeats; train/bare and eval share are paired per repeat. evals: evaluations "
          "in the epoch at the default cadence (every "
          + ", ".join(f"{r['cadence']} for {r['model']}" for r in results)
          + f"; {args.epochs} epoch(s) per run). eval share: the default test_eval=stops (the test split only at new "
          "validation minima and at the end); every: test_eval=every (both splits at every point, the paper's "
          "curves); val s / test s: one pass over the 6,000 / 10,000 images; val-only: the eval share if only the "
          "validation split were evaluated at each point (projected from val s).")
    for r in results:
        ratio, share = statistics.median(r["ratios"]), statistics.median(r["shares"])
        print(f"{r['model']}: train {'within' if ratio <= TRAIN_TARGET else 'over'} {TRAIN_TARGET}x of the bare loop "
              f"(median {ratio:.2f}x); evaluation {100 * share:.0f} % of the run "
              f"({'within' if share <= EVAL_TARGET else 'over'} the {EVAL_TARGET:.0%} target)")
    print(f"load average after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
