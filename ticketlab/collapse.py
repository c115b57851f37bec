"""Layer collapse and critical compression of pruning-at-initialization methods.

A mask *collapses* when some prunable layer keeps no weight: the network then computes a
constant (Tanaka et al. 2020, Sec. 3). The **critical compression** of a method is the largest
compression ratio ``10^x`` (``x`` on a grid of step 0.25, density ``10^-x``) at which no layer
is empty; Tanaka et al., Fig. 1 report it for VGG-16 on CIFAR-100 at initialization (global
scope, every layer pruned): random 3.25, magnitude 2.75, SNIP 3.5, GraSP 3.5, SynFlow 6.0.

How the search is kept cheap:

* The grid stops at the largest ``x`` at which one weight per layer can still be kept
  (``keep_count(10^-x, N) >= layers``); beyond it collapse is certain and nothing is run.
* One-shot methods (one round) are scored **once**: their scores at initialization do not
  depend on the target, so each probe is only a selection.
* Iterative methods (SynFlow, 100 rounds) depend on the target through the schedule
  ``d^(k/n)``, so each probe is a full run; it stops at the first round that empties a layer
  (masks only shrink, so the final mask would be empty there too).
* ``search="bisect"`` (default) probes the top of the grid first (one run when a method never
  collapses, as SynFlow should), then bisects the grid. This assumes that collapse is monotone
  in ``x``, which is exact for one-shot methods (kept sets are nested in the density) and holds
  in practice for iterative ones; ``search="grid"`` probes every point and reports whether the
  outcome was monotone.

The study builds its network as :func:`ticketlab.mining.mine` does
(:func:`ticketlab.build.build_network`), and a probe draws from the same miner and selection
streams (:mod:`ticketlab.streams`) and runs the same rounds (:func:`ticketlab.rounds.round_loop`),
so ``mine(method, density=10**-x, seed=seed)`` on the same data gives the probed mask
(``mine --init ... --zero-bias`` for the same initialisation).

To compare with Tanaka et al., build the model as their reference code does: Kaiming-normal
weights and zero biases (``init="kaiming_normal", zero_bias=True``). Both matter: PyTorch's
default uniform initialisation bounds each layer's weights by ``1/sqrt(fan_in)``, so global
magnitude pruning empties the wide layers early, and nonzero biases carry synaptic flow into
deep layers without any upstream weight, so SynFlow keeps those instead of a connected path.

Example:
    >>> study = critical_compression("lenet_300_100", ["magnitude_init"], dataset="digits")
    >>> study.results[0].critical_x
    0.5
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ticketlab.errors import ConfigError
from ticketlab.progress import NullProgress
from ticketlab.selection import exponential_schedule, keep_count, select_top

#: Tanaka et al. 2020, Fig. 1 (VGG-16, CIFAR-100, at initialization): the last log10 compression
#: with no empty layer. "magnitude" there is magnitude at initialization.
TANAKA_VGG16_CIFAR100 = {"random": 3.25, "magnitude_init": 2.75, "snip": 3.5, "grasp": 3.5, "synflow": 6.0}
DEFAULT_METHODS = ("random", "magnitude_init", "snip", "grasp", "synflow")
SEARCHES = ("bisect", "grid")

#: Input shapes of image data sets for which random stand-in inputs can be made without files.
@dataclass(frozen=True)
class Probe:
    """One evaluated grid point: log10 compression ``x``, density ``10^-x``, the kept count and
    the empty layers; ``stopped_round`` is the round at which an iterative run stopped because a
    layer emptied (``None``: it ran to the end)."""

    x: float
    density: float
    kept: int
    empty_layers: tuple[str, ...]
    stopped_round: int | None = None
    layer_kept: tuple[int, ...] = ()  # kept weights per layer, in the order of CollapseStudy.layers

    @property
    def collapsed(self) -> bool:
        return bool(self.empty_layers)


@dataclass
class MethodResult:
    """A method's critical compression: ``critical_x`` is the largest probed grid ``x`` with no
    empty layer (0.0: even the first step collapses); ``monotone`` is False when a grid search
    found an intact point above a collapsed one."""

    method: str
    rounds: int
    critical_x: float
    probes: list[Probe]
    seconds: float
    monotone: bool = True

    @property
    def critical_density(self) -> float:
        return 10.0 ** -self.critical_x

    @property
    def critical_probe(self) -> Probe | None:
        """The probe at ``critical_x`` (the sparsest intact mask), if that point was probed."""
        return next((p for p in self.probes if p.x == self.critical_x and not p.collapsed), None)


@dataclass
class CollapseStudy:
    """Results of :func:`critical_compression` with what they were computed on."""

    model: str
    dataset: str
    data_source: str
    seed: int
    step: float
    search: str
    total: int
    layers: list[str]
    max_x: float
    prune_first_layer: bool
    prune_last_layer: bool
    init: str | None = None
    zero_bias: bool = False
    results: list[MethodResult] = field(default_factory=list)
    layer_sizes: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        out = dataclasses.asdict(self)
        for r, res in zip(out["results"], self.results):
            r["critical_density"] = res.critical_density
            for p, probe in zip(r["probes"], res.probes):
                p["collapsed"] = probe.collapsed
        return out


def empty_layers(masks: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the parameters whose mask keeps nothing (layer collapse).

    Example:
        >>> empty_layers({"a": torch.tensor([True, False]), "b": torch.tensor([False])})
        ['b']
    """
    return [n for n, m in masks.items() if not bool(m.any())]


