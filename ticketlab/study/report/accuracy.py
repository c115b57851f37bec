"""Test accuracy of the trained tickets vs density, beside the trained dense network (the round 0
that IMP and magnitude pruning record in their history, same recipe) and chance (1 / classes)."""

from __future__ import annotations

from ticketlab.study.report import figures
from ticketlab.study.report.context import Context, GroupResult
from ticketlab.study.report.document import Document, num, spread
from ticketlab.study.report.load import Entry, dense_accuracy, mark, number, sick_methods, stats
from ticketlab.study.report.overlap import mark_note
from ticketlab.study.report.rules import MARK, SPREAD


def _classes(entries: list[Entry]) -> int | None:
    for e in entries:
        spec = e.ticket.provenance.get("data_spec")
        c = spec.get("num_classes") if isinstance(spec, dict) else None
        if isinstance(c, int) and not isinstance(c, bool) and c > 0:
            return c
    return None


def section_accuracy(doc: Document, ctx: Context, by_density: dict[float, list[Entry]], res: GroupResult) -> None:
    res.anchors["accuracy"] = doc.heading(3, "Accuracy vs density")
    every = [e for es in by_density.values() for e in es]
    sick_any = sick_methods(every)
    classes = _classes(every)
    chance = 1.0 / classes if classes else None
    dense_by_seed = dense_accuracy(every)
    dense = stats(v for v, _ in dense_by_seed.values()) if dense_by_seed else None
    series: dict[str, list[tuple[float, float, float, float]]] = {}
    rows = []
    for d in sorted(by_density, reverse=True):
        entries = by_density[d]
        sick = sick_methods(entries)
        res.accuracy[d] = {}
        for m in ctx.methods:
            accs = [number(e.ticket.provenance.get("test_accuracy")) for e in entries if e.method == m]
            accs = [a for a in accs if a is not None]
            if not accs:
                continue
            s = stats(accs)
            res.accuracy[d][m] = s
            series.setdefault(m, []).append((d, s[0], s[1], s[2]))
            rows.append([mark(m, m in sick), num(d), spread(*s), num(chance)])
            doc.row(section="accuracy", **ctx.key, density=d, method_a=m, metric="test_accuracy", value=s[0],
                    expected=chance, spread=SPREAD, spread_lo=s[1], spread_hi=s[2], n=s[3],
                    note="expected: 1 / num_classes (guessing)")
    if not rows:
        doc.para("No trained tickets: no ticket's provenance has a test_accuracy.")
        return
    res.chance = chance
    res.dense = dense if dense and dense[3] else None
    if res.dense is not None:
        sources = sorted({m for _, m in dense_by_seed.values()})
        doc.row(section="accuracy", **ctx.key, density=1.0, method_a="dense", metric="test_accuracy",
                value=dense[0], expected=chance, spread=SPREAD, spread_lo=dense[1], spread_hi=dense[2], n=dense[3],
                note=f"the trained dense network (round 0 of {', '.join(sources)}), one per seed")
        rows.insert(0, [f"dense network (round 0 of {', '.join(sources)})", "1", spread(*dense), num(chance)])
        base = (f" The dense network, trained with the same recipe (round 0 of {', '.join(sources)}, one per seed), "
                f"reaches {spread(*dense[:3])}.")
    else:
        base = (" No ticket records a trained dense network (IMP's and magnitude pruning's round 0), so there is "
                "no dense baseline.")
    doc.para(f"Test accuracy of the trained tickets, mean [{SPREAD}] (n seeds), beside chance = 1 / number of "
             f"classes ({num(chance)}).{base}")
    doc.table(["method", "density", "test accuracy", "chance"], rows)
    mark_note(doc, every)
    shown = {m: mark(m, m in sick_any) for m in ctx.methods}
    doc.figure(figures.accuracy(series, ctx.style, shown, chance, res.dense, f"Test accuracy vs density, {ctx.where}"),
               f"{ctx.where}-accuracy",
               f"Test accuracy of the trained tickets vs density (log scale), {ctx.where}; bars: {SPREAD} over seeds; "
               "black line: the trained dense network (band: its " + SPREAD + " over seeds); dashed: chance"
               + (f"; {MARK.strip()}: a method with unhealthy tickets" if sick_any else ""))

