"""Graph properties and signs per method, beside a random mask with the same per-layer kept counts.

The metrics are every registered single-ticket metric of the groups :data:`GRAPH_GROUPS`
(``graph``, and ``relational`` once it is registered), in registry order, so a metric registered
in one of those groups appears here without a change to the report. The baseline of a method is
``shuffle_layerwise`` of its first ticket (seed :data:`BASELINE_SEED`); ``sign_kept`` is beside
0.5, its value when the final sign is independent of the initial one.
"""

from __future__ import annotations

import math
from typing import Any

from ticketlab.errors import TicketlabError
from ticketlab.study.report.context import Context, GroupResult
from ticketlab.study.report.document import Document, num, spread
from ticketlab.study.report.load import Entry, mark, sick_methods, stats
from ticketlab.study.report.overlap import mark_note
from ticketlab.study.report.rules import BASELINE_SEED, GRAPH_GROUPS, SPREAD
from ticketlab.ticket import Ticket

NO_PATH = -math.inf  # log10_paths of a ticket whose graph has no input-to-output path


def graph_metrics() -> list[str]:
    """The registered single-ticket metrics of :data:`GRAPH_GROUPS`, in registry order."""
    from ticketlab.metrics import get_metric, list_groups

    groups = list_groups()
    return [n for g in GRAPH_GROUPS for n in groups.get(g, []) if get_metric(n).kind == "single"]


def _total(result: Any) -> float | None:
    v = result.get("__total__") if isinstance(result, dict) else result
    if isinstance(v, dict):
        v = v.get("value")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _analyzable(t: Ticket, cache: Any) -> bool:
    """Whether the ticket's graph could be analysed (so a missing path count means no path)."""
    from ticketlab.metrics.graph import analyze

    try:
        analyze(t, cache)
    except TicketlabError:
        return False
    return True


def values(t: Ticket, names: list[str]) -> dict[str, float | None]:
    """The section's numbers of one ticket (None where a metric does not apply)."""
    from ticketlab.metrics import Cache, get_metric

    cache = Cache()
    out: dict[str, float | None] = {}
    for name in names:
        try:
            v = _total(get_metric(name)(t, cache=cache))
        except TicketlabError:
            v = None
        if name == "log10_paths" and v is None and _analyzable(t, cache):
            v = NO_PATH  # the metric's None: no input-to-output path (collapsed)
        out[name] = v
    if t.weights.get("init") and t.weights.get("final"):
        out["sign_kept"] = _total(get_metric("sign_kept")(t))
    else:
        out["sign_kept"] = None
    return out


def _text(v: float | None) -> str:
    return "no path" if v == NO_PATH else num(v)


def describe(doc: Document, res: GroupResult, names: list[str]) -> None:
    """The section's heading and what each column is."""
    from ticketlab.metrics import get_metric

    res.anchors["graph"] = doc.heading(3, "Graph properties and signs")
    doc.para(f"Per method, mean [{SPREAD}] over its tickets (n where some are left out); under each metric, chance: "
             f"the metric of a random mask with the method's first ticket's per-layer kept counts (shuffle_layerwise, "
             f"seed {BASELINE_SEED}), and 0.5 for sign_kept. The rows are the single-ticket metrics of the metric "
             f"groups {', '.join(GRAPH_GROUPS)} (those registered here), and sign_kept:")
    doc.bullets([f"{n}: {get_metric(n).description}" for n in names]
                + ["sign_kept: share of the kept weights whose final sign equals the initial one (chance 0.5; "
                   "needs init and final weights)"])


def section_graph(doc: Document, ctx: Context, d: float, entries: list[Entry], names: list[str],
                  res: GroupResult) -> None:
    from ticketlab.transforms import shuffle_layerwise

    res.anchors[f"graph:{d}"] = doc.heading(4, f"Graph properties and signs at density {num(d)}")
    present = ctx.present(entries)
    sick = sick_methods(entries)
    per = {e.job_id: values(e.ticket, names) for e in entries}
    made: dict[tuple[int, ...], dict[str, float | None]] = {}
    columns: list[tuple[list[str], list[str]]] = []
    for m in present:
        mine = [e for e in entries if e.method == m]
        counts = tuple(mine[0].ticket.layer_kept().values())
        if counts not in made:
            made[counts] = values(shuffle_layerwise(mine[0].ticket, seed=BASELINE_SEED), names)
        base = made[counts]
        cells, chance_cells = [], []
        for name in (*names, "sign_kept"):
            vals = [per[e.job_id][name] for e in mine]
            s = stats(vals)
            no_path = sum(1 for v in vals if v == NO_PATH)
            chance = base[name] if name != "sign_kept" else 0.5
            if s[3] == 0 and not no_path:
                what = "not computed (no init and final weights stored)" if name == "sign_kept" else "not computed"
                cells.append(what)
                chance_cells.append("")
                doc.row(section="graph", **ctx.key, density=d, method_a=m, metric=name, n=0, note=what)
                continue
            text = spread(*s[:3]) + (f" (n={s[3]})" if s[3] != len(vals) else "") if s[3] else \
                f"no path (all {len(vals)} tickets)"
            if no_path and s[3]:
                text += f"; {no_path} of {len(vals)} tickets without any input-output path"
            cells.append(text)
            chance_cells.append(_text(chance))
            note = ("expected: 0.5 (final sign independent of the initial one)" if name == "sign_kept"
                    else f"expected: shuffle_layerwise of {m}'s first ticket (seed {BASELINE_SEED})")
            if no_path:
                note += f"; {no_path} tickets without any input-output path are left out of the mean"
            doc.row(section="graph", **ctx.key, density=d, method_a=m, metric=name, value=s[0],
                    expected=None if chance == NO_PATH else chance, spread=SPREAD, spread_lo=s[1],
                    spread_hi=s[2], n=s[3], note=note)
        columns.append((cells, chance_cells))
    rows = []
    for i, name in enumerate((*names, "sign_kept")):  # one row per metric, and its chance under it
        rows.append([name, *(c[0][i] for c in columns)])
        rows.append(["chance", *(c[1][i] for c in columns)])
    doc.table(["metric", *(mark(m, m in sick) for m in present)], rows)
    mark_note(doc, entries)
