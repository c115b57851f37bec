"""GCN / Cora training: ticketlab's ``train`` against bare torch-geometric loops (issue 12, section 8).

Every variant runs the default GCN / Cora training of ``ticketlab mine --model gcn --dataset
cora``: 200 full-batch Adam steps (lr 0.01, weight decay 5e-4, ``default_train_config``), loss
on the 140 training nodes, model ``dropout -> GCNConv(1433, 64) -> leaky ReLU -> dropout ->
GCNConv(64, 64) -> leaky ReLU -> dropout -> Linear(64, 7)``, dropout 0.5, from the same seed.
Evaluation = one eval-mode forward pass, validation loss and accuracy, test accuracy.

* ``ticketlab``: ``ticketlab.training.fit(model, data, default_train_config("gcn", "cora"))``
  on the CPU; it evaluates every ``eval_cadence`` steps (10 on graph data) and at the end.
* ``bare, same module``: a plain loop (forward, cross-entropy, zero_grad, backward, step;
  evaluation every 10 steps and at the end, kept in a list) over ticketlab's GCN module, so the
  same arithmetic: the ratio is the cost of ticketlab's training loop itself.
* ``bare PyG``: the same loop over the textbook PyG module of that architecture
  (``F.dropout``, ``GCNConv(cached=True)`` as in PyG's ``examples/gcn.py``), every 10 steps.
* ``bare PyG, eval every step``: the loop of the issue, evaluating after every step.

Each repeat runs every variant once, in an order rotated from repeat to repeat, after one
warm-up run of each; the time of a run is its 200 steps and evaluations (the model is built and
the data loaded beforehand). The table gives min and median seconds over the repeats and the
ratio ``ticketlab / variant`` repeat by repeat (min, median). Target: ticketlab <= 1.3x the bare
loop. torch runs with one intra-op thread (``torch.set_num_threads(1)``, ``--threads``) so that
a busy 2-core machine does not oversubscribe; the figures are for that setting.

Usage (about 5 minutes with 5 repeats on one core of a busy 2-core machine; the two textbook PyG
variants take 9 tenths of it)::

    .venv/bin/python benchmarks/bench_gcn.py [--repeats 5] [--data-root ../shared/data/planetoid]
        [--threads 1] [--steps 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ticketlab.data import load_dataset
from ticketlab.models import create_model
from ticketlab.training import TrainConfig, default_train_config, eval_cadence, fit

PLANETOID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "planetoid"
SEED = 0


class PlainGCN(nn.Module):
    """The architecture written as a PyG user would (ticketlab's layout, PyG's example idioms)."""

    def __init__(self, in_features: int, hidden: int, classes: int, dropout: float) -> None:
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            from torch_geometric.nn import GCNConv
        self.conv1 = GCNConv(in_features, hidden, cached=True)
        self.conv2 = GCNConv(hidden, hidden, cached=True)
        self.fc = nn.Linear(hidden, classes)
        self.p = dropout

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        x = F.dropout(x, self.p, self.training)
        x = F.leaky_relu(self.conv1(x, edge_index))
        x = F.dropout(x, self.p, self.training)
        x = F.leaky_relu(self.conv2(x, edge_index))
        x = F.dropout(x, self.p, self.training)
        return self.fc(x)


def bare_loop(model: nn.Module, g, steps: int, every: int, lr: float, wd: float) -> list[tuple[float, ...]]:
    """200 Adam steps on the training nodes, evaluating every ``every`` steps and at the end."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd, fused=True)
    train_idx = g.train_mask.nonzero().flatten()
    y_train = g.y[train_idx]
    rows = []
    for it in range(1, steps + 1):
        model.train()
        loss = F.cross_entropy(model(g.x, g.edge_index)[train_idx], y_train)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it % every == 0 or it == steps:
            model.eval()
            with torch.no_grad():
                out = model(g.x, g.edge_index)
                pred = out.argmax(1)
                val_loss = F.cross_entropy(out[g.val_mask], g.y[g.val_mask]).item()
                val_acc = (pred[g.val_mask] == g.y[g.val_mask]).float().mean().item()
                test_acc = (pred[g.test_mask] == g.y[g.test_mask]).float().mean().item()
            rows.append((it, loss.item(), val_loss, val_acc, test_acc))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--data-root", type=Path, default=PLANETOID)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: ticketlab's, 200)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if not (args.data_root / "Cora" / "raw").is_dir():
        print(f"skipped: no Cora raw files under {args.data_root} (give --data-root)")
        return
    with warnings.catch_warnings():  # PyG's torch.jit deprecation noise on import
        warnings.simplefilter("ignore", FutureWarning)
        data = load_dataset("cora", root=args.data_root)
    g = data.graph
    config = default_train_config("gcn", "cora")
    if args.steps:
        config = TrainConfig.from_dict({**config.to_dict(), "iterations": args.steps})
    steps, every = config.iterations, eval_cadence(config, data)

    def fresh(kind: str) -> nn.Module:
        if kind == "pyg":
            torch.manual_seed(SEED)
            return PlainGCN(data.spec.input_shape[0], 64, data.spec.num_classes, 0.5)
        return create_model("gcn", data.spec, seed=SEED)

    def run_ticketlab() -> float:
        return fit(fresh("ticketlab"), data, config, seed=SEED, device="cpu").final_test_accuracy

    def bare(kind: str, cadence: int) -> Callable[[], float]:
        def run() -> float:
            model = fresh(kind)
            torch.manual_seed(SEED)
            return bare_loop(model, g, steps, cadence, config.lr, config.weight_decay)[-1][-1]
        return run

    variants: dict[str, Callable[[], float]] = {
        "ticketlab": run_ticketlab,
        "bare, same module": bare("ticketlab", every),
        "bare PyG": bare("pyg", every),
        "bare PyG, eval every step": bare("pyg", 1),
    }
    names = list(variants)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); Cora, {steps} Adam steps, "
          f"evaluation every {every} steps and at the end (last variant: every step); "
          f"{args.repeats} repeats after a warm-up, order rotated", flush=True)
    accuracy: dict[str, float] = {}
    for name in names:  # warm-up: PyG's jit templates, allocator, fused Adam
        accuracy[name] = variants[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            t0 = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - t0)
    print(f"{'variant':<27} {'min s':>7} {'median s':>9} {'ticketlab/variant min':>22} {'median':>7} "
          f"{'test acc':>9}")
    for name in names:
        ratios = [a / b for a, b in zip(times["ticketlab"], times[name])]
        print(f"{name:<27} {min(times[name]):>7.2f} {statistics.median(times[name]):>9.2f} "
              f"{min(ratios):>22.2f} {statistics.median(ratios):>7.2f} {accuracy[name]:>9.3f}", flush=True)


if __name__ == "__main__":
    main()
