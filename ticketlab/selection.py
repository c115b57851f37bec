"""Shared mask selection: miners produce scores, this module turns scores into masks.

Rules (the same for every miner):

* **Exact count.** A density ``d`` over ``N`` weights keeps ``count(d, N) = floor(d * N + 1/2)``
  weights (round half up; Python's ``round`` would round half to even). With ``scope="global"``
  ``N`` is the number of prunable weights of the whole model; with ``scope="layer"`` every
  parameter keeps ``count(d, N_l)`` of its own ``N_l`` weights.
* **Highest scores are kept; ties by a seeded draw.** When more alive weights tie at the
  threshold score than places are left, the places go to a uniform random subset of the tied
  weights, drawn with ``torch.randperm`` from ``generator`` (the run's own selection stream;
  without one, a generator seeded with 0, so the same call gives the same mask). No layer and no
  row is favoured by its position. ``ties=`` collects how many weights tied and how many of them
  were kept (:class:`TieRecord`). The result depends only on the scores and the generator's
  state, never on sort internals or the thread count.
* **Masks only shrink.** Weights already pruned (``False`` in ``masks``) are never kept again.
  Asking for more weights than are still alive is an error.
* Non-finite scores of alive weights (NaN, -inf) rank below every finite score.
* **Count rule.** ``count_rule="threshold"`` replaces the exact count by Synaptic-Flow's rule:
  prune every weight scoring at or below the ``int((1 - d) * N)``-th smallest score (pruned
  weights ranked lowest; ties at the threshold all go, as in the reference: no draw).
  ``docs/selection.md`` compares the two.
  Three rules serve the miners' ``protocol="reference"`` (``docs/learned_masks.md``):
  ``"truncated"`` keeps edge-popup's count :func:`keep_count_truncated` and
  ``"truncated_percent"`` Zhou et al.'s :func:`keep_count_truncated_percent` (the supermask
  miner; both with the exact rule's seeded tie draw), and ``"positive"`` keeps every alive weight
  whose score is ``> 0``, whatever the density (:func:`select_above`; Gem-Miner's gem, with the
  miner ranking ``s - 1/2``). :func:`target_count` is the count of every rule, one function for
  the selection, the runner's provenance and the study's checks.
* **Strict thresholds.** :func:`select_above` keeps the alive weights strictly above a value;
  :func:`prune_lowest_strict` prunes the ``c`` lowest alive scores *and every score tied with the
  highest of them* (Gem-Miner's freezing, whose count is :func:`prune_count_ceil`).
* **Speed.** A round needs the k-th largest score, not a sort: a histogram of the scores' top
  16 bits finds its bucket, ``kthvalue`` runs on that bucket only (:func:`_kth_largest`), and the
  flat buffers are reused across rounds (:class:`SelectionBuffers`). The result is the same as
  a full sort under these rules.
* **One ranking.** Together these rules order all weights from first kept to last kept
  (:func:`rank_order`, numpy): :func:`select_top` keeps a prefix of that order and
  :func:`select_bottom` (the sanity checks' inversion) its suffix. The numpy ranking breaks ties
  by position (it serves deterministic transforms of a stored ticket, which has no stream). The module imports torch only inside the torch functions, so the numpy half
  (counts, ranking) serves torch-free code such as :mod:`ticketlab.transforms`.

Example:
    >>> import torch
    >>> scores = {"a": torch.tensor([3.0, 1.0, 2.0]), "b": torch.tensor([2.0, 5.0])}
    >>> m = select_top(scores, 0.4)          # keep round(0.4 * 5) = 2 weights
    >>> [m["a"].tolist(), m["b"].tolist()]
    [[True, False, False], [False, True]]
"""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ticketlab.errors import ConfigError, TicketlabWarning

if TYPE_CHECKING:  # torch is imported inside the functions that use it (see the module docstring)
    import torch

SCOPES = ("global", "layer")
#: How many weights a round keeps: ticketlab's exact count, Synaptic-Flow's threshold rule,
#: edge-popup's truncated count, every positive score (Gem-Miner's gem), or Zhou et al.'s
#: truncated prune percentage (see the docstring).
COUNT_RULES = ("exact", "threshold", "truncated", "positive", "truncated_percent")


def keep_count(density: float, n: int) -> int:
    """Number of weights kept out of ``n`` at ``density``: ``floor(density * n + 0.5)``.

    Example:
        >>> keep_count(0.1, 25), keep_count(0.5, 3), keep_count(1.0, 7)
        (3, 2, 7)
    """
    return min(n, int(math.floor(density * n + 0.5)))


