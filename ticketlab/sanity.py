"""Sanity checks of a ticket (Frankle et al. 2021, "Pruning Neural Networks at Initialization:
Why are We Missing the Mark?", Sec. 5; Su et al. 2020): does the method's mask carry more than
its layer-wise densities?

:func:`sanity_check` applies each check (a transform of :mod:`ticketlab.transforms`:
``shuffle_layerwise``, ``shuffle_global``, ``invert``, ``reinit``) with each seed, trains the result
as ``ticketlab train`` does (:func:`ticketlab.retraining.train`: same ``weights`` start, training
config and seed), trains the original ticket with the same seeds, and compares the final test
accuracies (:func:`compare_runs`):

* the difference ``d = mean(check) - mean(original)``;
* the threshold ``max(2 * SE, 0.005)``: two standard errors of the difference of two means,
  ``SE = sqrt(s_c^2 / n_c + s_o^2 / n_o)`` with sample standard deviations (0 for a single
  run), and at least half a percentage point;
* the effect ``hurts`` when ``d < -threshold``, ``helps`` when ``d > threshold``, else ``none``;
  the verdict is the check's sentence for "hurts" (e.g. layer-wise shuffling: "the method's
  structure matters") or for the others ("only the layer-wise densities matter"). With fewer than
  :data:`MIN_SEEDS` runs on either side there is no spread to weigh the difference against, and
  the verdict says that none is possible (:data:`NO_VERDICT`).

Every training of a check is the original's training with only the ticket changed: a ``reinit``
check with ``weights="rewind:K"`` trains the fresh draw densely for ``K`` iterations, as the
original's θ0 is. :func:`sanity_many` runs several ticket files in worker processes, each with
``cores // jobs`` torch threads, so that they do not oversubscribe the machine.

Example:
    >>> import ticketlab
    >>> t = ticketlab.mine("snip", density=0.2, seed=0, device="cpu")
    >>> r = sanity_check(t, ["shuffle_layerwise"], seeds=1, train_epochs=1, device="cpu")
    >>> [row.check for row in r.rows], r.rows[0].effect in ("hurts", "none", "helps")
    (['shuffle_layerwise'], True)
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ticketlab.errors import ConfigError
from ticketlab.progress import NullProgress
from ticketlab.ticket import Ticket

#: The checks ``ticketlab sanity`` runs by default.
DEFAULT_CHECKS = ("shuffle_layerwise", "reinit", "invert")
#: The smallest difference of mean accuracies that counts as an effect (0.5 percentage points).
MIN_EFFECT = 0.005
#: Standard errors of the difference beyond which it counts as an effect.
SE_FACTOR = 2.0
#: Runs of a check and of the original that a verdict needs (one run has no spread).
MIN_SEEDS = 2
#: The verdict with fewer than MIN_SEEDS runs.
NO_VERDICT = f"no verdict: one seed shows no spread to weigh the difference against (use {MIN_SEEDS}+ seeds)"

_STRUCTURE, _DENSITIES = "the method's structure matters", "only the layer-wise densities matter"
#: Check -> (verdict when it hurts, verdict otherwise); other transforms use the first row's.
VERDICTS = {
    "shuffle_layerwise": (_STRUCTURE, _DENSITIES),
    "invert": (_STRUCTURE, _DENSITIES),
    "shuffle_global": ("the method's structure or layer-wise densities matter", "only the overall density matters"),
    "reinit": ("the ticket's init weights matter", "the init weights do not matter, only the mask"),
}


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


@dataclass(frozen=True)
class CheckRow:
    """One row of the table: a check's accuracies against the original's (see :func:`compare_runs`)."""

    check: str
    accuracies: tuple[float, ...]
    mean: float
    std: float | None  # sample standard deviation; None for a single run
    original_mean: float
    original_std: float | None
    difference: float  # mean - original_mean
    threshold: float  # max(SE_FACTOR * SE, MIN_EFFECT)
    effect: str  # "hurts", "none" or "helps"
    verdict: str


def compare_runs(check: str, accuracies: Sequence[float], original: Sequence[float]) -> CheckRow:
    """The row of ``check``: the rule of the module docstring, on final test accuracies.

    Example (hand-computed: sample stds sqrt(2e-4) = 0.0141, SE = sqrt(2e-4/2 + 2e-4/2) = 0.0141,
    threshold 2 SE = 0.0283):
        >>> r = compare_runs("shuffle_layerwise", [0.80, 0.82], [0.90, 0.88])
        >>> round(r.difference, 4), round(r.threshold, 4), r.effect, r.verdict
        (-0.08, 0.0283, 'hurts', "the method's structure matters")
        >>> r = compare_runs("shuffle_layerwise", [0.886], [0.90])   # one run each: 0.5 pp, no verdict
        >>> r.effect, r.verdict.split(":")[0]
        ('hurts', 'no verdict')
    """
    if not accuracies or not original:
        raise ConfigError("a sanity check needs at least one run of the check and of the original")
    mean, std = _mean_std(accuracies)
    omean, ostd = _mean_std(original)
    se = math.sqrt((std or 0.0) ** 2 / len(accuracies) + (ostd or 0.0) ** 2 / len(original))
    threshold = max(SE_FACTOR * se, MIN_EFFECT)
    diff = mean - omean
    effect = "hurts" if diff < -threshold else "helps" if diff > threshold else "none"
    hurt, other = VERDICTS.get(check, (_STRUCTURE, _DENSITIES))
    verdict = hurt if effect == "hurts" else other
    if min(len(accuracies), len(original)) < MIN_SEEDS:
        verdict = NO_VERDICT
    return CheckRow(check, tuple(float(a) for a in accuracies), mean, std, omean, ostd, diff, threshold, effect,
                    verdict)


@dataclass
class SanityResult:
    """What :func:`sanity_check` found: the ticket, the original's accuracies, one row per check."""

    ticket: dict[str, Any]  # method, model, dataset, density, seed (and file, when read from one)
    seeds: tuple[int, ...]
    weights: str  # the starting weights of every training (``kept`` before issue 24)
    original: tuple[float, ...]  # the original ticket's final test accuracy per seed
    rows: list[CheckRow]
    train_config: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def kept(self) -> str:
        """Deprecated alias of :attr:`weights`."""
        from ticketlab.deprecation import warn_renamed

        warn_renamed("SanityResult.kept", "SanityResult.weights")
        return self.weights

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON data (``json.dumps(..., allow_nan=False)`` works: a missing value is ``None``).

        Example:
            >>> r = SanityResult({"method": "snip"}, (0,), "init", (0.9,), [compare_runs("invert", [0.5], [0.9])])
            >>> r.to_dict()["rows"][0]["effect"], r.to_dict()["rows"][0]["std"]
            ('hurts', None)
        """
        rows = []
        for r in self.rows:
            d = asdict(r)
            d["accuracies"] = [_finite(a) for a in r.accuracies]
            for key in ("mean", "std", "original_mean", "original_std", "difference", "threshold"):
                d[key] = _finite(d[key])
            rows.append(d)
        return {"ticket": dict(self.ticket), "seeds": list(self.seeds), "weights": self.weights,
                "original": [_finite(a) for a in self.original], "rows": rows,
                "rule": f"effect when |difference| > max({SE_FACTOR:g} standard errors, {MIN_EFFECT * 100:g} pp)",
                "train_config": dict(self.train_config), "seconds": round(self.seconds, 3)}


def _seeds(seeds: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(seeds, bool):
        raise ConfigError(f"seeds must be a count or a list of seeds, not {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"a sanity check needs at least 1 seed, got {seeds}")
        return tuple(range(seeds))
    out = tuple(seeds)
    if not out or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in out):
        raise ConfigError(f"seeds must be non-negative integers, got {list(out)!r}")
    if len(set(out)) != len(out):
        raise ConfigError(f"seeds list a seed twice: {list(out)}")
    return out


def sanity_check(
    ticket: Ticket | str | Path,
    checks: Sequence[str] = DEFAULT_CHECKS,
    seeds: int | Sequence[int] = 3,
    *,
    weights: str = "init",
    train_epochs: int | None = None,
    train_options: Mapping[str, Any] | None = None,
    device: str = "auto",
    data_root: str | Path | None = None,
    progress: NullProgress | None = None,
    kept: str | None = None,
) -> SanityResult:
    """Run ``checks`` on ``ticket`` with each of ``seeds`` (a count: ``0 .. n-1``) and compare them
    with the original ticket trained with the same seeds (module docstring).

    Each seed ``s`` is both the transform's seed and the training seed of every run with it.
    ``weights``, ``train_epochs`` and ``train_options`` are :func:`ticketlab.retraining.train`'s
    (``kept``: the old name of ``weights``, deprecated).

    Example:
        >>> import ticketlab
        >>> t = ticketlab.mine("random", density=0.2, seed=0, device="cpu")
        >>> sanity_check(t, ["reinit"], seeds=[3], train_epochs=1, device="cpu").seeds
        (3,)
    """
    import time

    from ticketlab.deprecation import renamed_kwarg
    from ticketlab.fileformat import load
    from ticketlab.retraining import parse_weights, train
    from ticketlab.transforms import get_transform

    weights = renamed_kwarg("ticketlab.sanity_check", "kept", "weights", kept, weights, "init")

    started = time.perf_counter()
    info: dict[str, Any] = {}
    if not isinstance(ticket, Ticket):
        info["file"] = Path(ticket).name
        ticket = load(ticket)
    checks = list(checks)
    if not checks:
        raise ConfigError("a sanity check needs at least one check (e.g. shuffle_layerwise)")
    if len(set(checks)) != len(checks):
        raise ConfigError(f"checks list a check twice: {', '.join(checks)}")
    transforms = {c: get_transform(c) for c in checks}  # unknown names fail before any training
    parse_weights(weights)
    seed_list = _seeds(seeds)
    for fn in transforms.values():  # a check the ticket cannot take (invert without scores) fails now
        fn(ticket, seed=seed_list[0])
    prov = ticket.provenance
    info.update({k: prov.get(k) for k in ("method", "model", "dataset", "seed")}, density=ticket.density)
    progress = progress or NullProgress()
    accs: dict[str, list[float]] = {c: [] for c in ["original", *checks]}
    config: dict[str, Any] = {}
    opts = dict(weights=weights, train_epochs=train_epochs, train_options=train_options, device=device,
                data_root=data_root, progress=progress)
    with progress.task("sanity: trainings", total=len(seed_list) * (1 + len(checks))) as bar:
        for s in seed_list:
            for name in ["original", *checks]:
                source = ticket if name == "original" else transforms[name](ticket, seed=s)
                trained = train(source, seed=s, **opts)
                accs[name].append(float(trained.provenance["test_accuracy"]))
                config = trained.provenance["trained_from"]["train_config"]
                bar.advance()
    rows = [compare_runs(c, accs[c], accs["original"]) for c in checks]
    return SanityResult(info, seed_list, weights, tuple(accs["original"]), rows, config, time.perf_counter() - started)


def _one(path: str, threads: int | None, kwargs: dict[str, Any]) -> SanityResult:
    """One ticket file's checks in a worker process with ``threads`` torch threads."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    return sanity_check(path, **kwargs)


