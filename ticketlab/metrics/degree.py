"""Degree-preserving null: random masks in which every unit keeps its in- and out-degree.

The hypergeometric nulls (``chance.py``) shuffle a layer's kept weights uniformly. Two tickets
that both keep most weights of the same few input pixels then overlap "above chance" for that
reason alone. This null keeps, in every layer, the number of kept weights of every unit, and
randomises everything else: the overlap it expects is what the two degree sequences explain.

**Unit view.** A mask of shape ``(out, d1, d2, ...)`` is read as the biadjacency matrix
``M = mask.reshape(out, -1)``: rows are the output units (neurons, out-channels), columns the
input positions: an input feature for a linear or GCN weight ``(out, in)``, an
``(in-channel, kh, kw)`` tap for a conv weight ``(out, in, kh, kw)``, a ``(channel, h, w)``
feature for a linear layer reading a flattened map. Row sums of ``M`` are the output units'
in-degrees; column sums the input positions' out-degrees, whose sums over ``kh, kw`` (or
``h, w``) are the input channels' out-degrees, so every unit's degree is kept (and, for convs,
also each tap's: the null does not credit a shared preference for kernel centres either).
A 1-d mask has no unit structure; it is shuffled uniformly (the hypergeometric null).

**Sampler.** Random binary matrices with fixed row and column sums, by the curveball algorithm
(Strona, Nappo, Boccacci, Fattorini & San-Miguel-Ayanz 2014, "A fast and unbiased procedure to
randomize ecological binary matrices with fixed row and column totals", Nat. Commun. 5:4114) in
its *global* form (Carstens, Berger & Strona 2016, "Curveball: a new generation of sampling
algorithms for graphs with fixed degree sequence", arXiv:1609.05137, Sec. 4): one **round**
pairs all lines at random and, for each pair ``(r, s)``, pools the columns where exactly one of
the two has a 1 and deals them out again at random, ``|r \\ s|`` to ``r`` and the rest to ``s``.
Every trade keeps both line sums and every column sum exactly; the chain is irreducible and its
stationary law is uniform over the matrices with those margins (Carstens 2015). Trades run along
the shorter side's lines (the longer lines), so a layer of two rows is exactly uniform after one
round. A round is vectorised over all pairs: the pooled columns of all pairs in one array, one
``argsort`` of ``pair index + uniform`` shuffles them within each pair, and the first ``|r \\ s|``
of a pair's go to ``r`` (chosen by rank, so the margins are exact whatever the random numbers).

**Samples.** Besag & Clifford's (1989, "Generalized Monte Carlo significance tests",
Biometrika 76:633, Sec. 2) parallel scheme: from the ticket's own mask the chain runs ``rounds``
rounds to a hub state, and each of the ``N`` samples runs ``rounds`` more rounds from the hub
with its own generator. The chain is reversible, so under the null the observed mask and its
samples are exchangeable and the add-one p-value below is exact for any ``rounds``; enough
rounds make the samples nearly independent, so ``expected_degree`` is the null's mean. Every
generator is seeded by ``(seed, stream, layer index, sample)``: the same seed gives the same
samples; ``stream`` tells the tickets of a comparison apart (ticket ``i`` of ``compare`` uses
stream ``i``), so two identical tickets still get independent samples. Both tickets of a pair
are randomised, independently, so the null is symmetric. How many rounds mix:
tests/test_degree_null.py and ``benchmarks/bench_metrics.py --parts 5`` (the null's Jaccard
settles within its Monte-Carlo error after about 20-30 rounds on LeNet- and ResNet-sized layers
of strongly unequal degrees; ``DEFAULT_ROUNDS`` is 30).

**Fields.** For the overlap count ``X`` (all layers' ``X`` pooled in the total), ``expected_degree``
is the mean of the metric over the samples, ``lift_degree = value / expected_degree`` and
``p_degree = (1 + #{X_s >= x}) / (1 + N)``, the add-one empirical p-value (North, Curtis & Sham
2002; Phipson & Smyth 2010), never 0.

Example:
    >>> import numpy as np
    >>> m = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 1, 1]], bool)
    >>> s = curveball(m, 5, np.random.default_rng(0))
    >>> s.sum(axis=1).tolist(), s.sum(axis=0).tolist()      # every degree kept
    ([2, 2, 2], [2, 1, 2, 1])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ticketlab.errors import ConfigError
from ticketlab.streams import DEGREE_SELF, words_rng

# The null's settings live with the Cache that carries them (base.py), so that base needs no
# import of this module; they are this module's public names too.
from ticketlab.metrics.base import DEFAULT_ROUNDS, DEFAULT_SAMPLES, MAX_SAMPLES, DegreeNull  # noqa: E402,F401


def biadjacency(mask: np.ndarray) -> np.ndarray:
    """The unit view of a mask: ``mask.reshape(out, -1)`` (output units x input positions).

    Example:
        >>> biadjacency(np.ones((4, 3, 3, 3), bool)).shape     # conv: out-channel x (in, kh, kw)
        (4, 27)
    """
    return mask.reshape(mask.shape[0], -1)


def curveball_round(m: np.ndarray, rng: np.random.Generator) -> None:
    """One global curveball round on the rows of the 2-d boolean ``m``, in place.

    Rows are paired by a random permutation (one row sits out when their number is odd); each
    pair trades its non-shared columns (Strona et al. 2014, Fig. 1; Carstens et al. 2016, Alg. 2).
    """
    rows, cols = m.shape
    half = rows // 2
    if half == 0 or cols == 0:
        return
    perm = rng.permutation(rows)
    r, s = perm[:half], perm[half:2 * half]
    x, y = m[r], m[s]
    pooled = x ^ y  # columns where exactly one row of the pair has a 1
    give = np.count_nonzero(x & pooled, axis=1)  # |r \\ s|: how many of them r gets back
    pair, col = np.nonzero(pooled)  # row-major: grouped by pair
    if pair.size:
        start = np.cumsum(np.bincount(pair, minlength=half)) - np.bincount(pair, minlength=half)
        # sorting (pair + uniform) shuffles the pooled columns within each pair; r gets the first
        # `give` of its pair's shuffled columns (rank by position, so margins are exact)
        order = np.argsort(pair + rng.random(pair.size))
        first = order[(np.arange(pair.size) - start[pair]) < give[pair]]
        to_r = np.zeros_like(pooled)
        to_r[pair[first], col[first]] = True
    else:
        to_r = pooled
    shared = x & y
    m[r] = shared | to_r
    m[s] = shared | (pooled ^ to_r)


def curveball(mask: np.ndarray, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``mask`` after ``rounds`` global curveball rounds on its unit view.

    Trades run along the lines of the shorter side of the biadjacency. A 1-d mask is shuffled
    uniformly instead (it has no degrees to keep besides its count).

    Example:
        >>> m = np.eye(2, dtype=bool)              # degrees (1, 1) / (1, 1): I or its flip
        >>> sorted({bool(curveball(m, 1, np.random.default_rng(s))[0, 0]) for s in range(20)})
        [False, True]
    """
    mask = np.asarray(mask, dtype=np.bool_)
    if mask.ndim < 2:
        return rng.permutation(mask)
    m = biadjacency(mask)
    flip = m.shape[0] > m.shape[1]
    work = np.array(m.T if flip else m, order="C")  # rows = the lines traded
    for _ in range(rounds):
        curveball_round(work, rng)
    return (work.T if flip else work).reshape(mask.shape)