def keep_count_truncated(density: float, n: int) -> int:
    """edge-popup's per-layer count: ``n - int((1 - density) * n)``, the ``int`` truncating the
    number *pruned* (allenai/hidden-networks, ``utils/conv_type.py``, ``GetSubnet.forward``:
    ``j = int((1 - k) * scores.numel())`` lowest set to 0). Floating point shows through:
    ``1 - 0.9`` is ``0.0999...98``, so at density 0.9 ten weights keep all ten.

    Example:
        >>> keep_count_truncated(0.1, 25), keep_count(0.1, 25)
        (3, 3)
        >>> keep_count_truncated(0.9, 10), keep_count(0.9, 10), keep_count_truncated(0.5, 3)
        (10, 9, 2)
    """
    return n - int((1.0 - density) * n)


def keep_count_truncated_percent(density: float, n: int) -> int:
    """Zhou et al.'s per-layer count: ``n - int(n * pp / 100)`` with the prune percentage
    ``pp = (1 - density) * 100`` (uber-research/deconstructing-lottery-tickets,
    ``get_weight_init.py`` l. 100, ``(1 - prune_base ** prune_power) * 100.0``, and l. 47,
    ``prune_num = np.int(np.sum(cur_mask) * percentile / 100)``). The same as
    :func:`keep_count_truncated` but for floating point, which shows through: at density 0.3 a
    layer of 90 keeps 27 here (``90 * 70.0 / 100`` is ``63.0``) and 28 there (``0.7 * 90`` is
    ``62.99...``).

    Example:
        >>> keep_count_truncated_percent(0.3, 90), keep_count_truncated(0.3, 90), keep_count(0.3, 90)
        (27, 28, 27)
        >>> keep_count_truncated_percent(0.8 ** 3, 1000), keep_count(0.8 ** 3, 1000)  # pp = 48.79999999999999
        (513, 512)
    """
    return n - int(n * ((1.0 - density) * 100.0) / 100)


def target_count(density: float, n: int, count_rule: str = "exact") -> int:
    """The number of weights out of ``n`` that a selection at ``density`` aims for under
    ``count_rule``: :func:`keep_count_truncated` (``"truncated"``),
    :func:`keep_count_truncated_percent` (``"truncated_percent"``), else :func:`keep_count`
    (``"exact"``; for ``"threshold"`` and ``"positive"`` the nominal count, which the scores may
    not reach).

    Example:
        >>> target_count(0.3, 90), target_count(0.3, 90, "truncated"), target_count(0.3, 90, "truncated_percent")
        (27, 28, 27)
    """
    if count_rule == "truncated":
        return keep_count_truncated(density, n)
    if count_rule == "truncated_percent":
        return keep_count_truncated_percent(density, n)
    return keep_count(density, n)


