"""``compare``: run registered metrics over tickets and return tidy records.

One record per (ticket pair, metric, layer) for pair metrics and per (ticket, metric, layer) for
single-ticket metrics (``b`` is None). Records are flat dicts of strings and numbers, so
``pandas.DataFrame(records)`` loads them directly and ``json.dumps(records)`` writes valid JSON
(NaN and infinities become None). The format is ``COMPARE_SCHEMA`` (docs/compare_schema.md).

Example:
    >>> import numpy as np
    >>> from ticketlab.ticket import Ticket
    >>> a = Ticket(masks={"w": np.array([1, 1, 0, 0], bool)})
    >>> b = Ticket(masks={"w": np.array([1, 0, 1, 0], bool)})
    >>> rec = compare([a, b], ["jaccard"])[0]
    >>> rec["a"], rec["b"], rec["metric"], rec["layer"], round(rec["value"], 4)
    ('ticket0', 'ticket1', 'jaccard', '__total__', 0.3333)
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from ticketlab.errors import ConfigError, IncompatibleError
from ticketlab.metrics.base import FIELDS, MEAN, TOTAL, WMEAN, Cache, check_pair, clean
from ticketlab.metrics.align import ALIGN_BY
from ticketlab.metrics.degree import DEFAULT_ROUNDS, DEFAULT_SAMPLES, DegreeNull
from ticketlab.metrics.registry import Metric, resolve_metrics
from ticketlab.progress import NullProgress
from ticketlab.ticket import Ticket

TicketLike = Ticket | str | os.PathLike


#: Densities that differ by more than this factor make raw overlap mostly a matter of density.
DENSITY_RATIO = 1.5


def ticket_label(t: Ticket, i: int = 0) -> str:
    """A short label from a ticket's provenance: method, seed and (kept) density, e.g.
    ``"synflow s0 d0.1"``; ``ticket<i>`` for a ticket that names no method.

    Example:
        >>> import numpy as np
        >>> t = Ticket(masks={"w": np.array([1, 0, 0, 0], bool)}, provenance={"method": "snip", "seed": 3})
        >>> ticket_label(t), ticket_label(Ticket(masks=t.masks), 1)
        ('snip s3 d0.25', 'ticket1')
    """
    method = t.provenance.get("method")
    if not isinstance(method, str) or not method:
        return f"ticket{i}"
    seed = t.provenance.get("seed")
    parts = [method] + ([f"s{seed}"] if isinstance(seed, int) and not isinstance(seed, bool) else [])
    return " ".join(parts + [f"d{t.density:.3g}"] if t.total else parts)


def _label(t: Any, i: int) -> str:
    return ticket_label(t, i) if isinstance(t, Ticket) else os.fspath(t)


def unique_labels(names: Sequence[str]) -> list[str]:
    """``names`` with every repeat made distinct: the second ``a.h5`` becomes ``a.h5#2``, and so on.

    Example:
        >>> unique_labels(["a.h5", "b.h5", "a.h5", "a.h5"])
        ['a.h5', 'b.h5', 'a.h5#2', 'a.h5#3']
    """
    out: list[str] = []
    for base in names:
        name, k = base, 1
        while name in out:
            k += 1
            name = f"{base}#{k}"
        out.append(name)
    return out


def _listed(groups: Mapping[str, list[str]], most: int = 3) -> str:
    """``value: 'l1', 'l2'; value2: 'l3'`` with at most ``most`` labels per value."""
    def names(labels: list[str]) -> str:
        shown = ", ".join(f"'{x}'" for x in labels[:most])
        return shown + (f" and {len(labels) - most} more" if len(labels) > most else "")
    return "; ".join(f"{value}: {names(labels)}" for value, labels in groups.items())


def comparison_warnings(tickets: Sequence[Ticket], labels: Sequence[str], *,
                        density_ratio: float = DENSITY_RATIO) -> list[str]:
    """One line for each reason the tickets' overlap may mislead (empty when none applies):

    * their densities (kept share of the compared parameters) differ by more than
      ``density_ratio``: raw overlap (Jaccard, Dice, ...) then mostly measures density, and the
      chance-corrected lift, z and kappa are the ones to read;
    * their provenance names different models or data sets (tickets that name none are left out):
      the same parameter names need not select comparable weights. The line names the parameters
      compared (with ``common_only``: those the tickets share).

    The ``ticketlab compare`` command prints each as a ``warning:`` line; :func:`compare` itself
    stays silent.

    Example:
        >>> import numpy as np
        >>> a = Ticket(masks={"w": np.array([1, 0, 0, 0], bool)}, provenance={"dataset": "digits"})
        >>> b = Ticket(masks={"w": np.array([1, 1, 0, 0], bool)}, provenance={"dataset": "mnist5k"})
        >>> for line in comparison_warnings([a, b], ["a", "b"]):
        ...     print(line)
        the tickets' densities differ by a factor of 2 (0.25 for 'a' to 0.5 for 'b'): raw overlap (jaccard, dice, ...) mostly reflects density; read the lift, z or kappa
        the tickets differ in data set (digits: 'a'; mnist5k: 'b'): the same parameter names need not select comparable weights (compared: w)
    """
    lines = []
    dens = [(t.kept / t.total if t.total else 0.0, lab) for t, lab in zip(tickets, labels)]
    if len(dens) >= 2:
        (lo, lo_lab), (hi, hi_lab) = min(dens), max(dens)
        if hi > 0 and (lo == 0 or hi / lo > density_ratio):
            factor = f"a factor of {hi / lo:.3g}" if lo > 0 else "more than any factor"
            lines.append(f"the tickets' densities differ by {factor} ({lo:.3g} for '{lo_lab}' to {hi:.3g} for "
                         f"'{hi_lab}'): raw overlap (jaccard, dice, ...) mostly reflects density; read the lift, z or kappa")
    differ = []
    for key, what in (("model", "model"), ("dataset", "data set")):
        groups: dict[str, list[str]] = {}
        for t, lab in zip(tickets, labels):
            value = t.provenance.get(key)
            if isinstance(value, str) and value:
                groups.setdefault(value, []).append(lab)
        if len(groups) > 1:
            differ.append(f"{what} ({_listed(groups)})")
    if differ and tickets:
        params = list(tickets[0].masks)
        shown = ", ".join(params[:4]) + (f" and {len(params) - 4} more" if len(params) > 4 else "")
        lines.append(f"the tickets differ in {' and '.join(differ)}: the same parameter names need not select "
                     f"comparable weights (compared: {shown})")
    return lines


def _restrict(t: Ticket, names: list[str]) -> Ticket:
    """The ticket limited to the parameters ``names`` (same provenance)."""
    weights = {snap: {n: w[n] for n in names if n in w} for snap, w in t.weights.items()}
    return Ticket(masks={n: t.masks[n] for n in names}, provenance=t.provenance, weights=weights,
                  scores={n: t.scores[n] for n in names if n in t.scores})


def prepare(
    tickets: Sequence[TicketLike],
    metrics: Sequence[Metric],
    *,
    labels: Sequence[str] | None = None,
    common_only: bool = False,
    load_weights: bool = False,
) -> tuple[list[Ticket], list[str]]:
    """Load paths (masks only unless a metric needs weights), label and check the tickets.

    Tickets must have the same parameters (names and shapes, in order); otherwise an
    :class:`IncompatibleError` names the first difference, or with ``common_only`` every ticket
    is limited to the parameters all of them share. ``load_weights`` loads the weight snapshots
    even when no metric needs them (``align="weights"``).
    """
    if isinstance(tickets, (str, os.PathLike, Ticket)):
        tickets = [tickets]
    tickets = list(tickets)
    if labels is None:  # default labels: the path or ticket_label; a repeat becomes "path#2", "path#3", ...
        names = unique_labels([_label(t, i) for i, t in enumerate(tickets)])
    else:
        names = [str(x) for x in labels]
        if len(names) != len(tickets):
            raise ConfigError(f"got {len(names)} labels for {len(tickets)} tickets")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"ticket label '{dup}' is used twice; give distinct labels")
    weights = load_weights or any(n in ("init", "final") for m in metrics for n in m.needs)
    loaded = []
    for t in tickets:
        if isinstance(t, Ticket):
            loaded.append(t)
        elif isinstance(t, (str, os.PathLike)):
            from ticketlab.fileformat import load

            loaded.append(load(t, weights=weights, scores=False, history=False))
        else:
            raise ConfigError(f"cannot compare a {type(t).__name__}: give Ticket objects or ticket file paths")
    if len(loaded) < 2:
        return loaded, names
    if not common_only:
        for t, name in zip(loaded[1:], names[1:]):
            check_pair(loaded[0], t, names[0], name)
        return loaded, names
    first = loaded[0]
    shared = [n for n, m in first.masks.items()
              if all(n in t.masks and t.masks[n].shape == m.shape for t in loaded[1:])]
    if not shared:
        listed = ", ".join(repr(n) for n in names)
        raise IncompatibleError(f"tickets {listed} share no parameter of the same name and shape")
    if all(list(t.masks) == shared for t in loaded):
        return loaded, names
    return [_restrict(t, shared) for t in loaded], names


def _lacks(m: Metric, t: Ticket) -> str | None:
    """What ``t`` lacks for metric ``m`` (to finish "ticket 'x' ..."), or None."""
    for need in m.needs:
        if need in ("init", "final") and not t.weights.get(need):
            return f"needs the '{need}' weights, which ticket '@TICKET@' does not store"
        if need == "topology" and not t.provenance.get("topology"):
            from ticketlab.metrics.graph import chain_topology

            try:
                chain_topology(t.masks)
            except IncompatibleError as exc:
                return f"needs a topology; ticket '@TICKET@' has none and {exc}"
    return None


def _fields(metric: str, layer: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {"value": clean(value)}
    bad = [k for k in value if k not in FIELDS]
    if bad:
        raise ConfigError(
            f"metric '{metric}' returned unknown field '{bad[0]}' for layer '{layer}' (allowed: {', '.join(FIELDS)})"
        )
    out = {"value": clean(value.get("value"))}
    for k in FIELDS[1:]:
        if k in value:
            v = value[k]
            out[k] = (None if v is None else str(v)) if k == "note" else clean(v)
    return out


def result_records(metric: str, result: Any, a: str, b: str | None, per_layer: bool) -> list[dict[str, Any]]:
    """Tidy records from one metric call's result (see registry.py for the accepted shapes)."""
    if not isinstance(result, Mapping):
        result = {TOTAL: result}
    keys = [k for k in (TOTAL, MEAN, WMEAN) if k in result]
    if per_layer:
        keys += [str(k) for k in result if k not in (TOTAL, MEAN, WMEAN)]
    return [{"a": a, "b": b, "metric": metric, "layer": k, **_fields(metric, k, result[k])} for k in keys
            if per_layer or k == TOTAL]


