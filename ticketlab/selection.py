"""Shared mask selection: miners produce scores, this module turns scores into masks.

Rules (the same for every miner):

* **Exact count.** A density ``d`` over ``N`` weights keeps ``count(d, N) = floor(d * N + 1/2)``
  weights (round half up; Python's ``round`` would round half to even). With ``scope="global"``
  ``N`` is the number of prunable weights of the whole model; with ``scope="layer"`` every
  parameter keeps ``count(d, N_l)`` of its own ``N_l`` weights.
* **Highest scores are kept.** Ties are broken by position: the earlier parameter (in
  ``named_parameters()`` order) and, within a parameter, the lower flat (C-order) index is kept
  first. The result therefore depends only on the scores, never on sort internals.
* **Masks only shrink.** Weights already pruned (``False`` in ``masks``) are never kept again.
  Asking for more weights than are still alive is an error.
* Non-finite scores of alive weights (NaN, -inf) rank below every finite score.
* **One ranking.** Together these rules order all weights from first kept to last kept
  (:func:`rank_order`, numpy): :func:`select_top` keeps a prefix of that order and
  :func:`select_bottom` (the sanity checks' inversion) its suffix, so the two complement each
  other exactly. The module imports torch only inside the torch functions, so the numpy half
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
from typing import TYPE_CHECKING, Mapping

import numpy as np

from ticketlab.errors import ConfigError

if TYPE_CHECKING:  # torch is imported inside the functions that use it (see the module docstring)
    import torch

SCOPES = ("global", "layer")


def keep_count(density: float, n: int) -> int:
    """Number of weights kept out of ``n`` at ``density``: ``floor(density * n + 0.5)``.

    Example:
        >>> keep_count(0.1, 25), keep_count(0.5, 3), keep_count(1.0, 7)
        (3, 2, 7)
    """
    return min(n, int(math.floor(density * n + 0.5)))


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


def _top_k_flat(x: torch.Tensor, k: int, thresh: torch.Tensor | None = None) -> torch.Tensor:
    """Boolean mask of the ``k`` largest entries of 1-D ``x``, ties to the lower index. O(n).

    ``thresh``, when the caller already knows it, must be the ``k``-th largest value of ``x``
    (e.g. edge-popup's incremental search); it saves the selection pass."""
    import torch

    n = x.numel()
    keep = torch.zeros(n, dtype=torch.bool, device=x.device)
    if k <= 0:
        return keep
    if k >= n:
        return keep.fill_(True)
    if thresh is None:  # k-th largest value = (n - k + 1)-th smallest (kthvalue is linear-time selection)
        thresh = torch.kthvalue(x.cpu() if x.device.type == "mps" else x, n - k + 1).values.to(x.device)
    at_least = x >= thresh
    if int(at_least.sum()) == k:  # no tie at the threshold: exactly the k largest (the common case)
        return at_least
    greater = x > thresh
    keep |= greater
    missing = k - int(greater.sum())
    if missing > 0:
        ties = torch.nonzero(x == thresh, as_tuple=False).flatten()[:missing]
        keep[ties] = True
    return keep


def _prepared(score: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Float64 scores of the unpruned weights only (NaN -> -inf) and their flat
    positions (``None``: all alive). Pruned weights can never be kept, so leaving them out of the
    ranking changes no result, and late rounds of a long schedule rank few weights."""
    import torch

    x = score.detach().flatten()
    pos = None
    if mask is not None:
        if mask.shape != score.shape:
            raise ConfigError(f"a mask of shape {tuple(mask.shape)} does not fit scores of shape {tuple(score.shape)}")
        m = mask.flatten().to(x.device)
        if not bool(m.all()):
            pos = torch.nonzero(m, as_tuple=False).flatten()
            x = x[pos]
    # NaN -> -inf: both non-finite kinds then rank below every finite score, the float64 minimum
    # included, and tie among themselves (lower position first, as every tie)
    x = x.to(torch.float64)
    return x.masked_fill(torch.isnan(x), -math.inf), pos


def _scatter(keep: torch.Tensor, pos: torch.Tensor | None, shape: torch.Size) -> torch.Tensor:
    """Place the kept flags of the alive weights back at their positions in a full mask."""
    import torch

    if pos is None:
        return keep.view(shape)
    full = torch.zeros(shape.numel(), dtype=torch.bool, device=keep.device)
    full[pos] = keep
    return full.view(shape)


def select_top(
    scores: Mapping[str, torch.Tensor],
    density: float,
    *,
    scope: str = "global",
    masks: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Keep the highest-scoring weights at ``density`` (see the module docstring for the rules).

    Args:
        scores: parameter name -> score tensor (higher = more important).
        density: fraction of weights to keep, in (0, 1]; counted over all prunable weights
            (``scope="global"``) or over each parameter (``scope="layer"``).
        scope: ``"global"`` or ``"layer"``.
        masks: current masks; pruned weights stay pruned. ``None`` means all alive.

    Returns:
        parameter name -> boolean mask, on each score's device.
    """
    import torch

    check_density(density)
    if scope not in SCOPES:
        raise ConfigError(f"scope must be one of {', '.join(SCOPES)}, got '{scope}'")
    if masks is not None and set(masks) != set(scores):
        missing = sorted(set(scores) ^ set(masks))
        raise ConfigError(f"scores and masks cover different parameters (first difference: '{missing[0]}')")
    names = list(scores)
    flat = {n: _prepared(scores[n], None if masks is None else masks[n]) for n in names}
    alive = {n: flat[n][0].numel() for n in names}

    def check(k: int, available: int, where: str) -> None:
        if k > available:
            raise ConfigError(
                f"cannot keep {k} weights{where}: only {available} are still unpruned "
                "(masks only shrink; ask for a lower density)"
            )

    out: dict[str, torch.Tensor] = {}
    if scope == "layer":
        for n in names:
            k = keep_count(density, scores[n].numel())
            check(k, alive[n], f" of '{n}'")
            out[n] = _scatter(_top_k_flat(flat[n][0], k), flat[n][1], scores[n].shape)
        return out

    total = sum(s.numel() for s in scores.values())
    k = keep_count(density, total)
    check(k, sum(alive.values()), "")
    devices = {s.device for s in scores.values()}
    device = devices.pop() if len(devices) == 1 else torch.device("cpu")
    # Alive weights in parameter order, each in flat order: ties still go to the earlier position.
    keep = _top_k_flat(torch.cat([flat[n][0].to(device) for n in names]), k)
    offset = 0
    for n in names:
        x, pos = flat[n]
        part = keep[offset : offset + x.numel()].to(scores[n].device)
        out[n] = _scatter(part, None if pos is None else pos.to(scores[n].device), scores[n].shape)
        offset += x.numel()
    return out


def rank_order(scores: np.ndarray) -> np.ndarray:
    """Flat (C-order) positions of ``scores`` from the first weight kept to the last, by the rules
    above: higher score first, NaN and -inf last, ties to the lower position. numpy, no torch.

    Example:
        >>> rank_order(np.array([1.0, 3.0, np.nan, 1.0, -np.inf])).tolist()
        [1, 0, 3, 2, 4]
    """
    x = np.asarray(scores, dtype=np.float64).ravel()
    x = np.where(np.isnan(x), -np.inf, x)  # NaN and -inf tie at the bottom, as in select_top
    return np.argsort(-x, kind="stable")  # stable: equal scores stay in position order


def select_bottom(scores: Mapping[str, np.ndarray], kept: int | Mapping[str, int]) -> dict[str, np.ndarray]:
    """Keep the *lowest-ranked* weights: the last ``kept`` of :func:`rank_order`'s order (numpy).

    ``kept`` is one count over all parameters (in order, as ``scope="global"``) or a count per
    parameter (each ranked on its own). The kept set is exactly the complement of what
    :func:`select_top` keeps at the remaining count, ties included: among equal scores the
    *later* positions rank lowest. Ranking is by order, never by ``1/score`` (which would
    misorder signed scores such as GraSP's).

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
        keep[rank_order(x)[x.size - int(k):]] = True
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
