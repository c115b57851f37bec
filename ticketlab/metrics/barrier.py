"""Loss barrier between two trained tickets: linear mode connectivity. **Needs torch.**

Unlike the rest of :mod:`ticketlab.metrics` (pure numpy, so that ``ticketlab compare`` starts
fast), this module builds and evaluates networks, so it imports torch and is *not* imported by
``ticketlab.metrics``: import it as ``ticketlab.metrics.barrier``.

**What is measured.** Linear mode connectivity (Frankle, Dziugaite, Roy & Carbin 2020, "Linear
Mode Connectivity and the Lottery Ticket Hypothesis", Sec. 2; Paul et al. 2022, "Unmasking the
Lottery Ticket Hypothesis", Sec. 3): for two trained networks θA and θB of one architecture, the
error of ``θ(α) = (1 − α)·θA + α·θB`` on a grid of α in [0, 1], and the *error barrier*
``max_α err(α) − mean(err(0), err(1))`` (Frankle et al. 2020's instability; the same on the loss
is the loss barrier). Two networks are linearly connected when the barrier is about 0.

* **Every trained tensor** is interpolated: the masked weights, biases, batch-norm affine
  parameters and layers left unpruned, read from each ticket's ``final`` snapshot, which holds
  the whole trained ``state_dict`` (:func:`ticketlab.retraining.final_snapshot`; a ticket written
  before this version lacks it and is refused in one line). ``torch.lerp`` computes the
  interpolation, so ``α = 0`` and ``α = 1`` give the endpoints bit for bit, and a ticket with
  itself gives its own network at every α (barrier exactly 0).
* **The mask** of θ(α) is the union of the two masks; a pruned weight is 0 in its endpoint, so a
  weight kept by A only is ``(1 − α)·wA`` (a parameter masked in one ticket only is dense).
* **Batch norm**: the running statistics of θ(α) are not an interpolation of the endpoints'
  (Jordan et al. 2023, "REPAIR", Sec. 3: the variance collapses); they are re-estimated at every
  α on ``recalibrate`` seeded training batches (REPAIR's simplest form, reset and re-estimate;
  :func:`ticketlab.training.recalibrate_batchnorm`, as ``ticketlab evaluate`` does). With
  ``recalibrate=0`` the running statistics are interpolated like every other entry.
* ``align="weights"`` first relabels B's hidden units to match A's (weight matching on the final
  weights, :func:`ticketlab.metrics.align.align`; biases and batch norm follow with
  :func:`ticketlab.metrics.align.permute_state`), as Ainsworth et al. 2023 ("Git Re-Basin")
  interpolate after alignment.

The two tickets must share the model (and its options) and the data set, and the split evaluated
must hold the same samples for both (tickets of different seeds split most data sets
differently: those are refused). Evaluation uses the ticket's data split of A
(:func:`ticketlab.retraining.rebuild`) and :func:`ticketlab.training.evaluate_untrained`.

Example:
    >>> import ticketlab
    >>> from ticketlab.metrics.barrier import barrier
    >>> t = ticketlab.mine("random", density=0.5, seed=0, device="cpu", train_ticket=True, train_epochs=1)
    >>> res = barrier(t, t, alphas=3, device="cpu")
    >>> res.alphas, res.barrier
    ([0.0, 0.5, 1.0], 0.0)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np
import torch

from ticketlab.checks import check_seed
from ticketlab.errors import ConfigError, IncompatibleError
from ticketlab.ticket import Ticket

TicketLike = Union[Ticket, str, "os.PathLike[str]"]
#: What ``align`` takes (besides None): the similarity weight matching uses.
BARRIER_ALIGN = ("weights",)


@dataclass(frozen=True)
class BarrierResult:
    """The result of :func:`barrier`.

    Attributes:
        alphas: the grid, ascending, 0 and 1 included.
        error: ``1 − accuracy`` of θ(α) on ``split``, per α.
        loss: mean cross-entropy of θ(α) on ``split``, per α.
        barrier: ``max_α error(α) − mean(error(0), error(1))`` (Frankle et al. 2020).
        loss_barrier: the same on the loss.
        labels: the two tickets' labels (file names, or method and seed).
        paths: the two files read (None for a :class:`Ticket` given directly).
        align: ``"weights"`` when B was aligned to A first, else None.
        split: the split evaluated.
        recalibration_batches: batch-norm re-estimation batches per α (0 without batch norm).
        batchnorm: whether the model has batch norm.
        seed: seed of the recalibration batches and of the alignment's layer order.
        model, dataset: the tickets' model and data set.
        density: the two tickets' densities.
        union_density: density of the union of the masks (the mask of θ(α) for 0 < α < 1).
        align_sweeps: coordinate-descent sweeps of the alignment (None without).
    """

    alphas: list[float]
    error: list[float]
    loss: list[float]
    barrier: float
    loss_barrier: float
    labels: tuple[str, str] = ("A", "B")
    paths: tuple[str | None, str | None] = (None, None)
    align: str | None = None
    split: str = "test"
    recalibration_batches: int = 0
    batchnorm: bool = False
    seed: int = 0
    model: str = ""
    dataset: str = ""
    density: tuple[float, float] = (math.nan, math.nan)
    union_density: float = math.nan
    align_sweeps: int | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes None; ``json.dumps(..., allow_nan=False)`` accepts it).

        Example:
            >>> BarrierResult([0.0, 1.0], [0.1, float("nan")], [0.3, 0.4], 0.0, 0.0).to_dict()["error"]
            [0.1, None]
        """
        return {
            "inputs": [{"label": lab, "path": p, "density": _clean(d)}
                       for lab, p, d in zip(self.labels, self.paths, self.density)],
            "model": self.model, "dataset": self.dataset, "split": self.split, "align": self.align,
            "align_sweeps": self.align_sweeps, "batchnorm": self.batchnorm,
            "recalibration_batches": self.recalibration_batches, "seed": self.seed,
            "union_density": _clean(self.union_density),
            "alphas": [float(a) for a in self.alphas], "error": [_clean(e) for e in self.error],
            "loss": [_clean(v) for v in self.loss], "barrier": _clean(self.barrier),
            "loss_barrier": _clean(self.loss_barrier),
        }


