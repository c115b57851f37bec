"""Masked vs dense training-step time (ticketlab.training / ticketlab.masking).

One training step = zero_grad, forward, cross-entropy, backward, optimizer step, exactly as in
``ticketlab.training.fit``; the masked step adds ``MaskedOptimizer``'s gradient and weight
masking. Models: lenet_300_100 (batch 60, 784-d inputs) and conv4 (batch 60, 3x32x32), random
data, random masks of the given density, each model's default optimizer
(``default_train_config``). Dense and masked runs alternate (order flipped every repeat) in the
same process; the median over repeats of the mean step time is reported.

Usage:
    python benchmarks/bench_masked_training.py [--repeats 9] [--steps N] [--density 0.2]
        [--device auto] [--models lenet_300_100,conv4] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from ticketlab.data.base import DataSpec
from ticketlab.device import resolve_device
from ticketlab.models import create_model, prunable_parameters
from ticketlab.training import default_train_config, make_optimizer

MODES = ("dense", "masked", "remask")  # remask: masked with always_remask=True
SETUPS = {
    "lenet_300_100": (DataSpec("mnist", "tensor", (1, 28, 28), 10), "mnist"),
    "conv4": (DataSpec("cifar10", "tensor", (3, 32, 32), 10), "cifar10"),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_model(
    name: str, *, density: float, repeats: int, steps: int, batch: int, device: torch.device, block_s: float = 0.5
) -> dict:
    spec, dataset = SETUPS[name]
    config = default_train_config(name, dataset)
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(batch, *spec.input_shape, generator=g).to(device) for _ in range(8)]
    ys = [torch.randint(0, spec.num_classes, (batch,), generator=g).to(device) for _ in range(8)]

    runs = {}
    for mode in MODES:
        model = create_model(name, spec, seed=0).to(device)
        masks = None
        if mode != "dense":
            prunable = prunable_parameters(model)
            masks = {n: (torch.rand(p.shape, generator=g) < density).to(device) for n, p in prunable.items()}
        runs[mode] = (model, make_optimizer(model, config, masks))
        if mode == "remask":
            runs[mode][1].remask = True  # as MaskedOptimizer(..., always_remask=True)

    def step(model, opt, i: int) -> None:
        logits = model(xs[i % 8])
        loss = F.cross_entropy(logits, ys[i % 8])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def timed(mode: str) -> float:
        model, opt = runs[mode]
        _sync(device)
        t0 = time.perf_counter()
        for i in range(steps):
            step(model, opt, i)
        _sync(device)
        return (time.perf_counter() - t0) / steps * 1e3

    for mode in runs:  # warm-up (allocator, kernels, optimizer state)
        for i in range(3):
            step(*runs[mode], i)
    if steps <= 0:  # auto: about `block_s` seconds per timed block, at least 3 steps
        steps = 3
        steps = max(3, round(block_s * 1e3 / timed("dense")))
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for r in range(repeats):
        for mode in MODES if r % 2 == 0 else MODES[::-1]:
            times[mode].append(timed(mode))
    med = {mode: statistics.median(t) for mode, t in times.items()}
    # the masking passes alone: a less noisy view of the overhead
    opt = runs["masked"][1]

    def pass_ms(fn) -> float:
        ts = []
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(50):
                fn()
            _sync(device)
            ts.append((time.perf_counter() - t0) / 50 * 1e3)
        return statistics.median(ts)

    grad_ms, weight_ms = pass_ms(opt.mask_grads_), pass_ms(opt.mask_weights_)
    return {"model": name, "optimizer": config.optimizer, "steps": steps, "dense_ms": med["dense"],
            "masked_ms": med["masked"], "remask_ms": med["remask"], "grad_ms": grad_ms, "weight_ms": weight_ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--steps", type=int, default=0, help="steps per timed block (default: about 0.5 s worth)")
    ap.add_argument("--batch", type=int, default=60)
    ap.add_argument("--density", type=float, default=0.2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--models", default="lenet_300_100,conv4")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}; batch {args.batch}; density {args.density}; "
          f"{args.repeats} interleaved repeats, median", flush=True)
    print(f"{'model':<15} {'optimizer':<9} {'steps':>5} {'dense ms':>9} {'masked ms':>10} {'overhead':>9} "
          f"{'remask ms':>10} {'overhead':>9} {'grad pass':>10} {'weight pass':>12}", flush=True)
    for model_name in args.models.split(","):
        r = bench_model(model_name, density=args.density, repeats=args.repeats, steps=args.steps,
                        batch=args.batch, device=device)
        d = r["dense_ms"]
        print(f"{r['model']:<15} {r['optimizer']:<9} {r['steps']:>5} {d:>9.3f} {r['masked_ms']:>10.3f} "
              f"{r['masked_ms'] / d - 1:>+9.1%} {r['remask_ms']:>10.3f} {r['remask_ms'] / d - 1:>+9.1%} "
              f"{r['grad_ms'] / d:>10.1%} {r['weight_ms'] / d:>12.1%}", flush=True)


if __name__ == "__main__":
    main()
