"""Signs of the kept weights: within a ticket (init vs. final) and between two tickets.

* ``sign_kept``: share of kept weights whose final sign equals their initial sign (Zhou et al.
  2019, "Deconstructing lottery tickets": signs matter more than magnitudes); ``sign_flip``: share
  whose sign changed strictly (``sign(init) * sign(final) < 0``). A weight that is exactly zero
  in one snapshot only counts in neither, so the two shares can sum to less than 1.
* ``sign_agree_init`` / ``sign_agree_final``: on the weights both tickets keep (A and B), the
  share whose initial (final) signs agree. Chance is 0.5 for independent initialisations and 1
  for a shared one. *Shared* is decided by comparing the stored init arrays (identical on every
  parameter -> shared); only when a ticket stores no init weights, by the provenance (same
  ``seed`` and ``model``). The record's ``note`` says which rule applied. With a 0.5 chance the
  record carries an exact binomial test (``z``, ``p`` = P(agreement >= observed)).

A weight whose value is NaN or infinite in a snapshot that a metric reads has no meaningful
sign: it is left out of that metric, and the total record's ``note`` says how many were left
out (``ticketlab.load`` warns about such snapshots, naming the parameter).

Example:
    >>> import numpy as np
    >>> from ticketlab.ticket import Ticket
    >>> m = {"w": np.ones(4, bool)}
    >>> t = Ticket(masks=m, weights={"init": {"w": np.array([1., -1, 1, -1])}, "final": {"w": np.array([2., 1, 1, -3])}})
    >>> sign_kept(t)["__total__"], sign_flip(t)["__total__"]
    (0.75, 0.25)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ticketlab.errors import ConfigError
from ticketlab.metrics import _dist
from ticketlab.metrics.base import TOTAL, Cache, as_cache, check_pair, clean
from ticketlab.metrics.registry import register
from ticketlab.ticket import Ticket


def _snapshot(t: Ticket, snap: str) -> dict[str, np.ndarray]:
    w = t.weights.get(snap)
    if not w:
        raise ConfigError(f"this metric needs the '{snap}' weights, which the ticket does not store")
    return w


def _excluded_note(excluded: int) -> str:
    return f"{excluded} kept weight{'s' * (excluded != 1)} with a NaN or infinite value left out"


def _finite(*arrays: np.ndarray) -> np.ndarray:
    """Where every one of ``arrays`` is finite (integer arrays always are)."""
    ok = np.ones(arrays[0].shape, bool)
    for arr in arrays:
        if arr.dtype.kind in "fc":
            ok &= np.isfinite(arr)
    return ok


def _shares(pairs: dict[str, tuple[int, int]], excluded: int) -> dict[str, Any]:
    hits = sum(h for h, _ in pairs.values())
    total = sum(n for _, n in pairs.values())
    share = clean(hits / total if total else math.nan)
    out: dict[str, Any] = {TOTAL: {"value": share, "note": _excluded_note(excluded)} if excluded else share}
    out.update({k: clean(h / n if n else math.nan) for k, (h, n) in pairs.items()})
    return out


def _within(t: Ticket, flip: bool) -> dict[str, Any]:
    init, final = _snapshot(t, "init"), _snapshot(t, "final")
    pairs, excluded = {}, 0
    for name, m in t.masks.items():
        wi, wf = init[name][m], final[name][m]
        ok = _finite(wi, wf)
        excluded += int(ok.size - np.count_nonzero(ok))
        si, sf = np.sign(wi[ok]), np.sign(wf[ok])
        hits = np.count_nonzero(si * sf < 0) if flip else np.count_nonzero(si == sf)
        pairs[name] = (int(hits), int(si.size))
    return _shares(pairs, excluded)


@register("sign_kept", kind="single", needs=("init", "final"), group="signs",
          description="share of kept weights whose final sign equals the initial sign")
def sign_kept(t: Ticket) -> dict[str, Any]:
    """Share of kept weights with ``sign(final) == sign(init)`` (Zhou et al. 2019)."""
    return _within(t, flip=False)


@register("sign_flip", kind="single", needs=("init", "final"), group="signs",
          description="share of kept weights whose sign flipped during training")
def sign_flip(t: Ticket) -> dict[str, Any]:
    """Share of kept weights with ``sign(init) * sign(final) < 0``."""
    return _within(t, flip=True)


def shared_init(a: Ticket, b: Ticket, cache: Cache | None = None) -> tuple[bool | None, str]:
    """Whether two tickets share their initialisation, and the rule that decided it.

    Identical ``init`` arrays on every common parameter -> shared; when either ticket lacks init
    weights, equal provenance ``seed`` and ``model`` -> shared; otherwise unknown (None).

    Example:
        >>> t = Ticket(masks={"w": np.ones(2, bool)}, provenance={"seed": 1, "model": "mlp"})
        >>> shared_init(t, t)
        (True, 'shared initialisation (same seed and model in provenance; no init weights stored)')
    """

    def make() -> tuple[bool | None, str]:
        ia, ib = a.weights.get("init"), b.weights.get("init")
        if ia and ib:
            same = all(np.array_equal(ia[n], ib[n], equal_nan=ia[n].dtype.kind in "fc") for n in a.masks
                       if n in ia and n in ib)
            return (True, "shared initialisation (identical init arrays)") if same else (
                False, "independent initialisations (init arrays differ)")
        pa, pb = a.provenance, b.provenance
        if "seed" in pa and "seed" in pb:
            same = pa.get("seed") == pb.get("seed") and pa.get("model") == pb.get("model")
            if same:
                return True, "shared initialisation (same seed and model in provenance; no init weights stored)"
            return False, "independent initialisations (different seed or model in provenance; no init weights stored)"
        return None, "unknown whether the initialisation is shared (no init weights or seeds stored)"

    return as_cache(cache).get(("shared_init", id(a), id(b)), make)


def _agreement(a: Ticket, b: Ticket, snap: str, cache: Cache | None) -> dict[str, Any]:
    check_pair(a, b)
    wa, wb = _snapshot(a, snap), _snapshot(b, snap)
    shared, note = shared_init(a, b, cache)
    chance = None if shared is None else (1.0 if shared else 0.5)
    rows: dict[str, tuple[int, int]] = {}
    excluded = 0
    for name, ma in a.masks.items():
        both = ma & b.masks[name]
        xa, xb = wa[name][both], wb[name][both]
        ok = _finite(xa, xb)
        excluded += int(ok.size - np.count_nonzero(ok))
        agree = np.sign(xa[ok]) == np.sign(xb[ok])
        rows[name] = (int(np.count_nonzero(agree)), int(agree.size))

    def record(hits: int, n: int) -> dict[str, Any]:
        value = hits / n if n else math.nan
        rec: dict[str, Any] = {"value": clean(value), "expected": chance,
                               "lift": clean(value / chance) if chance else None}
        if chance == 0.5 and n:
            # exact binomial test of the agreement count against Binomial(n, 1/2)
            rec["z"] = clean((hits - 0.5 * n) / math.sqrt(0.25 * n))
            up, lo = _dist.binom_sf(hits, n, 0.5), _dist.binom_cdf(hits, n, 0.5)
            rec["p"], rec["p_two_sided"] = clean(up), clean(_dist.two_sided(up, lo))
        return rec

    total = record(sum(h for h, _ in rows.values()), sum(n for _, n in rows.values()))
    total["note"] = f"{note}; {_excluded_note(excluded)}" if excluded else note
    return {TOTAL: total, **{k: record(h, n) for k, (h, n) in rows.items()}}


@register("sign_agree_init", needs=("init",), orientation="similarity", group="signs",
          description="sign agreement of the initial weights on the weights both keep")
def sign_agree_init(a: Ticket, b: Ticket, *, cache: Cache | None = None) -> dict[str, Any]:
    """Share of the commonly kept weights whose initial signs agree; chance 0.5 or 1 (shared)."""
    return _agreement(a, b, "init", cache)


@register("sign_agree_final", needs=("final",), orientation="similarity", group="signs",
          description="sign agreement of the final weights on the weights both keep")
def sign_agree_final(a: Ticket, b: Ticket, *, cache: Cache | None = None) -> dict[str, Any]:
    """Share of the commonly kept weights whose final signs agree; chance 0.5 or 1 (shared)."""
    return _agreement(a, b, "final", cache)