def _clean(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def alpha_grid(alphas: int | Sequence[float]) -> list[float]:
    """The α grid: ``N`` evenly spaced points on [0, 1] (both ends), or the given values in
    [0, 1], sorted, with 0 and 1 added when missing (the barrier is measured against them).

    Example:
        >>> alpha_grid(5), alpha_grid([0.5, 0.25])
        ([0.0, 0.25, 0.5, 0.75, 1.0], [0.0, 0.25, 0.5, 1.0])
    """
    from ticketlab.limits import check

    if isinstance(alphas, (int, np.integer)) and not isinstance(alphas, bool):
        if alphas < 2:
            raise ConfigError(f"alphas must be at least 2 points (0 and 1), got {alphas}")
        check("alphas", int(alphas), f"alphas asks for {int(alphas):,} points")  # before linspace allocates them
        return [round(float(a), 12) for a in np.linspace(0.0, 1.0, int(alphas))]  # 0.3, not 0.30000000000000004
    if isinstance(alphas, (str, bytes, bool)) or not isinstance(alphas, Sequence):
        raise ConfigError(f"alphas must be a number of points or a list of values in [0, 1], not {alphas!r}")
    check("alphas", len(alphas), f"alphas lists {len(alphas):,} values")
    values = set()
    for a in alphas:
        if isinstance(a, bool) or not isinstance(a, (int, float, np.integer, np.floating)) \
                or not 0.0 <= float(a) <= 1.0:
            raise ConfigError(f"every alpha must be a number in [0, 1], got {a!r}")
        values.add(float(a))
    return sorted(values | {0.0, 1.0})


def _barrier(values: Sequence[float], alphas: Sequence[float]) -> float:
    """``max_α v(α) − mean(v(0), v(1))`` (Frankle et al. 2020, Sec. 2: the error barrier height)."""
    v = dict(zip(alphas, values))
    if any(math.isnan(x) for x in values):  # an empty split
        return math.nan
    return float(max(values) - (v[0.0] + v[1.0]) / 2)


def interpolate_state(state_a: dict[str, torch.Tensor], state_b: dict[str, torch.Tensor],
                      alpha: float) -> dict[str, torch.Tensor]:
    """``(1 − α)·A + α·B`` of every floating-point entry (``torch.lerp``: exact at α = 0 and 1, and
    where A and B are equal); an integer entry (``num_batches_tracked``) is A's below α = 0.5, else B's.

    Example:
        >>> a, b = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor(1)}, {"w": torch.tensor([4.0, 2.0]), "n": torch.tensor(3)}
        >>> s = interpolate_state(a, b, 0.25)
        >>> s["w"].tolist(), int(s["n"])
        ([1.0, 2.0], 1)
    """
    out: dict[str, torch.Tensor] = {}
    for k, xa in state_a.items():
        xb = state_b[k]
        if xa.is_floating_point():
            out[k] = torch.lerp(xa, xb.to(xa.dtype), float(alpha))
        else:
            out[k] = (xa if alpha < 0.5 else xb).clone()
    return out


def union_masks(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The mask of θ(α): kept where A or B keeps the weight; a parameter masked in one ticket
    only is dense in the other, so its union is all True (and it needs no mask).

    Example:
        >>> union_masks({"w": np.array([True, False, False])}, {"w": np.array([False, True, False])})["w"].tolist()
        [True, True, False]
    """
    return {n: m | b[n] for n, m in a.items() if n in b}


# ---------------------------------------------------------------------------------- inputs
def _read(t: TicketLike) -> tuple[Ticket, str | None]:
    if isinstance(t, Ticket):
        return t, None
    from ticketlab.fileformat import load

    return load(t, scores=False, history=False), str(t)


def _labels(tickets: Sequence[Ticket], paths: Sequence[str | None]) -> tuple[str, str]:
    from ticketlab.metrics.compare import unique_labels

    names = []
    for t, p in zip(tickets, paths):
        prov = t.provenance
        names.append(Path(p).name if p is not None else f"{prov.get('method', 'ticket')} seed {prov.get('seed', '?')}")
    if len(set(names)) < len(names) and all(p is not None for p in paths) and paths[0] != paths[1]:
        names = [str(p) for p in paths]
    a, b = unique_labels(names)
    return a, b


def _check_pair(a: Ticket, b: Ticket, la: str, lb: str) -> None:
    pa, pb = a.provenance, b.provenance
    for key in ("model", "dataset"):
        if pa.get(key) != pb.get(key):
            raise IncompatibleError(f"'{la}' and '{lb}' differ in {key} ({pa.get(key)!r} vs {pb.get(key)!r}): a "
                                    "barrier interpolates between two networks of one model on one data set")
    check_seed(pb.get("seed"), f"cannot re-create the data split of '{lb}': its provenance seed")
    if (pa.get("model_config") or {}) != (pb.get("model_config") or {}):
        raise IncompatibleError(f"'{la}' and '{lb}' were built with different model options "
                                f"({pa.get('model_config')!r} vs {pb.get('model_config')!r})")


def _same_split(data_a: Any, data_b: Any, split: str) -> bool:
    """Whether ``split`` holds the same samples in both data sets (graph data: the same nodes)."""
    from ticketlab.data.base import GraphData

    if isinstance(data_a, GraphData) or isinstance(data_b, GraphData):
        ga, gb = getattr(data_a, "graph", None), getattr(data_b, "graph", None)
        ma, mb = getattr(ga, f"{split}_mask", None), getattr(gb, f"{split}_mask", None)
        return ma is not None and mb is not None and torch.equal(ma, mb) and torch.equal(ga.x, gb.x)
    xa, ya = getattr(data_a, split)
    xb, yb = getattr(data_b, split)
    return xa.shape == xb.shape and torch.equal(xa, xb) and torch.equal(ya, yb)


# ---------------------------------------------------------------------------------- barrier
def barrier(
    a: TicketLike,
    b: TicketLike,
    *,
    alphas: int | Sequence[float] = 11,
    align: str | None = None,
    split: str = "test",
    recalibrate: int | None = None,
    data_root: str | os.PathLike[str] | None = None,
    device: str | torch.device = "auto",
    seed: int | None = None,
) -> BarrierResult:
    """The error and loss along ``(1 − α)·θA + α·θB`` and the barrier (module docstring).

    Args:
        a, b: two trained tickets (:class:`Ticket` or file paths) of the same model and data set.
        alphas: a number of evenly spaced points on [0, 1] (both ends), or the values themselves
            (0 and 1 are added when missing).
        align: None, or ``"weights"``: relabel B's hidden units to match A's first.
        split: ``"test"``, ``"val"`` or ``"train"`` of the tickets' data split.
        recalibrate: training batches (128 samples) that re-estimate the batch-norm statistics at
            each α (default :data:`ticketlab.training.RECALIBRATION_BATCHES`; 0 = interpolate the
            statistics instead); ignored without batch norm.
        data_root: where the data set's files are, for data sets that need files.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        seed: seed of the recalibration batches and the alignment (default: A's seed).

    Raises a one-line :class:`~ticketlab.errors.IncompatibleError` when the tickets do not fit
    each other, and :class:`~ticketlab.errors.ConfigError` when one stores no trained state.

    Example:
        >>> import ticketlab
        >>> t = ticketlab.mine("random", density=0.5, seed=0, device="cpu", train_ticket=True, train_epochs=1)
        >>> res = barrier(t, t, alphas=[0.5], device="cpu")
        >>> res.error[0] == res.error[1] == res.error[2], res.to_dict()["inputs"][0]["label"]
        (True, 'random seed 0')
    """
    from ticketlab.build import load_data
    from ticketlab.masking import from_numpy_masks
    from ticketlab.retraining import rebuild, trained_state
    from ticketlab.training import RECALIBRATION_BATCHES, SPLITS, evaluate_untrained

    grid = alpha_grid(alphas)
    if align is not None and align not in BARRIER_ALIGN:
        raise ConfigError(f"unknown alignment '{align}' for a barrier (choose from: {', '.join(BARRIER_ALIGN)})")
    if split not in SPLITS:
        raise ConfigError(f"unknown split '{split}' (choose from: {', '.join(SPLITS)})")
    recalibrate = RECALIBRATION_BATCHES if recalibrate is None else recalibrate
    if isinstance(recalibrate, bool) or not isinstance(recalibrate, (int, np.integer)) or recalibrate < 0:
        raise ConfigError(f"recalibration batches must be a whole number >= 0, got {recalibrate!r}")
    (ta, path_a), (tb, path_b) = _read(a), _read(b)
    la, lb = _labels([ta, tb], [path_a, path_b])
    _check_pair(ta, tb, la, lb)

    rb = rebuild(ta, data_root=data_root, device=device)  # A's network (its model and data split)
    net, data = rb.net, rb.data
    if tb.provenance.get("seed") != rb.seed:
        other, _ = load_data(str(ta.provenance["dataset"]), seed=int(tb.provenance["seed"]), data_root=data_root)
        if not _same_split(data, other, split):
            raise IncompatibleError(f"'{la}' (seed {rb.seed}) and '{lb}' (seed {tb.provenance['seed']}) split "
                                    f"{ta.provenance['dataset']} differently, so their {split} sets differ: "
                                    "compare tickets of one data split (the same seed)")
    seed = rb.seed if seed is None else int(seed)
    named = dict(net.named_parameters())
    absent = [n for n in tb.masks if n not in named]
    if absent:
        raise IncompatibleError(f"'{lb}' masks '{absent[0]}', which model '{ta.provenance['model']}' does not have")
    state_a = trained_state(ta, net, label=f"'{la}'")
    state_b = trained_state(tb, net, label=f"'{lb}'")
    masks_b = dict(tb.masks)
    sweeps = None
    if align == "weights":  # Ainsworth et al. 2023: permute B's units to A's, then interpolate
        from ticketlab.metrics.align import align as align_units, permute_state
        from ticketlab.metrics.graph import topology_of

        topo = topology_of(ta)[0]
        res = align_units(ta, tb, "weights", seed=seed, topology=topo)
        permuted = permute_state({k: v.numpy() for k, v in state_b.items()}, res.perms, topo)
        state_b = {k: torch.from_numpy(np.ascontiguousarray(permuted[k])) for k in state_b}
        masks_b, sweeps = dict(res.ticket.masks), res.sweeps
    union = union_masks(ta.masks, masks_b)
    masks = from_numpy_masks(union, {n: named[n] for n in union})
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
    batches = int(recalibrate) if has_bn else 0

    errors, losses = [], []
    for alpha in grid:
        state = interpolate_state(state_a, state_b, alpha)
        ev = evaluate_untrained(net, data, masks, {n: state[n] for n in masks}, state=state,
                                recalibrate=batches, seed=seed, splits=(split,))
        loss, acc = ev[split]
        errors.append(1.0 - acc)
        losses.append(loss)
    kept = sum(int(m.sum()) for m in union.values())
    total = sum(m.size for m in union.values())
    return BarrierResult(
        alphas=grid, error=errors, loss=losses, barrier=_barrier(errors, grid), loss_barrier=_barrier(losses, grid),
        labels=(la, lb), paths=(path_a, path_b), align=align, split=split, recalibration_batches=batches,
        batchnorm=has_bn, seed=seed, model=str(ta.provenance["model"]), dataset=str(ta.provenance["dataset"]),
        density=(ta.density, tb.density), union_density=kept / total if total else math.nan, align_sweeps=sweeps)


def plot_barrier(results: Sequence[BarrierResult], path: str | os.PathLike[str] | None = None, *,
                 labels: Sequence[str] | None = None) -> Any:
    """Error (left) and loss (right) against α of each result (one curve each, labelled ``A – B``
    by default, with its barrier); written to ``path`` (PNG, atomically) when given. Returns the
    matplotlib Figure.

    Example:
        >>> r = BarrierResult([0.0, 0.5, 1.0], [0.1, 0.3, 0.1], [0.2, 0.9, 0.2], 0.2, 0.7)
        >>> [ax.get_ylabel() for ax in plot_barrier([r]).axes]
        ['test error', 'test loss (cross-entropy)']
    """
    from ticketlab.metrics._plot import new_figure, plain, save_figure

    results = list(results)
    if not results:
        raise ConfigError("plot_barrier needs at least one barrier result")
    if labels is not None and len(labels) != len(results):
        raise ConfigError(f"plot_barrier got {len(labels)} labels for {len(results)} results")
    if path is not None and not Path(path).parent.exists():
        raise ConfigError(f"cannot write '{path}': folder '{Path(path).parent}' does not exist")
    fig = new_figure(10.0, 4.0)
    ax, lax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for i, r in enumerate(results):
        name = labels[i] if labels is not None else f"{r.labels[0]} – {r.labels[1]}" + (" (aligned)" if r.align else "")
        line, = ax.plot(r.alphas, r.error, marker=".", label=plain(f"{name}: barrier {r.barrier:.3g}"))
        lax.plot(r.alphas, r.loss, marker=".", color=line.get_color(),
                 label=plain(f"{name}: barrier {r.loss_barrier:.3g}"))
    for a in (ax, lax):
        a.set_xlabel("α (0 = A, 1 = B)")
        a.set_xlim(0, 1)
        a.legend(fontsize=7)
    ax.set_ylabel(plain(f"{results[0].split} error"))
    lax.set_ylabel(plain(f"{results[0].split} loss (cross-entropy)"))
    ax.set_title("error along the line between the tickets", fontsize=10)
    lax.set_title("loss along the same line", fontsize=10)
    top = max((e for r in results for e in r.error if not math.isnan(e)), default=1.0)
    ax.set_ylim(0, min(1.0, top * 1.15) or 1.0)
    ltop = max((v for r in results for v in r.loss if math.isfinite(v)), default=1.0)
    lax.set_ylim(0, ltop * 1.15 or 1.0)  # cross-entropy is >= 0; room above the curves for the legend
    if path is not None:
        save_figure(fig, path)
    return fig