def compare(
    tickets: Sequence[TicketLike],
    metrics: Sequence[str] | str | None = None,
    *,
    per_layer: bool = False,
    common_only: bool = False,
    labels: Sequence[str] | None = None,
    progress: NullProgress | None = None,
    null: str | None = None,
    null_samples: int = DEFAULT_SAMPLES,
    null_rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    align: str | None = None,
) -> list[dict[str, Any]]:
    """Compare tickets (objects or file paths) with registered metrics; tidy records.

    Args:
        tickets: two or more tickets for pair metrics (every pair ``i < j``; asymmetric metrics
            both ways); one is enough for single-ticket metrics.
        metrics: metric names, group names (``"overlap"``, ``"units"``, ``"sparsity"``,
            ``"signs"``, ``"graph"``, ``"relational"``, ``"custom"``) or ``"all"``; None = the defaults (overlap,
            units, sparsity: mask-only and fast). A metric that needs weights a ticket lacks
            raises :class:`ConfigError` when named on its own (or when none of the selection
            applies); picked by a group, ``"all"`` or the defaults it is skipped: its record for
            that ticket (or pair) has ``value`` None and a ``note`` saying what is missing.
        per_layer: also give the ``__mean__`` / ``__wmean__`` summaries and one record per layer
            (parameter name; tensor name for unit-count graph metrics); else ``__total__`` only.
        common_only: compare only the parameters all tickets share (else tickets of different
            architectures raise :class:`IncompatibleError` naming the first difference).
        labels: names for the tickets in the records (default: the path; for a Ticket object its
            method, seed and density, :func:`ticket_label`; a repeat gets ``#2``, ``#3``, ...).
            :func:`comparison_warnings` says when densities, models or data sets differ.
        progress: optional progress display (one step per metric call).
        null: ``"degree"`` adds the degree-preserving null to the overlap metrics' records
            (``expected_degree``, ``lift_degree``, ``p_degree``; see
            :mod:`ticketlab.metrics.degree`), at the cost of sampling; None: hypergeometric only.
        null_samples: samples per ticket of a sampled null (p-values are multiples of
            ``1 / (null_samples + 1)``); the relational-graph measures always sample both of
            their nulls with it (:mod:`ticketlab.metrics.relational`).
        null_rounds: global curveball rounds to the hub and from it to each degree sample.
        seed: seed of the null samples (and of the alignment's layer order, and of the node
            samples of an estimated relational graph); the same seed gives the same records.
        align: ``"masks"`` or ``"weights"``: before the pair metrics, the second ticket of every
            pair is relabelled to match the first (:mod:`ticketlab.metrics.align`, weight matching
            on the topology); the overlap metrics also get the aligned null (``expected_aligned``,
            ``sd_aligned``, ``lift_aligned``, ``p_aligned`` from ``null_samples`` aligned pairs of
            random masks) and the records a ``note``. None: no alignment.

    Returns:
        A list of dicts with keys ``a``, ``b`` (None for single-ticket metrics), ``metric``,
        ``layer``, ``value`` and, where the metric gives them, ``expected``, ``lift``, ``z``,
        ``p``, ``p_two_sided``, ``expected_global``, ``lift_global``, ``z_global``, ``p_global``,
        ``expected_degree``, ``lift_degree``, ``p_degree``, ``note`` (see docs/compare_schema.md);
        ``health_a`` / ``health_b`` when ticket ``a`` / ``b`` is unhealthy (:func:`ticketlab.health`).

    Example:
        >>> import numpy as np
        >>> t = Ticket(masks={"w": np.array([1, 0, 1, 0], bool)})
        >>> [r["value"] for r in compare([t], ["density"], per_layer=True)]
        [0.5, 0.5]
    """
    degree_null = _null_settings(null, null_samples, null_rounds, seed)
    if align is not None and align not in ALIGN_BY:
        raise ConfigError(f"unknown alignment '{align}' (choose from: {', '.join(ALIGN_BY)})")
    chosen = resolve_metrics(metrics)
    named = {metrics} if isinstance(metrics, str) else set(metrics or ())
    progress = progress or NullProgress()
    loaded, names = prepare(tickets, chosen, labels=labels, common_only=common_only,
                            load_weights=align == "weights")
    # a metric named on its own must apply; one chosen by group or default is skipped where it
    # cannot, unless that leaves nothing of an explicit selection
    lacking = {(m.name, i): _lacks(m, t) for m in chosen for i, t in enumerate(loaded)}
    missing = [(m, i) for m in chosen for i in range(len(loaded)) if lacking[m.name, i]]
    explicit = [x for x in missing if x[0].name in named]
    if explicit or (metrics is not None and missing and all(any(x[0] is m for x in missing) for m in chosen)):
        m, i = (explicit or missing)[0]
        raise ConfigError(f"metric '{m.name}' " + str(lacking[m.name, i]).replace("@TICKET@", names[i]))
    calls: list[tuple[Metric, tuple[int, ...]]] = []
    k = len(loaded)
    for m in chosen:
        if m.kind == "single":
            calls += [(m, (i,)) for i in range(k)]
        else:
            calls += [(m, (i, j)) for i in range(k) for j in range(k) if i < j or (i > j and not m.symmetric)]
    if metrics is not None and k < 2 and chosen and all(m.kind == "pair" for m in chosen):
        raise ConfigError("pair metrics need at least two tickets")
    cache = Cache(degree_null=degree_null,
                  sampling=degree_null or DegreeNull(samples=null_samples, seed=seed, rounds=null_rounds))
    for t in loaded:  # ticket i's null samples use stream i
        cache.stream(t)
    records: list[dict[str, Any]] = []
    with progress.task("compare", total=len(calls)) as task:
        for m, idx in calls:
            ts = [loaded[i] for i in idx]
            b = names[idx[1]] if len(idx) == 2 else None
            lacks = next((lacking[m.name, i].replace("@TICKET@", names[i]) for i in idx if lacking[m.name, i]), None)
            if lacks is None and align is not None and len(idx) == 2:
                ts[1], note = _aligned(loaded, names, idx, align, null_samples, seed, cache)
                recs = result_records(m.name, result=m(*ts, cache=cache), a=names[idx[0]], b=b, per_layer=per_layer)
                records += [{**r, "note": r.get("note") or note} for r in recs]
            elif lacks is None:
                records += result_records(m.name, result=m(*ts, cache=cache), a=names[idx[0]], b=b,
                                          per_layer=per_layer)
            else:  # skipped, and the record says why (the CLI prints it as "not computed (...)")
                records.append({"a": names[idx[0]], "b": b, "metric": m.name, "layer": TOTAL, "value": None,
                                "note": lacks})
            task.advance()
    return _with_health(records, loaded, names, cache)


