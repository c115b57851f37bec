"""Per-layer density profiles, and Jensen-Shannon distances of the allocation profiles (the
distance behind the ``profile_js`` metric, :func:`ticketlab.metrics.sparsity.js_matrix`) beside
the distance to a uniform random mask's allocation."""

from __future__ import annotations

import numpy as np

from ticketlab.study.report import figures
from ticketlab.study.report.context import Context, GroupResult
from ticketlab.study.report.document import Document, num, spread
from ticketlab.study.report.load import Entry, kept_sizes, mark, sick_methods, stats
from ticketlab.study.report.overlap import mark_note
from ticketlab.study.report.rules import MARK, SPREAD


def section_profiles(doc: Document, ctx: Context, d: float, entries: list[Entry], res: GroupResult) -> None:
    from ticketlab.metrics.sparsity import js_matrix

    res.anchors[f"profiles:{d}"] = doc.heading(4, f"Per-layer densities at density {num(d)}")
    k, n = kept_sizes([e.ticket for e in entries])
    names = list(entries[0].ticket.masks)
    present = ctx.present(entries)
    sick = sick_methods(entries)
    shown = {m: mark(m, m in sick) for m in present}
    idx = {m: [i for i, e in enumerate(entries) if e.method == m] for m in present}
    dens = k / n
    overall = float(k.sum() / (len(entries) * n.sum()))
    for m in present:
        for li, layer in enumerate(names):
            mean, lo, hi, cnt = stats(dens[idx[m], li])
            doc.row(section="profile", **ctx.key, density=d, method_a=m, layer=layer, metric="layer_density",
                    value=mean, expected=float(k[idx[m]].sum(axis=1).mean() / n.sum()), spread=SPREAD,
                    spread_lo=lo, spread_hi=hi, n=cnt, note="expected: the ticket's overall density (uniform)")
    doc.figure(figures.profiles(names, {m: dens[idx[m]] for m in present}, overall, ctx.style, shown,
                                f"Per-layer density, {ctx.where}, density {num(d)}"),
               f"{ctx.where}-d{d}-profile",
               f"Density of each layer (log scale) per method, mean over seeds with {SPREAD} bars, {ctx.where}, "
               f"density {num(d)}; dashed: the density a uniform random mask gives every layer; an open marker on "
               "the floor: a layer the method keeps no weight of"
               + (f"; {MARK.strip()}: a method with unhealthy tickets" if sick else ""))
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = k / k.sum(axis=1, keepdims=True)
    ok = np.isfinite(shares).all(axis=1)
    js = js_matrix(shares, shares)
    js_uniform = js_matrix(shares, (n / n.sum())[None, :])[:, 0]
    rows = []

    def js_stats(a: str, b: str) -> tuple[float, float, float, int]:
        vals = [js[i, j] for i in idx[a] for j in idx[b] if ok[i] and ok[j] and (
            entries[i].seed != entries[j].seed if a == b else entries[i].seed == entries[j].seed)]
        return stats(vals)

    res.js_uniform[d] = {}
    for a in present:
        cells = []
        for b in present:
            s = js_stats(a, b)
            cells.append(spread(*s[:3]))
            if ctx.methods.index(a) <= ctx.methods.index(b):
                doc.row(section="profile_js", **ctx.key, density=d, method_a=a, method_b=b, metric="profile_js",
                        value=s[0], spread=SPREAD, spread_lo=s[1], spread_hi=s[2], n=s[3],
                        note="pairs of different seeds" if a == b else "same-seed pairs")
        u = stats(js_uniform[i] for i in idx[a] if ok[i])
        res.js_uniform[d][a] = u
        doc.row(section="profile_js", **ctx.key, density=d, method_a=a, method_b="uniform", metric="profile_js",
                value=u[0], spread=SPREAD, spread_lo=u[1], spread_hi=u[2], n=u[3],
                note="distance to the allocation of a uniform random mask (share of each layer = its size share)")
        rows.append([shown[a], *cells, spread(*u[:3])])
    doc.para(f"Jensen-Shannon distance (base 2, 0 = same allocation, 1 = disjoint) between the allocation "
             f"profiles (share of the kept weights in each layer), mean [{SPREAD}]: off the diagonal over "
             "same-seed pairs, on the diagonal over pairs of different seeds. Last column: distance to a "
             "uniform random mask's allocation (what chance gives).")
    doc.table(["method", *shown.values(), "vs uniform random"], rows)
    mark_note(doc, entries)