def density_for_count(k: int, n: int, count_rule: str = "exact") -> float:
    """A density in (0, 1] whose :func:`target_count` over ``n`` weights is exactly ``k``
    (``0 <= k <= n``): ``k / n`` where that gives ``k``, else the nearest float that does (the
    truncating rules can miss ``k / n`` by one). A per-layer target made from a fixed mask
    (a threshold or a sign mask) keeps exactly that mask's count under any rule.

    Example:
        >>> density_for_count(27, 90, "truncated"), density_for_count(0, 10), density_for_count(10, 10)
        (0.29999999999999993, 5e-324, 1.0)
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n:
        raise ConfigError(f"cannot keep {k!r} of {n} weights")
    d = max(k / n, math.ulp(0.0))
    for _ in range(4096):  # the rules miss k / n by rounding only: a few ulps at most
        got = target_count(d, n, count_rule)
        if got == k:
            return d
        d = math.nextafter(d, 0.0 if got > k else 2.0)
        if d <= 0.0 or d > 1.0:
            break
    raise ConfigError(f"no density keeps exactly {k} of {n} weights under count rule '{count_rule}'")


def prune_count_ceil(rate: float, n: int) -> int:
    """Gem-Miner's per-event count of weights to freeze out: ``ceil(rate * n)`` of the ``n``
    active ones (ksreenivasan/pruning_is_enough, ``utils/net_utils.py``, ``prune``, BottomK:
    ``np.ceil(parser_args.prune_rate * num_active_weights)``). At a constant rate the counts
    compound, and floating point shows through: ``0.07 * 100`` is ``7.000000000000001``.

    Example:
        >>> prune_count_ceil(0.07, 100), prune_count_ceil(0.25, 10), prune_count_ceil(0.5, 7)
        (8, 3, 4)
    """
    return int(math.ceil(rate * n))


def check_density(density: float) -> float:
    """Validate a density (fraction kept) in (0, 1]; raise :class:`ConfigError` otherwise."""
    if not isinstance(density, (int, float)) or math.isnan(density) or not 0.0 < density <= 1.0:
        raise ConfigError(f"density must be in (0, 1], got {density}")
    return float(density)


def density_from(density: float | None = None, sparsity: float | None = None) -> float:
    """The density asked for, from exactly one of ``density`` (kept) and ``sparsity`` (removed).

    Example:
        >>> density_from(sparsity=0.8)
        0.19999999999999996
    """
    if density is not None and sparsity is not None:
        raise ConfigError("give either a density or a sparsity, not both")
    if sparsity is not None:
        if isinstance(sparsity, bool) or math.isnan(sparsity) or not 0.0 <= sparsity < 1.0:
            raise ConfigError(f"sparsity must be in [0, 1), got {sparsity}")
        return 1.0 - float(sparsity)
    if density is None:
        raise ConfigError("give a density (fraction kept) or a sparsity (fraction removed)")
    return check_density(density)


@dataclass(frozen=True)
class TieRecord:
    """One selection where scores tied at the threshold and a seeded draw chose among them.

    ``where`` is the parameter name (layer scope) or ``None`` (one ranking over all parameters);
    ``tied`` alive weights had the threshold score and competed for the ``kept`` places left
    after every higher score was kept (``0 < kept < tied``). With the threshold count rule no
    draw happens: the ``tied`` weights at the threshold are all pruned (``kept == 0``)."""

    where: str | None
    tied: int
    kept: int


#: A selection whose tie draws chose more than this share of its kept weights is reported.
TIE_WARN_SHARE = 0.01


def tie_columns(ties: list[TieRecord]) -> dict[str, int]:
    """A history row's tie columns: ``tied`` scores at the selection threshold (summed over the
    rankings of the round) and how many of them the draw kept (``tied_kept``; 0 under the
    threshold count rule, which prunes them all)."""
    return {"tied": sum(t.tied for t in ties), "tied_kept": sum(t.kept for t in ties)}


def warn_ties(row: dict[str, Any], label: str) -> None:
    """Warn in one line when a seeded tie draw chose more than :data:`TIE_WARN_SHARE` of the
    weights that ``row`` (with ``kept``, ``tied``, ``tied_kept``) kept."""
    kept, drawn = row.get("kept", 0), row.get("tied_kept", 0)
    if kept and drawn > TIE_WARN_SHARE * kept:
        warnings.warn(f"{label}: {drawn} of {kept} kept weights ({drawn / kept:.1%}) were drawn at random among "
                      f"{row['tied']} scores tied at the threshold (a seeded draw, not the scores, chose them)",
                      TicketlabWarning, stacklevel=2)


def tie_generator(generator: torch.Generator | None) -> torch.Generator:
    """``generator``, or a fresh CPU generator seeded with 0 (the documented default stream)."""
    import torch

    return generator if generator is not None else torch.Generator().manual_seed(0)


def _top_k_flat(x: torch.Tensor, k: int, thresh: torch.Tensor | None = None,
                generator: torch.Generator | None = None, ties: list[TieRecord] | None = None,
                where: str | None = None) -> torch.Tensor:
    """Boolean mask of the ``k`` largest entries of 1-D ``x``, ties by a draw from ``generator``. O(n).

    ``thresh``, when the caller already knows it, must be the ``k``-th largest value of ``x``
    (e.g. edge-popup's incremental search); it saves the selection pass. The exact rule's
    :func:`_keep_top` with every entry alive."""
    import torch

    n = x.numel()
    keep = torch.empty(n, dtype=torch.bool, device=x.device)
    _keep_top(x, min(max(k, 0), n), None, n, keep, SelectionBuffers(), thresh=thresh,
              generator=tie_generator(generator), ties=ties, where=where)
    return keep


class SelectionBuffers:
    """Work buffers that :func:`select_top` reuses from one call to the next (one per run).

    A round of a long schedule ranks every prunable weight again; allocating its ~N-element
    buffers afresh each round costs more than filling them (page faults). Pass one instance to
    every call of a run (:func:`ticketlab.mining.mine` does); the results never depend on it.
    """

    def __init__(self) -> None:
        self._store: dict[tuple[str, Any, str], torch.Tensor] = {}

    def get(self, kind: str, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """A flat buffer of at least ``n`` elements (contents undefined), grown when too small."""
        import torch

        key = (kind, dtype, str(device))
        t = self._store.get(key)
        if t is None or t.numel() < n:
            t = self._store[key] = torch.empty(n, dtype=dtype, device=device)
        return t[:n]


def _common_dtype(scores: list[torch.Tensor]) -> torch.dtype:
    """One dtype that ranks every score exactly as its own dtype does (conversions are exact)."""
    import torch

    dtypes = {s.dtype for s in scores}
    if dtypes <= {torch.float32, torch.float16, torch.bfloat16}:
        return torch.float32  # float16 / bfloat16 -> float32 is exact
    return torch.float64  # float64, mixed float64/float32, or integers (as before: float64)


def _gather(scores: list[torch.Tensor], masks: list[torch.Tensor] | None, device: torch.device,
            buffers: SelectionBuffers) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, int]:
    """The scores, flattened in order into one reused buffer (NaN -> -inf), as ``(x, alive, idx,
    n_alive)``: ``alive`` flags ``x``'s entries (``None``: all alive) and ``idx`` is ``None``;
    or, in late rounds (fewer than a quarter alive), ``x`` holds only the alive scores, in order,
    ``idx`` their flat positions and ``alive`` is ``None``.

    Pruned weights keep their score in a full buffer: the selection excludes them with ``alive``
    (an int multiply and a bool and), which is cheaper than overwriting them with -inf."""
    import torch

    n = sum(s.numel() for s in scores)
    dtype = _common_dtype(scores)
    alive, idx, n_alive = None, None, n
    if masks is not None:
        alive = buffers.get("alive", n, torch.bool, device)
        offset = 0
        for s, m in zip(scores, masks):
            if m.shape != s.shape:
                raise ConfigError(f"a mask of shape {tuple(m.shape)} does not fit scores of shape {tuple(s.shape)}")
            alive[offset: offset + s.numel()].copy_(m.reshape(-1))
            offset += s.numel()
        n_alive = int(torch.count_nonzero(alive))
        if n_alive == n:
            alive = None
    if alive is not None and 4 * n_alive < n:
        idx = torch.nonzero(alive, as_tuple=False).flatten()  # ascending: ties keep their order
        buf = buffers.get("scores", n_alive, dtype, device)
        offset, start = 0, 0
        for s in scores:
            stop = start + int(torch.count_nonzero(alive[offset: offset + s.numel()]))
            torch.index_select(s.detach().reshape(-1).to(dtype), 0, idx[start:stop] - offset, out=buf[start:stop])
            offset, start = offset + s.numel(), stop
        alive = None
    else:
        buf = buffers.get("scores", n, dtype, device)
        offset = 0
        for s in scores:
            buf[offset: offset + s.numel()].copy_(s.detach().reshape(-1))
            offset += s.numel()
    # NaN -> -inf: both non-finite kinds then rank below every finite score, the float minimum
    # included, and tie among themselves (a seeded draw, as every tie)
    buf.nan_to_num_(nan=-math.inf, posinf=math.inf, neginf=-math.inf)
    return buf, alive, idx, n_alive


def _flatten(scores: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor] | None, buffers: SelectionBuffers
             ) -> tuple[list[str], torch.device, list[torch.Tensor], tuple[Any, ...]]:
    """Check that ``masks`` covers ``scores``, then ``(names, device, tensors, _gather(...))``: the
    scores on one device (their own, or the CPU when they are spread) gathered into one buffer."""
    import torch

    if masks is not None and set(masks) != set(scores):
        missing = sorted(set(scores) ^ set(masks))
        raise ConfigError(f"scores and masks cover different parameters (first difference: '{missing[0]}')")
    names = list(scores)
    devices = {s.device for s in scores.values()}
    device = devices.pop() if len(devices) == 1 else torch.device("cpu")
    tensors = [scores[n].to(device) for n in names]
    return names, device, tensors, _gather(tensors, None if masks is None else [masks[n].to(device) for n in names],
                                           device, buffers)


#: Below this many scores a plain ``kthvalue`` is as fast as the bucket pass.
_RADIX_MIN = 1 << 16
_BUCKET_ORDER: dict[str, torch.Tensor] = {}


def _bucket_order(device: torch.device) -> torch.Tensor:
    """Buckets 1..65536 (a float's top 16 bits, as a signed int, plus 32769) from the highest
    values to the lowest: non-negative floats by falling bits, then negative ones by rising bits
    (a negative float's magnitude grows with its bits). Bucket 0 (pruned) is never ranked."""
    import torch

    key = str(device)
    if key not in _BUCKET_ORDER:
        _BUCKET_ORDER[key] = torch.cat([torch.arange(65536, 32768, -1), torch.arange(1, 32769)]).to(device)
    return _BUCKET_ORDER[key]


def _kth_largest(x: torch.Tensor, r: int, alive: torch.Tensor | None, buffers: SelectionBuffers) -> torch.Tensor:
    """The ``r``-th largest alive value of ``x`` (see :func:`_kth_search`)."""
    return _kth_search(x, r, alive, buffers)[0]


def _kth_search(x: torch.Tensor, r: int, alive: torch.Tensor | None, buffers: SelectionBuffers,
                count_equal: bool = False) -> tuple[torch.Tensor, int | None]:
    """The ``r``-th largest value (1-based) of ``x`` among the alive entries; ``x`` has no NaN and
    ``1 <= r <= #alive``. O(n): one histogram of the values' top 16 bits finds the bucket that holds
    the answer, then an exact ``kthvalue`` runs over that bucket's few values only.

    The bucket order refines the order of values (-0.0 and +0.0 fall in neighbouring buckets), so
    the ``r``-th element in it has the ``r``-th largest value; ties are the caller's business.
    With ``count_equal`` the second item is the number of alive entries equal to that value,
    counted where it costs nothing extra (the bucket, or the small direct case); ``None`` when the
    value is zero in the bucket pass (-0.0 and +0.0 are equal but in two buckets) or not asked."""
    import torch

    n = x.numel()
    if n < _RADIX_MIN or x.dtype not in (torch.float32, torch.float64) or x.device.type not in ("cpu", "cuda"):
        v = x if alive is None else x[alive]
        v = v.cpu() if v.device.type == "mps" else v
        value = torch.kthvalue(v, v.numel() - r + 1).values
        return value.to(x.device), (int(torch.count_nonzero(v == value)) if count_equal else None)
    step = x.element_size() // 2  # int16 words per value; the top word holds sign, exponent, top mantissa
    top = x.view(torch.int16)[(step - 1 if sys.byteorder == "little" else 0)::step]
    bucket = buffers.get("bucket", n, torch.int32, x.device)
    bucket.copy_(top).add_(32769)  # 1..65536
    if alive is not None:  # pruned -> bucket 0, never reached (r <= #alive)
        flags = buffers.get("alive_int", n, torch.int32, x.device)
        bucket.mul_(flags.copy_(alive))
    order = _bucket_order(x.device)
    cum = torch.bincount(bucket, minlength=65537)[order].cumsum(0)
    j = int(torch.searchsorted(cum, r))  # the first bucket, from the top, that reaches rank r
    above = int(cum[j - 1]) if j > 0 else 0
    candidates = x[bucket == order[j]]
    value = torch.kthvalue(candidates, candidates.numel() - (r - above) + 1).values
    known = count_equal and bool(value != 0)
    return value, (int(torch.count_nonzero(candidates == value)) if known else None)


def _keep_alive(out: torch.Tensor, alive: torch.Tensor | None) -> None:
    """Write into ``out`` a mask that keeps every alive weight."""
    if alive is None:
        out.fill_(True)
    else:
        out.copy_(alive)


def _draw_ties(tie: torch.Tensor, missing: int, out: torch.Tensor, generator: torch.Generator) -> int:
    """Set ``missing`` of the ``True`` entries of ``tie`` in ``out``: a uniform random subset, the
    first ``missing`` of ``torch.randperm(#tied, generator=generator)`` over the tied positions in
    ascending order (so the draw does not depend on where the scores live). Returns ``#tied``."""
    import torch

    positions = torch.nonzero(tie, as_tuple=False).flatten()
    pick = torch.randperm(positions.numel(), generator=generator)[:missing]
    out[positions[pick.to(positions.device)]] = True
    return positions.numel()


def _keep_top(x: torch.Tensor, k: int, alive: torch.Tensor | None, n_alive: int, out: torch.Tensor,
              buffers: SelectionBuffers, thresh: torch.Tensor | None = None, *,
              generator: torch.Generator, ties: list[TieRecord] | None = None, where: str | None = None) -> None:
    """Write into ``out`` (bool, like ``x``) the ``k`` alive entries of ``x`` with the highest
    values (the exact rule); the places left at the threshold go to a seeded draw among the tied
    entries (:func:`_draw_ties`), recorded in ``ties``. ``thresh``, when given, must be the
    ``k``-th largest alive value."""
    import torch

    if k <= 0:
        out.zero_()
        return
    if k >= n_alive:  # every alive weight (the caller has checked k <= #alive)
        _keep_alive(out, alive)
        return
    if thresh is None:
        thresh = _kth_largest(x, k, alive, buffers)
    torch.ge(x, thresh, out=out)
    if alive is not None:
        out.logical_and_(alive)
    if int(torch.count_nonzero(out)) == k:  # no tie at the threshold: the common case
        return
    torch.gt(x, thresh, out=out)
    if alive is not None:
        out.logical_and_(alive)
    missing = k - int(torch.count_nonzero(out))
    tie = x == thresh
    if alive is not None:
        tie.logical_and_(alive)
    tied = _draw_ties(tie, missing, out, generator)  # no position decides (issue 21)
    if ties is not None:
        ties.append(TieRecord(where, tied, missing))


def _keep_above_threshold(x: torch.Tensor, density: float, n: int, alive: torch.Tensor | None, n_alive: int,
                          out: torch.Tensor, buffers: SelectionBuffers, ties: list[TieRecord] | None = None,
                          where: str | None = None) -> None:
    """Write into ``out`` the Synaptic-Flow rule's mask (``count_rule="threshold"``): over all
    ``n`` weights, with the pruned ones ranked lowest, ``t`` is the ``int((1 - density) * n)``-th
    smallest score and every weight ``<= t`` is pruned; fewer than one to prune keeps all alive.
    ``x`` holds all ``n`` scores, or only the alive ones (then ``alive`` is ``None``)."""
    import torch

    prune = int((1.0 - density) * n)  # truncation, as the reference's k
    r = n - prune + 1  # the pruning threshold is the r-th largest of all n (pruned ones lowest)
    if prune < 1 or r > n_alive:  # the threshold falls among the pruned: nothing alive is <= it
        _keep_alive(out, alive)
        return
    t, tied = _kth_search(x, r, alive, buffers, count_equal=ties is not None)
    torch.gt(x, t, out=out)
    if alive is not None:
        out.logical_and_(alive)
    if ties is not None:  # the threshold's own weight plus any tied with it, all pruned
        if tied is None:  # a zero threshold: count over all (its -0.0 and +0.0 sit in two buckets)
            tie = x == t
            if alive is not None:
                tie.logical_and_(alive)
            tied = int(torch.count_nonzero(tie))
        if tied > 1:
            ties.append(TieRecord(where, tied, 0))


def select_top(
    scores: Mapping[str, torch.Tensor],
    density: float,
    *,
    scope: str = "global",
    masks: Mapping[str, torch.Tensor] | None = None,
    count_rule: str = "exact",
    buffers: SelectionBuffers | None = None,
    generator: torch.Generator | None = None,
    ties: list[TieRecord] | None = None,
) -> dict[str, torch.Tensor]:
    """Keep the highest-scoring weights at ``density`` (see the module docstring for the rules).

    Args:
        scores: parameter name -> score tensor (higher = more important).
        density: fraction of weights to keep, in (0, 1]; counted over all prunable weights
            (``scope="global"``) or over each parameter (``scope="layer"``).
        scope: ``"global"`` or ``"layer"``.
        masks: current masks; pruned weights stay pruned. ``None`` means all alive.
        count_rule: ``"exact"`` (ticketlab's rule: exactly :func:`keep_count` weights, ties by a
            seeded draw), ``"threshold"`` (Synaptic-Flow's: prune every weight scoring at or below
            the ``int((1 - density) * N)``-th smallest score, pruned weights ranked lowest; see
            ``docs/selection.md``), ``"truncated"`` / ``"truncated_percent"`` (exactly
            :func:`keep_count_truncated` / :func:`keep_count_truncated_percent` weights, ties as
            ``"exact"``) or ``"positive"`` (every alive weight scoring ``> 0``; ``density`` is then
            only validated).
        buffers: work buffers to reuse across calls (:class:`SelectionBuffers`); speed only.
        generator: the CPU ``torch.Generator`` that draws among tied scores (a run passes its
            selection stream); ``None``: a generator seeded with 0, drawn afresh in every call.
        ties: a list that gets one :class:`TieRecord` per ranking (the whole model, or each
            parameter) whose threshold was tied.

    Returns:
        parameter name -> boolean mask, on each score's device.
    """
    import torch

    check_density(density)
    if scope not in SCOPES:
        raise ConfigError(f"scope must be one of {', '.join(SCOPES)}, got '{scope}'")
    check_count_rule(count_rule)
    buffers = buffers if buffers is not None else SelectionBuffers()
    generator = tie_generator(generator)
    names, device, tensors, (x, alive, idx, n_alive) = _flatten(scores, masks, buffers)
    kept = torch.empty(x.numel(), dtype=torch.bool, device=device)  # x's flags; fresh every call

    def check(k: int, available: int, where: str) -> None:
        if k > available:
            raise ConfigError(
                f"cannot keep {k} weights{where}: only {available} are still unpruned "
                "(masks only shrink; ask for a lower density)"
            )

    def select(a: int, b: int, size: int, where: str, name: str | None) -> None:
        """Select among x[a:b], the scores of ``size`` weights (all of them, or the alive ones)."""
        seg_alive = None if alive is None else alive[a:b]
        live = (b - a) if seg_alive is None else int(torch.count_nonzero(seg_alive))
        if count_rule == "threshold":
            _keep_above_threshold(x[a:b], density, size, seg_alive, live, kept[a:b], buffers, ties, name)
            return
        if count_rule == "positive":  # the scores decide the count; the density is a target only
            torch.gt(x[a:b], 0, out=kept[a:b])
            if seg_alive is not None:
                kept[a:b].logical_and_(seg_alive)
            return
        k = target_count(density, size, count_rule)
        check(k, live, where)
        _keep_top(x[a:b], k, seg_alive, live, kept[a:b], buffers, generator=generator, ties=ties, where=name)

    bounds, offset = [], 0
    for t in tensors:
        bounds.append((offset, offset + t.numel()))
        offset += t.numel()
    if scope == "layer":
        start = 0
        for n, (a, b) in zip(names, bounds):  # x's segment of parameter n
            stop = b if idx is None else start + int(torch.count_nonzero((idx >= a) & (idx < b)))
            select(a if idx is None else start, stop, b - a, f" of '{n}'", n)
            start = stop
    else:  # alive weights in parameter order, each in flat order (the order the tie draw sees)
        select(0, x.numel(), offset, "", None)
    keep = kept
    if idx is not None:  # late rounds: back from the alive ones to all positions
        keep = torch.zeros(offset, dtype=torch.bool, device=device)
        keep[idx] = kept
    return {n: keep[a:b].view(scores[n].shape).to(scores[n].device) for n, (a, b) in zip(names, bounds)}


def select_target(
    scores: Mapping[str, torch.Tensor],
    target: float | Mapping[str, float],
    *,
    scope: str = "global",
    masks: Mapping[str, torch.Tensor] | None = None,
    count_rule: str = "exact",
    buffers: SelectionBuffers | None = None,
    generator: torch.Generator | None = None,
    ties: list[TieRecord] | None = None,
) -> dict[str, torch.Tensor]:
    """One round's selection: :func:`select_top` at one density over ``scope``, or, when
    ``target`` maps every parameter name to a density, each parameter ranked on its own at its
    density (layer-wise), in the order of ``scores``, all drawing their ties from ``generator``.
    The runner's rounds and the supermask miner's sweep both select through it, so a swept point
    and the round that keeps it draw the same ties.

    Example:
        >>> import torch
        >>> m = select_target({"a": torch.tensor([3.0, 1.0]), "b": torch.tensor([1.0, 2.0, 3.0])}, {"a": 0.5, "b": 1.0})
        >>> [m["a"].tolist(), m["b"].tolist()]
        [[True, False], [True, True, True]]
    """
    kw: dict[str, Any] = {"count_rule": count_rule, "buffers": buffers, "generator": generator, "ties": ties}
    if not isinstance(target, Mapping):
        return select_top(scores, target, scope=scope, masks=masks, **kw)
    if set(target) != set(scores):
        raise ConfigError(f"a per-layer target does not match the scored parameters "
                          f"('{sorted(set(target) ^ set(scores))[0]}')")
    out: dict[str, torch.Tensor] = {}
    for n in scores:  # per-parameter densities: each parameter ranked on its own (layer-wise)
        out.update(select_top({n: scores[n]}, target[n], scope="layer",
                              masks=None if masks is None else {n: masks[n]}, **kw))
    return out


def select_above(
    scores: Mapping[str, torch.Tensor], threshold: float | torch.Tensor, *,
    masks: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Keep the alive weights whose score is *strictly* above ``threshold``: a score equal to it
    goes, however many tie there (NaN never passes). No count is enforced: the mask may be empty.

    Gem-Miner's gem is ``select_above(s, 0.5, masks=flags)`` (the reference's rounding
    ``torch.gt(scores, 0.5)`` times the flag, ``utils/net_utils.py`` ``round_model`` and
    ``get_layer_sparsity``).

    Example:
        >>> import torch
        >>> m = select_above({"a": torch.tensor([0.5, 0.7, 1.0])}, 0.5,
        ...                  masks={"a": torch.tensor([True, True, False])})
        >>> m["a"].tolist()
        [False, True, False]
    """
    if masks is not None and set(masks) != set(scores):
        missing = sorted(set(scores) ^ set(masks))
        raise ConfigError(f"scores and masks cover different parameters (first difference: '{missing[0]}')")
    out = {}
    for n, s in scores.items():
        keep = s.detach() > (threshold.to(s.device) if hasattr(threshold, "to") else threshold)
        if masks is not None:
            m = masks[n].to(s.device)
            if m.shape != s.shape:
                raise ConfigError(f"a mask of shape {tuple(m.shape)} does not fit scores of shape {tuple(s.shape)}")
            keep &= m
        out[n] = keep
    return out


def prune_lowest_strict(
    scores: Mapping[str, torch.Tensor], prune: int, *, masks: Mapping[str, torch.Tensor] | None = None,
    buffers: SelectionBuffers | None = None,
) -> tuple[dict[str, torch.Tensor], float]:
    """Prune the ``prune`` lowest alive scores (all parameters ranked together) and every alive
    score equal to the highest of them: the threshold ``t`` is the ``prune``-th smallest alive
    score and the kept weights are the alive ones ``> t`` (:func:`select_above`). With ties at
    ``t`` more than ``prune`` go, possibly all of them. Returns ``(masks, t)``.

    This is Gem-Miner's freezing event (ksreenivasan/pruning_is_enough, ``utils/net_utils.py``,
    ``prune``, BottomK: ``torch.sort(abs(active)).values[k - 1]``, then
    ``flag & gt(abs(scores), threshold)``); its count is :func:`prune_count_ceil`.

    Example:
        >>> import torch
        >>> m, t = prune_lowest_strict({"a": torch.tensor([0.2, 1.0, 0.1, 1.0]), "b": torch.tensor([1.0, 0.4])}, 3)
        >>> t, m["a"].tolist(), m["b"].tolist()   # 3 asked, 0.1 0.2 0.4 go; no tie at 0.4
        (0.4000000059604645, [False, True, False, True], [True, False])
        >>> m, t = prune_lowest_strict({"a": torch.tensor([0.2, 1.0, 0.1, 1.0]), "b": torch.tensor([1.0, 0.4])}, 4)
        >>> t, m["a"].tolist(), m["b"].tolist()   # the 4th smallest is 1.0: all three 1.0s go too
        (1.0, [False, False, False, False], [False, False])
    """
    import torch

    buffers = buffers if buffers is not None else SelectionBuffers()
    names, device, tensors, (x, alive, _, n_alive) = _flatten(scores, masks, buffers)
    if isinstance(prune, bool) or not isinstance(prune, int) or not 1 <= prune <= n_alive:
        raise ConfigError(f"cannot prune {prune!r} of {n_alive} unpruned weights (between 1 and all of them)")
    thresh = _kth_largest(x, n_alive - prune + 1, alive, buffers)  # the prune-th smallest alive
    return select_above(scores, thresh, masks=masks), float(thresh)


def check_count_rule(count_rule: str) -> str:
    """Validate a count rule (:data:`COUNT_RULES`); raise :class:`ConfigError` otherwise."""
    if count_rule not in COUNT_RULES:
        raise ConfigError(f"count rule must be one of {', '.join(COUNT_RULES)}, got '{count_rule}'")
    return count_rule


def rank_order(scores: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Flat (C-order) positions of ``scores`` from the first weight kept to the last: higher score
    first, NaN and -inf last. numpy, no torch. Equal scores are ordered by a uniform random
    permutation from ``rng`` (so no position is favoured), or by position when ``rng`` is ``None``
    (kept for callers that must reproduce a stored order).

    Example:
        >>> rank_order(np.array([1.0, 3.0, np.nan, 1.0, -np.inf])).tolist()
        [1, 0, 3, 2, 4]
        >>> sorted(rank_order(np.zeros(4), np.random.default_rng(0)).tolist())
        [0, 1, 2, 3]
    """
    x = np.asarray(scores, dtype=np.float64).ravel()
    x = np.where(np.isnan(x), -np.inf, x)  # NaN and -inf tie at the bottom, as in select_top
    if rng is None:
        return np.argsort(-x, kind="stable")  # stable: equal scores stay in position order
    return np.lexsort((rng.permutation(x.size), -x))  # by -x, equal ones by a random key


def select_bottom(scores: Mapping[str, np.ndarray], kept: int | Mapping[str, int],
                  rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Keep the *lowest-ranked* weights: the last ``kept`` of :func:`rank_order`'s order (numpy).

    ``kept`` is one count over all parameters (in order, as ``scope="global"``) or a count per
    parameter (each ranked on its own). Among equal scores the order is a random permutation from
    ``rng`` (one draw over all parameters, or one per parameter in order), or by position when
    ``rng`` is ``None`` (the later positions rank lowest: then the kept set is exactly the
    complement of what a positional top-k keeps at the remaining count). Ranking is by order,
    never by ``1/score`` (which would misorder signed scores such as GraSP's).

    Example:
        >>> m = select_bottom({"a": np.array([3.0, 1.0, 2.0]), "b": np.array([2.0, 5.0])}, 2)
        >>> [m["a"].tolist(), m["b"].tolist()]
        [[False, True, False], [True, False]]
    """
    names = list(scores)
    arrays = {n: np.asarray(scores[n]) for n in names}

    def bottom(x: np.ndarray, k: int, where: str) -> np.ndarray:
        if isinstance(k, bool) or int(k) != k or not 0 <= k <= x.size:
            raise ConfigError(f"cannot keep {k} weights{where}: a count must be between 0 and {x.size}")
        keep = np.zeros(x.size, dtype=np.bool_)
        keep[rank_order(x, rng)[x.size - int(k):]] = True
        return keep

    if not isinstance(kept, Mapping):
        flat = bottom(np.concatenate([arrays[n].ravel() for n in names]), kept, "")
        out, offset = {}, 0
        for n in names:
            out[n] = flat[offset: offset + arrays[n].size].reshape(arrays[n].shape)
            offset += arrays[n].size
        return out
    if set(kept) != set(names):
        raise ConfigError(f"counts and scores cover different parameters (first difference: "
                          f"'{sorted(set(kept) ^ set(names))[0]}')")
    return {n: bottom(arrays[n], kept[n], f" of '{n}'").reshape(arrays[n].shape) for n in names}


def exponential_schedule(density: float, rounds: int) -> list[float]:
    """Per-round densities ``density ** (k / rounds)`` for k = 1..rounds (Tanaka et al. 2020, Sec. 5).

    Example:
        >>> [round(d, 4) for d in exponential_schedule(0.01, 2)]
        [0.1, 0.01]
    """
    check_density(density)
    if rounds < 1:
        raise ConfigError(f"rounds must be at least 1, got {rounds}")
    return [density ** (k / rounds) for k in range(1, rounds + 1)]