def sanity_many(paths: Sequence[str | Path], *, jobs: int = 1, threads: int | None = None,
                progress: NullProgress | None = None, done: Callable[[int, SanityResult], None] | None = None,
                **kwargs: Any) -> list[SanityResult]:
    """:func:`sanity_check` of every ticket file in ``paths`` (results in the same order).

    With ``jobs > 1`` the files run in that many spawned worker processes, each with ``threads``
    torch threads (default ``max(1, cores // jobs)``: two workers on two cores use one thread
    each); ``progress`` then counts finished files. ``done(i, result)`` is called as soon as the
    ``i``-th file's result is in (e.g. to save it). ``kwargs`` are :func:`sanity_check`'s.

    Example:
        >>> sanity_many([], jobs=2)
        []
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be a positive integer, not {jobs!r}")
    paths = [str(p) for p in paths]
    progress = progress or NullProgress()
    if jobs == 1 or len(paths) <= 1:
        results = []
        for i, p in enumerate(paths):
            results.append(sanity_check(p, progress=progress, **kwargs))
            if done is not None:
                done(i, results[-1])
        return results
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    out: list[SanityResult | None] = [None] * len(paths)
    with progress.task("sanity: tickets", total=len(paths)) as bar, \
            ProcessPoolExecutor(max_workers=min(jobs, len(paths)), mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_one, p, threads, kwargs): i for i, p in enumerate(paths)}
        for fut in as_completed(futures):
            i = futures[fut]
            out[i] = fut.result()
            if done is not None:
                done(i, out[i])
            bar.advance()
    return [r for r in out if r is not None]