def compression_grid(total: int, layers: int, step: float = 0.25) -> list[float]:
    """``x = step, 2 step, ...`` up to the largest ``x`` at which ``keep_count(10^-x, total)``
    still leaves one weight per layer (beyond it every mask collapses).

    Example:
        >>> compression_grid(1000, 3, 0.5)
        [0.5, 1.0, 1.5, 2.0, 2.5]
    """
    if not step > 0:
        raise ConfigError(f"the grid step must be positive, got {step}")
    grid: list[float] = []
    k = 1
    while keep_count(10.0 ** -(k * step), total) >= layers:
        grid.append(round(k * step, 10))
        k += 1
    return grid


def _study_data(dataset: str, data_root: str | Path | None, seed: int, samples_per_class: int,
                download: bool) -> tuple[Any, str]:
    """The data set (real when a data root is given or none is needed, else random images)."""
    from ticketlab.build import load_data
    from ticketlab.data import get_dataset_info, list_datasets
    from ticketlab.data.base import TensorData

    info = get_dataset_info(dataset)
    if data_root is not None or not info.needs_root or download:
        data, _ = load_data(dataset, seed=seed, data_root=data_root, download=download)
        where = f" in {data_root}" if data_root is not None else ""
        return data, f"the {dataset} training split{where}"
    if info.spec is None:
        known = [n for n in list_datasets() if get_dataset_info(n).spec is not None]
        raise ConfigError(f"data set '{dataset}' needs --data-root (random stand-in inputs exist only for "
                          f"{', '.join(known)})")
    spec = info.spec
    shape, classes = spec.input_shape, spec.num_classes
    per_class = samples_per_class or 10
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((per_class * classes, *shape), generator=g)
    y = torch.arange(classes).repeat(per_class)[torch.randperm(per_class * classes, generator=g)]
    empty = (x[:0], y[:0])
    source = (f"random images (no data root given): {per_class * classes} standard-normal images of shape "
              f"{'x'.join(map(str, shape))}, {per_class} per class with random labels, seed {seed}")
    return TensorData(spec, (x, y), empty, empty), source


