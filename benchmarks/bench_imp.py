"""IMP machinery benchmarks on CPU (issue 5).

1. **Overhead per round.** Runs ``imp`` on ``conv4`` / ``digits`` (default training: Adam 3e-4,
   batch 60, 20 epochs per round) with a checkpoint and ``--save-rounds``, timing every call of
   the training loop. A round's wall time is measured from the end of the previous round's
   checkpoint to the end of its own; the *overhead* is that time minus the round's training
   (scoring, selection, reset, history, saving the round's ticket, writing the checkpoint).
   Target: at most 2 % of a round.
2. **Resume restart time.** Resuming the checkpoint of a finished run (so nothing is trained):
   a fresh ``python -m ticketlab mine ... --resume`` process from start to exit (interpreter,
   torch and sklearn imports, data and model set-up, checkpoint load, writing the ticket), the
   imports alone, and ``mine(..., resume=True)`` in a warm process. The checkpoint load alone
   is timed in-process. Target: within 5 s plus the checkpoint load.

Usage (about 3 minutes on 2 otherwise idle cores)::

    .venv/bin/python benchmarks/bench_imp.py
    .venv/bin/python benchmarks/bench_imp.py --threads 1               # on a busy machine
    .venv/bin/python benchmarks/bench_imp.py --epochs 5 --rounds 2     # quicker, smaller rounds
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import ticketlab.checkpoint
import ticketlab.fileformat
import ticketlab.mining
import ticketlab.training
from ticketlab.checkpoint import read_checkpoint
from ticketlab.mining import mine


def _timed(module: object, name: str, log: list[tuple[str, float, float]]) -> None:
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            log.append((name, t0, time.perf_counter()))

    setattr(module, name, wrapper)


def overhead(model: str, dataset: str, rounds: int, epochs: int | None, folder: Path) -> dict[str, float]:
    """Run IMP with timing wrappers; per-round wall time, training time and overhead parts."""
    log: list[tuple[str, float, float]] = []
    _timed(ticketlab.training, "train", log)
    _timed(ticketlab.checkpoint, "write_checkpoint", log)
    _timed(ticketlab.fileformat, "save", log)
    _timed(ticketlab.mining, "_select", log)
    (folder / "rounds").mkdir()
    mine("imp", model=model, dataset=dataset, rounds=rounds, train_epochs=epochs, seed=0, device="cpu",
         checkpoint=folder / "run.ckpt", save_rounds=folder / "rounds")
    ends = [t1 for name, _, t1 in log if name == "write_checkpoint"]  # one per round, round 0 first
    parts = {"train": 0.0, "save": 0.0, "write_checkpoint": 0.0, "_select": 0.0}
    wall = 0.0
    for k in range(1, len(ends)):
        lo, hi = ends[k - 1], ends[k]
        wall += hi - lo
        for name, t0, t1 in log:
            if lo <= t0 and t1 <= hi:
                parts[name] += t1 - t0
    n = len(ends) - 1
    other = wall - sum(parts.values())
    return {"rounds": n, "round_s": wall / n, "train_s": parts["train"] / n, "select_s": parts["_select"] / n,
            "save_round_s": parts["save"] / n, "checkpoint_s": parts["write_checkpoint"] / n,
            "other_s": other / n, "overhead_share": (wall - parts["train"]) / wall,
            "checkpoint_mb": (folder / "run.ckpt").stat().st_size / 2**20}


def restart(model: str, dataset: str, rounds: int, epochs: int | None, folder: Path, repeat: int) -> dict[str, float]:
    """Resume a finished run's checkpoint (so nothing is trained): in a warm process, and as a
    fresh ``ticketlab mine --resume`` process; plus the checkpoint load and the imports alone."""
    out = folder / "t.h5"
    ckpt = folder / "t.h5.ckpt"
    kw = dict(model=model, dataset=dataset, rounds=rounds, train_epochs=epochs, seed=0, device="cpu")
    args = [sys.executable, "-m", "ticketlab", "mine", "--method", "imp", "--model", model, "--dataset", dataset,
            "--rounds", str(rounds), "--quiet", "-o", str(out), "--device", "cpu"]
    if epochs is not None:
        args += ["--train-epochs", str(epochs)]
    mine("imp", checkpoint=ckpt, **kw)  # leaves the finished run's checkpoint
    saved = ckpt.read_bytes()
    loads, warm, procs, imports = [], [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        read_checkpoint(ckpt)
        loads.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        mine("imp", checkpoint=ckpt, resume=True, **kw)
        warm.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        proc = subprocess.run([*args, "--resume"], capture_output=True, text=True)
        procs.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        ckpt.write_bytes(saved)  # the CLI deletes it after a successful resume
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch, sklearn.datasets, ticketlab.mining, ticketlab.cli.main"],
                       check=True)
        imports.append(time.perf_counter() - t0)
    return {"restart_s": min(procs), "warm_s": min(warm), "load_s": min(loads), "import_s": min(imports),
            "checkpoint_mb": len(saved) / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="conv4")
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=None, help="epochs per round (default: the model's default config)")
    ap.add_argument("--repeat", type=int, default=3, help="restart measurements (fastest reported)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's; use 1 on a busy machine)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        o = overhead(args.model, args.dataset, args.rounds, args.epochs, Path(tmp))
    print(f"overhead per round ({args.model}/{args.dataset}, {o['rounds']} rounds, {o['checkpoint_mb']:.1f} MiB checkpoint):")
    print(f"  round {o['round_s']:.2f} s = training {o['train_s']:.2f} s + selection {o['select_s'] * 1e3:.1f} ms"
          f" + round ticket {o['save_round_s'] * 1e3:.1f} ms + checkpoint {o['checkpoint_s'] * 1e3:.1f} ms"
          f" + other (scoring, reset, history) {o['other_s'] * 1e3:.1f} ms")
    print(f"  overhead share {100 * o['overhead_share']:.2f} % (target <= 2 %)")
    with tempfile.TemporaryDirectory() as tmp:
        r = restart(args.model, args.dataset, args.rounds, 1, Path(tmp), args.repeat)
    print(f"resume restart: fresh `ticketlab mine --resume` process {r['restart_s']:.2f} s (python + torch + sklearn"
          f" imports alone {r['import_s']:.2f} s); in a warm process {r['warm_s']:.2f} s; checkpoint load"
          f" {r['load_s'] * 1e3:.0f} ms ({r['checkpoint_mb']:.1f} MiB); target <= 5 s + load")


if __name__ == "__main__":
    main()