def sample_rng(seed: int, stream: int, layer: int, sample: int) -> np.random.Generator:
    """The generator of one sample (``sample`` >= 1; 0 is the hub) of a ticket's layer."""
    return words_rng(seed, stream, layer, sample)


def layer_samples(mask: np.ndarray, null: DegreeNull, stream: int = 0, layer: int = 0) -> list[np.ndarray]:
    """``null.samples`` degree-preserving samples of one mask (Besag & Clifford's parallel scheme:
    ``rounds`` rounds to a hub, then ``rounds`` rounds from the hub per sample)."""
    hub = curveball(mask, null.rounds, sample_rng(null.seed, stream, layer, 0))
    return [curveball(hub, null.rounds, sample_rng(null.seed, stream, layer, s)) for s in range(1, null.samples + 1)]


def null_tickets(t: Any, null: DegreeNull | None = None, stream: int = 0) -> list[Any]:
    """``null.samples`` degree-preserving random tickets of ``t``, for any study of its graph.

    Each is ``t`` with every mask replaced by the same curveball sample that ``compare``'s degree
    null draws (:func:`layer_samples`, same seeds), and ``t``'s provenance (so its topology): in
    every layer each unit keeps its number of kept weights. On ``Ticket.to_networkx`` graphs that
    fixes every unit's weighted degree (the sum of its edges' multiplicities) per layer; for a
    linear layer read unit by unit (``group`` 1) it fixes the binary degrees too.

    Example:
        >>> from ticketlab.ticket import Ticket
        >>> t = Ticket(masks={"w": np.array([[1, 1, 0], [0, 1, 0]], bool)})
        >>> [n.masks["w"].sum(axis=1).tolist() for n in null_tickets(t, DegreeNull(samples=2))]
        [[2, 1], [2, 1]]
    """
    from ticketlab.ticket import Ticket

    null = null or DegreeNull()
    per_layer = [layer_samples(m, null, stream, i) for i, m in enumerate(t.masks.values())]
    return [Ticket(masks={n: per_layer[i][s] for i, n in enumerate(t.masks)}, provenance=t.provenance)
            for s in range(null.samples)]