def critical_compression(
    model: str = "vgg16",
    methods: Sequence[str] = DEFAULT_METHODS,
    *,
    dataset: str = "cifar100",
    data_root: str | Path | None = None,
    download: bool = False,
    seed: int = 0,
    step: float = 0.25,
    search: str = "bisect",
    rounds: Mapping[str, int] | None = None,
    samples_per_class: int = 10,
    init: str | None = None,
    zero_bias: bool = False,
    device: str | torch.device = "auto",
    skip_first_layer: bool = False,
    skip_last_layer: bool = False,
    progress: NullProgress | None = None,
    **deprecated: bool,
) -> CollapseStudy:
    """Find each method's critical compression on ``model`` at initialization (module docstring).

    Args:
        model, dataset: registered names; the model is built for the data set's shape.
        methods: miners that do not train (``random``, ``magnitude_init``, ``snip``, ``grasp``,
            ``synflow``, ...).
        data_root: where the data set's files are. Without one, a data set that needs files is
            replaced by seeded random images with random labels (``samples_per_class`` per class).
        seed: seeds the model, the miners' draws and the random images.
        step: grid step of ``x`` (log10 compression).
        search: ``"bisect"`` or ``"grid"``.
        rounds: method -> rounds (default: the miner's: 100 for SynFlow, 1 otherwise).
        samples_per_class: for miners with that option (SNIP, GraSP).
        init: re-initialise the prunable weights (``create_model``'s ``init``, e.g.
            ``"kaiming_normal"`` as in the Synaptic-Flow / open_lth VGG); ``None``: the model's own.
        zero_bias: set every bias to zero after initialisation (the Synaptic-Flow reference models
            do; nonzero biases feed SynFlow's linearized network without any upstream weight).
        device, skip_first_layer, skip_last_layer: as in :func:`ticketlab.mining.mine` (its old
            keywords ``prune_first_layer`` / ``prune_last_layer`` still work, with a warning).

    Example:
        >>> s = critical_compression("lenet_300_100", ["random"], dataset="digits", search="grid")
        >>> s.results[0].monotone, s.max_x
        (True, 4.25)
    """
    from ticketlab.build import build_network
    from ticketlab.device import resolve_device
    from ticketlab.miners import get_miner
    from ticketlab.spec import DEPRECATED_KEYWORDS, NetSpec, PruneSpec, translate_deprecated

    unknown_kw = sorted(set(deprecated) - {k for k, v in DEPRECATED_KEYWORDS.items() if v.startswith("skip_")})
    if unknown_kw:
        raise TypeError(f"critical_compression() got an unexpected keyword argument '{unknown_kw[0]}'")
    skips = translate_deprecated({**deprecated, "skip_first_layer": skip_first_layer,
                                  "skip_last_layer": skip_last_layer})
    skip_first_layer, skip_last_layer = skips["skip_first_layer"], skips["skip_last_layer"]
    if search not in SEARCHES:
        raise ConfigError(f"search must be one of {', '.join(SEARCHES)}, got '{search}'")
    if not methods:
        raise ConfigError("give at least one method")
    rounds = dict(rounds or {})
    unknown = sorted(set(rounds) - set(methods))
    if unknown:
        raise ConfigError(f"rounds are given for '{unknown[0]}', which is not one of the methods")
    classes = [get_miner(m) for m in methods]
    for m, cls in zip(methods, classes):
        if cls.trains:
            raise ConfigError(f"method '{m}' trains the network; the collapse study prunes at initialization")
    progress = progress or NullProgress()
    dev = resolve_device(device)
    data, source = _study_data(dataset, data_root, seed, samples_per_class, download)
    # the network mine(method, model=model, model_kwargs={"init": init, "zero_bias": True}, seed=seed) builds
    options = {**({"init": init} if init is not None else {}), **({"zero_bias": True} if zero_bias else {})}
    built = build_network(NetSpec(model=model, dataset=dataset, model_options=options), seed=seed, device=dev,
                          prune=PruneSpec(skip_first_layer=skip_first_layer, skip_last_layer=skip_last_layer),
                          data=data)
    net, params = built.net, built.params
    total = sum(p.numel() for p in params.values())
    grid = compression_grid(total, len(params), step)
    study = CollapseStudy(model, dataset, source, seed, step, search, total, list(params),
                          grid[-1] if grid else 0.0, not skip_first_layer, not skip_last_layer, init, zero_bias,
                          layer_sizes=[p.numel() for p in params.values()])
    for method, cls in zip(methods, classes):
        n_rounds = rounds.get(method, cls.default_rounds)
        if n_rounds < 1:
            raise ConfigError(f"rounds must be at least 1, got {n_rounds} for '{method}'")
        names = {f.name for f in dataclasses.fields(cls.Config)}
        cfg = {"samples_per_class": samples_per_class} if "samples_per_class" in names else {}
        with progress.task(f"collapse: {method}", total=None) as bar:
            study.results.append(_method(method, cls, cfg, n_rounds, net, params, data, dev, seed, grid,
                                         search, bar))
    return study


