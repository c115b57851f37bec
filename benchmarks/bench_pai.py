"""Pruning-at-initialization benchmarks on CPU (issue 4): wall time of

* SynFlow with 100 rounds on ``vgg16`` and ``resnet20`` (CIFAR-10 shape), as ticketlab runs it
  (one linearized float64 copy built in ``prepare``; a round writes ``|θ0| ⊙ mask`` into it, runs
  one forward/backward pass and ranks only the unpruned weights), against a naive loop in the
  same process that does every round what the obvious implementation does: deep-copy the
  model, convert it to float64, take ``abs`` of the whole state dict, re-apply the masks, and
  rank every weight (pruned ones included) to rebuild the masks. Both must give the same masks.
* SNIP and GraSP on ``vgg16`` with 100 samples (10 per class, random images), one shot.

Each variant runs ``--repeat`` times (interleaved) and the fastest run is reported, since other
processes on a shared machine inflate single runs. Torch runs with 1 intra-op thread unless
``--threads`` says otherwise: on a busy 2-core machine 2 threads make a resnet20
forward/backward 40-100x slower and the timings meaningless (issue 15). Usage (prints a table; about 4 minutes on 2
otherwise idle cores)::

    .venv/bin/python benchmarks/bench_pai.py
    .venv/bin/python benchmarks/bench_pai.py --rounds 20 --models resnet20   # quicker
"""

from __future__ import annotations

import argparse
import copy
import platform
import time

import torch

from ticketlab.data.base import DataSpec, TensorData
from ticketlab.miners import MiningContext, get_miner
from ticketlab.models import create_model, prunable_parameters
from ticketlab.selection import exponential_schedule, select_top

SPEC = DataSpec("cifar10", "tensor", (3, 32, 32), 10)


def _context(model: torch.nn.Module, data: TensorData | None = None) -> MiningContext:
    return MiningContext(model=model, params=prunable_parameters(model), spec=SPEC, data=data,
                         device=torch.device("cpu"), seed=0, generator=torch.Generator().manual_seed(0))


def synflow_ticketlab(model: torch.nn.Module, density: float, rounds: int) -> dict[str, torch.Tensor]:
    """The runner's loop (ticketlab.mining.mine) around the SynFlow miner."""
    ctx = _context(model)
    miner = get_miner("synflow")()
    miner.prepare(ctx)
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in ctx.params.items()}
    for d in exponential_schedule(density, rounds):
        masks = select_top(miner.score(ctx, masks), d, masks=masks)
    miner.finish(ctx)
    return masks


def synflow_naive(model: torch.nn.Module, density: float, rounds: int) -> dict[str, torch.Tensor]:
    """Every round: copy, linearize the whole state dict, re-apply masks, rank all weights."""
    names = list(prunable_parameters(model))
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in prunable_parameters(model).items()}
    for d in exponential_schedule(density, rounds):
        net = copy.deepcopy(model).double().eval()
        state = net.state_dict()
        with torch.no_grad():
            for key, value in state.items():
                if value.is_floating_point():
                    value.abs_()
            params = dict(net.named_parameters())
            for n in names:
                params[n].mul_(masks[n].to(params[n].dtype))
        net(torch.ones((1, *SPEC.input_shape), dtype=torch.float64)).sum().backward()
        scores = {}
        for n in names:  # pruned weights rank last (-inf), but every weight is ranked
            s = (params[n].grad * params[n]).detach().abs()
            scores[n] = torch.where(masks[n], s, torch.full_like(s, -torch.inf))
        masks = select_top(scores, d)
    return masks


def _timed(fn, *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def _random_data(per_class: int, seed: int = 0) -> TensorData:
    g = torch.Generator().manual_seed(seed)
    n = per_class * SPEC.num_classes
    x = torch.randn((n, *SPEC.input_shape), generator=g)
    y = torch.arange(SPEC.num_classes).repeat(per_class)
    return TensorData(SPEC, (x, y), (x[:0], y[:0]), (x[:0], y[:0]))


def one_shot(method: str, model: torch.nn.Module, data: TensorData, density: float) -> dict[str, torch.Tensor]:
    ctx = _context(model, data)
    miner = get_miner(method)()
    miner.prepare(ctx)
    masks = select_top(miner.score(ctx, {n: torch.ones_like(p, dtype=torch.bool) for n, p in ctx.params.items()}),
                       density)
    miner.finish(ctx)
    return masks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=100, help="SynFlow rounds (default 100)")
    ap.add_argument("--density", type=float, default=0.01, help="target density (default 0.01)")
    ap.add_argument("--models", default="vgg16,resnet20", help="models for SynFlow")
    ap.add_argument("--samples", type=int, default=100, help="SNIP/GraSP samples (10 classes)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--repeat", type=int, default=2,
                    help="runs of each variant, interleaved; the minimum is reported (default 2)")
    ap.add_argument("--no-naive", action="store_true", help="skip the naive SynFlow loop")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, Python {platform.python_version()}, {torch.get_num_threads()} torch thread(s) "
          f"(--threads, default 1), "
          f"CPU; target density {args.density}, SynFlow {args.rounds} rounds")
    rows = []
    for name in args.models.split(","):
        model = create_model(name, SPEC, seed=0)
        n = sum(p.numel() for p in prunable_parameters(model).values())
        fast, naive = [], []
        for _ in range(args.repeat):  # interleaved, so that load from other processes hits both
            t, m_fast = _timed(synflow_ticketlab, model, args.density, args.rounds)
            fast.append(t)
            if not args.no_naive:
                t, m_naive = _timed(synflow_naive, model, args.density, args.rounds)
                naive.append(t)
                if not all(torch.equal(m_fast[k], m_naive[k]) for k in m_fast):
                    raise SystemExit(f"the naive and the ticketlab SynFlow loops disagree on {name}")
        rows.append((f"synflow x{args.rounds}", name, n, min(fast), min(naive) if naive else None))
    model = create_model("vgg16", SPEC, seed=0)
    n = sum(p.numel() for p in prunable_parameters(model).values())
    data = _random_data(max(1, args.samples // SPEC.num_classes))
    for method in ("snip", "grasp"):
        t = min(_timed(one_shot, method, model, data, args.density)[0] for _ in range(args.repeat))
        rows.append((f"{method} ({args.samples} samples)", "vgg16", n, t, None))

    print("\n| task | model | weights | ticketlab s | naive s | naive / ticketlab |")
    print("|---|---|---:|---:|---:|---:|")
    for task, name, n, t, naive in rows:
        extra = f"{naive:.1f} | {naive / t:.2f}x" if naive is not None else "- | -"
        print(f"| {task} | {name} | {n:,} | {t:.1f} | {extra} |")


if __name__ == "__main__":
    main()