def degree_samples(masks: Mapping[str, np.ndarray], null: DegreeNull, stream: int = 0) -> list[np.ndarray]:
    """The null samples of a ticket's masks, bit-packed: one ``uint8`` array per layer, of shape
    ``(samples, ceil(size / 8))`` (layer order as in ``masks``).

    Example:
        >>> masks = {"w": np.array([[1, 0, 1], [0, 1, 1]], bool)}
        >>> packed = degree_samples(masks, DegreeNull(samples=3, seed=1))
        >>> np.unpackbits(packed[0], axis=1, count=6).reshape(3, 2, 3).sum(axis=(0, 1)).tolist()
        [3, 3, 6]
    """
    out = []
    for i, m in enumerate(masks.values()):
        states = layer_samples(m, null, stream, i)
        out.append(np.stack([np.packbits(s.reshape(-1)) for s in states]))
    return out


def sample_intersections(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> np.ndarray:
    """``X[s, layer]``: kept-by-both counts of the packed samples of two tickets (int64)."""
    cols = [np.bitwise_count(x & y).sum(axis=1, dtype=np.int64) for x, y in zip(a, b)]
    return np.stack(cols, axis=1) if cols else np.zeros((0, 0), np.int64)


def degree_fields(n: np.ndarray, a: np.ndarray, b: np.ndarray, x: np.ndarray, xs: np.ndarray,
                  formula: Callable[..., Any], *, lift: bool = True, suffix: str = "degree",
                  sd: bool = False) -> dict[str, Any]:
    """``expected_degree``, ``lift_degree``, ``p_degree`` per layer (by index) and for the total.

    Any sampled null works alike: ``suffix`` names the fields (``"aligned"`` for align.py's null)
    and ``sd`` adds ``sd_<suffix>``, the samples' standard deviation of the metric.

    ``x``: observed per-layer overlap counts; ``xs``: ``(samples, layers)`` null counts. Returns
    ``{"__total__": fields, "__layers__": [fields of each layer], "__expected__": array}``, the
    last the per-layer ``expected_degree`` as floats (NaN where undefined).

    Example:
        >>> f = lambda n, a, b, ab: np.asarray(ab, float)
        >>> r = degree_fields(np.array([4]), np.array([2]), np.array([2]), np.array([2]),
        ...                   np.array([[2], [0], [0], [2]]), f)
        >>> r["__total__"]
        {'expected_degree': 1.0, 'lift_degree': 2.0, 'p_degree': 0.6}
    """
    from ticketlab.metrics.base import clean

    samples = xs.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.asarray(formula(n[None, :], a[None, :], b[None, :], xs), dtype=np.float64)
        value = np.asarray(formula(n, a, b, x), dtype=np.float64)
        t_per = np.asarray(formula(n.sum(), a.sum(), b.sum(), xs.sum(axis=1)), dtype=np.float64)
        t_value = float(formula(n.sum(), a.sum(), b.sum(), x.sum()))
    # mean over the samples where the metric is defined (Jaccard of two empty masks is not)
    expected = np.array([np.nanmean(c) if np.isfinite(c).any() else np.nan for c in per.T])
    t_exp = float(np.nanmean(t_per)) if np.isfinite(t_per).any() else np.nan
    p = (1 + np.count_nonzero(xs >= x[None, :], axis=0)) / (1 + samples)  # add-one empirical p
    t_p = (1 + np.count_nonzero(xs.sum(axis=1) >= x.sum())) / (1 + samples)

    def spread(c: np.ndarray) -> float:
        c = c[np.isfinite(c)]
        return float(np.std(c, ddof=1)) if c.size > 1 else np.nan

    def rec(v: float, e: float, pv: float, values: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {f"expected_{suffix}": clean(e)}
        if sd:
            out[f"sd_{suffix}"] = clean(spread(values))
        if lift:
            with np.errstate(divide="ignore", invalid="ignore"):
                out[f"lift_{suffix}"] = clean(np.divide(v, e))
        out[f"p_{suffix}"] = clean(pv)
        return out

    return {
        "__total__": rec(t_value, t_exp, float(t_p), t_per),
        "__layers__": [rec(float(value[i]), float(expected[i]), float(p[i]), per[:, i]) for i in range(len(n))],
        "__expected__": expected,
    }


def pair_null_counts(a: Any, b: Any, cache: Any) -> np.ndarray:
    """``X[s, layer]`` of tickets ``a`` and ``b`` under ``cache.degree_null`` (memoised: each
    ticket's samples once per call, each unordered pair's counts once)."""
    null: DegreeNull = cache.degree_null
    sa = cache.stream(a)
    # the same object twice still needs two independent sets of samples
    sb = cache.stream(b) if b is not a else DEGREE_SELF + sa

    def samples(t: Any, stream: int) -> list[np.ndarray]:
        return cache.get(("degree_samples", id(t), stream), lambda: degree_samples(t.masks, null, stream))

    key = ("degree_counts", *sorted(((id(a), sa), (id(b), sb))))
    return cache.get(key, lambda: sample_intersections(samples(a, sa), samples(b, sb)))


def add_degree_fields(out: dict[str, dict[str, Any]], a: Any, b: Any, counts: Any,
                      formula: Callable[..., Any], cache: Any, *, lift: bool = True) -> None:
    """Add the degree-null fields to the records ``out`` of one overlap metric (in place):
    every layer and the total get ``expected_degree``, ``lift_degree``, ``p_degree``; the
    layer means get ``expected_degree`` and ``lift_degree`` (means of the layers' values)."""
    add_sampled_fields(out, counts, pair_null_counts(a, b, cache), formula, lift=lift, suffix="degree")


def add_sampled_fields(out: dict[str, dict[str, Any]], counts: Any, xs: np.ndarray, formula: Callable[..., Any],
                       *, lift: bool = True, suffix: str = "degree", sd: bool = False) -> None:
    """Add a sampled null's fields (:func:`degree_fields` of the null counts ``xs``) to ``out``."""
    from ticketlab.metrics.base import MEAN, TOTAL, WMEAN, clean

    fields = degree_fields(counts.n, counts.a, counts.b, counts.ab, xs, formula, lift=lift, suffix=suffix, sd=sd)
    out[TOTAL].update(fields["__total__"])
    for layer, rec in zip(counts.layers, fields["__layers__"]):
        out[layer].update(rec)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.asarray(formula(counts.n, counts.a, counts.b, counts.ab), dtype=np.float64)
    expected = fields["__expected__"]
    ok = np.isfinite(value) & np.isfinite(expected)
    if not ok.any():
        return
    w = counts.n[ok].astype(np.float64)
    for key, e in ((MEAN, expected[ok].mean()), (WMEAN, np.average(expected[ok], weights=w) if w.sum() else np.nan)):
        if key in out:
            out[key][f"expected_{suffix}"] = clean(e)
            if lift and "value" in out[key] and out[key]["value"] is not None:
                with np.errstate(divide="ignore", invalid="ignore"):
                    out[key][f"lift_{suffix}"] = clean(np.divide(out[key]["value"], e))