def _method(method: str, cls: Any, cfg: dict[str, Any], n_rounds: int, net: torch.nn.Module,
            params: dict[str, torch.nn.Parameter], data: Any, dev: torch.device, seed: int,
            grid: list[float], search: str, bar: Any) -> MethodResult:
    from ticketlab.miners.base import MiningContext
    from ticketlab.rounds import round_loop
    from ticketlab.streams import TIE, miner_generators, offset_generator

    started = time.perf_counter()

    def context() -> MiningContext:  # the same miner and selection streams as mine() for this seed
        generator, ties = miner_generators(seed)
        return MiningContext(model=net, params=params, spec=data.spec, data=data, device=dev, seed=seed,
                             generator=generator, tie_generator=ties)

    ones = {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
    one_shot: dict[str, torch.Tensor] | None = None
    if n_rounds == 1:  # scores at initialization do not depend on the target: score once
        miner, ctx = cls(**cfg), context()
        miner.prepare(ctx)
        one_shot = miner.score(ctx, ones)
        miner.finish(ctx)

    def probe(x: float) -> Probe:
        d = 10.0 ** -x
        stopped = None
        if one_shot is not None:
            masks = select_top(one_shot, d, masks=ones, generator=offset_generator(seed, TIE))
        else:
            miner, ctx = cls(**cfg), context()
            miner.prepare(ctx)
            masks = ones
            for r in round_loop(miner, ctx, ones, exponential_schedule(d, n_rounds)):  # global, exact counts
                masks = r.masks
                if r.index < n_rounds and empty_layers(masks):
                    stopped = r.index  # masks only shrink: the final mask would be empty here too
                    break
            miner.finish(ctx)
        bar.advance()
        kept = tuple(int(m.sum()) for m in masks.values())
        return Probe(x, d, sum(kept), tuple(empty_layers(masks)), stopped, kept)

    probes: dict[int, Probe] = {}

    def ok(i: int) -> bool:  # grid index i (1-based); index 0 is x = 0, nothing pruned
        if i == 0:
            return True
        if i not in probes:
            probes[i] = probe(grid[i - 1])
        return not probes[i].collapsed

    monotone = True
    if search == "grid":
        for i in range(1, len(grid) + 1):
            ok(i)
        intact = [i for i in probes if ok(i)]
        best = max(intact, default=0)
        first_bad = min((i for i in probes if not ok(i)), default=math.inf)
        monotone = best < first_bad
    elif grid and ok(len(grid)):
        best = len(grid)
    else:
        lo, hi = 0, len(grid)  # ok(lo) holds; hi collapses (or lies beyond the grid)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if ok(mid) else (lo, mid)
        best = lo
    return MethodResult(method, n_rounds, grid[best - 1] if best else 0.0,
                        [probes[i] for i in sorted(probes)], time.perf_counter() - started, monotone)


def to_markdown(study: CollapseStudy, command: str, plot: str | None = None) -> str:
    """The study as a Markdown page (``docs/results/layer_collapse.md``) with the command that
    regenerates it; ``plot``: a PNG of :func:`plot_layer_densities` to show (path relative to the page)."""
    ref = TANAKA_VGG16_CIFAR100 if (study.model, study.dataset) == ("vgg16", "cifar100") else {}
    pruned = {(True, True): "every layer pruned", (False, True): "first layer kept dense",
              (True, False): "last layer kept dense", (False, False): "first and last layer kept dense"}
    lines = [
        "# Layer collapse at initialization: critical compression",
        "",
        "Regenerate this file with:",
        "",
        "```",
        command,
        "```",
        "",
        f"Model `{study.model}` built for `{study.dataset}` (seed {study.seed}; prunable weights initialised "
        f"{'with ' + study.init if study.init else 'by the model'}, biases "
        f"{'set to zero' if study.zero_bias else 'as initialised by the model'}): {study.total:,} prunable "
        f"weights in {len(study.layers)} layers, global scope, "
        f"{pruned[(study.prune_first_layer, study.prune_last_layer)]}. "
        f"Data for the data-driven methods: {study.data_source}.",
        "",
        f"Critical compression: the largest compression ratio 10^x (x on a grid of step {study.step}) at "
        f"which no layer keeps zero weights. Beyond x = {study.max_x} fewer weights than layers remain, "
        f"so collapse is certain there. Search: {study.search}"
        + (" (top of the grid first, then bisection; see `ticketlab.collapse`)." if study.search == "bisect"
           else " (every grid point)."),
        "",
        "Methods, all at initialization: `random` keeps a uniformly random global subset; `magnitude_init` "
        "keeps the largest |w| (the \"magnitude\" of Tanaka et al.); `snip` (|g ⊙ w|) and `grasp` "
        "(θ ⊙ Hg, T = 200) score once on the data above; `synflow` is data-free and iterative "
        "(exponential schedule, float64). One-shot methods are scored once and only re-selected per "
        "probe; an iterative method is re-run per probe and stops at the first round that empties a layer."
        + (" The reference column is Tanaka et al. 2020, Fig. 1 (VGG-16, CIFAR-100)." if ref else ""),
        "",
        "| method | rounds | critical log10 compression | density | kept weights |"
        + (" Tanaka et al. 2020, Fig. 1 |" if ref else "") + " probes | seconds |",
        "|---|---:|---:|---:|---:|" + ("---:|" if ref else "") + "---:|---:|",
    ]
    for r in study.results:
        kept = keep_count(r.critical_density, study.total) if r.critical_x else study.total
        refcell = f" {ref[r.method]} |" if r.method in ref else (" - |" if ref else "")
        lines.append(f"| {r.method} | {r.rounds} | {r.critical_x} | {r.critical_density:.3g} | {kept:,} |"
                     f"{refcell} {len(r.probes)} | {r.seconds:.1f} |")
    if plot is not None:
        lines += ["", "Per-layer density of each method's sparsest intact mask (at its critical compression):",
                  "", f"![per-layer density at the critical compression]({plot})"]
    lines += ["", "Probes (x: kept weights, number of empty layers; `stopped@k`: an iterative run stopped at",
              "round k because a layer was already empty):", ""]
    for r in study.results:
        cells = [f"{p.x}: {p.kept:,}, {len(p.empty_layers)} empty" + (f", stopped@{p.stopped_round}"
                 if p.stopped_round else "") for p in r.probes]
        note = "" if r.monotone else " (not monotone in x)"
        lines.append(f"- {r.method}{note}: " + "; ".join(cells))
    import platform

    from ticketlab._version import __version__

    lines += ["", f"ticketlab {__version__}, torch {torch.__version__}, Python {platform.python_version()}.", ""]
    return "\n".join(lines)


def write_markdown(study: CollapseStudy, path: str | Path, command: str, plot: str | Path | None = None) -> Path:
    """Write :func:`to_markdown` to ``path`` atomically (temporary file, then rename); ``plot`` is
    the PNG to link (any path; it is linked relative to the page).

    Example:
        >>> write_markdown(study, "docs/results/layer_collapse.md", "ticketlab collapse ...")  # doctest: +SKIP
    """
    from ticketlab.atomic import atomic_write_text

    target = Path(path)
    if not target.parent.is_dir():
        raise ConfigError(f"cannot write '{target}': folder '{target.parent}' does not exist")
    import os

    link = Path(os.path.relpath(Path(plot).resolve(), target.resolve().parent)).as_posix() if plot is not None else None
    atomic_write_text(target, to_markdown(study, command, link))
    return target


def plot_layer_densities(study: CollapseStudy, path: str | Path) -> Path:
    """Per-layer density (log scale) of each method's sparsest intact mask, at its critical
    compression: where a method puts its last weights before a layer empties (PNG, atomic).

    A method whose critical point was not probed (``critical_x`` = 0: the first grid step
    already collapses) has no line.
    """
    from ticketlab.metrics._plot import new_figure, plain, save_figure

    target = Path(path)
    if not target.parent.is_dir():
        raise ConfigError(f"cannot write '{target}': folder '{target.parent}' does not exist")
    fig = new_figure(max(7.0, 0.45 * len(study.layers) + 2.0), 4.0)
    ax = fig.add_subplot(1, 1, 1)
    xs = list(range(len(study.layers)))
    for res in study.results:
        probe = res.critical_probe
        if probe is None or not probe.layer_kept:
            continue
        dens = [k / n for k, n in zip(probe.layer_kept, study.layer_sizes)]
        ax.plot(xs, dens, marker="o", label=plain(f"{res.method} (10^{res.critical_x:g})"))
    ax.set_yscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels([plain(n.removesuffix(".weight")) for n in study.layers], rotation=60, ha="right", fontsize=8)
    ax.set_xlabel("prunable layer, from input to output")
    ax.set_ylabel("layer density (kept / weights)")
    ax.set_title(plain(f"{study.model} / {study.dataset}: layer density at each method's critical compression"),
                 fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, target)