def _with_health(records: list[dict[str, Any]], loaded: list[Ticket], names: list[str],
                 cache: Cache) -> list[dict[str, Any]]:
    """``health_a`` / ``health_b``: the one-line :func:`ticketlab.health` summary of an unhealthy
    ticket, on every record of that ticket (absent for healthy tickets and those of unknown health)."""
    from ticketlab.metrics.health import health

    sick = {}
    for name, t in zip(names, loaded):
        h = health(t, cache=cache)
        if h.healthy is False:
            sick[name] = h.summary()
    if sick:
        for r in records:
            for side in ("a", "b"):
                if r.get(side) in sick:
                    r[f"health_{side}"] = sick[r[side]]
    return records


def _aligned(loaded: list[Ticket], names: list[str], idx: tuple[int, ...], by: str, samples: int, seed: int,
             cache: Cache) -> tuple[Ticket, str]:
    """Ticket ``idx[1]`` aligned to ``idx[0]`` (once per ordered pair), and the records' note."""
    from ticketlab.metrics.align import align

    i, j = idx

    def make() -> tuple[Ticket, str]:
        res = align(loaded[i], loaded[j], by, seed=seed)
        cache.aligned[id(res.ticket)] = (loaded[i], loaded[j], by, samples, seed)
        how = f"by its '{res.snapshot}' weights" if res.snapshot else "by masks"
        return res.ticket, (f"'{names[j]}' aligned to '{names[i]}' {how} (weight matching, {res.sweeps} sweeps); "
                            f"*_aligned: {samples} aligned pairs of random masks")

    return cache.get(("aligned", id(loaded[i]), id(loaded[j])), make)


#: Values of ``compare(null=...)``: None (the hypergeometric nulls only) or a sampled null.
NULLS = ("degree",)


def _null_settings(null: str | None, samples: int, rounds: int, seed: int) -> DegreeNull | None:
    if null is None:
        return None
    if null not in NULLS:
        raise ConfigError(f"unknown null '{null}' (choose from: {', '.join(NULLS)}; the hypergeometric "
                          "nulls are always given)")
    return DegreeNull(samples=samples, seed=seed, rounds=rounds)


def records_to_array(records: Sequence[Mapping[str, Any]], key: str = "value") -> np.ndarray:
    """One field of every record as a float array (None -> NaN); handy without pandas."""
    return np.array([np.nan if r.get(key) is None else float(r[key]) for r in records], dtype=np.float64)
