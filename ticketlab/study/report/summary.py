"""Text generated from the numbers: "What this says" of each (model, data set), and the key
findings at the top of the report, each with its numbers and a link to the section behind it."""

from __future__ import annotations

import math
from typing import Any

from ticketlab.study.report.context import Context, GroupResult
from ticketlab.study.report.document import Document, Link, Span, num, pnum, spread
from ticketlab.study.report.load import Entry, mark
from ticketlab.study.report.overlap import pair_name, within_sentence
from ticketlab.study.report.rules import ALPHA, EFFECT, LIFT_THRESHOLD, MARK


def why(entries: list[Entry]) -> str:
    """``3 magnitude_init tickets: collapsed layers, ...``, per method."""
    parts = []
    for m in dict.fromkeys(e.method for e in entries):
        mine = [e.health for e in entries if e.method == m]
        kinds = []
        if any(h.collapsed_layers for h in mine):
            kinds.append("collapsed layers")
        if any(h.unreachable_classes for h in mine):
            kinds.append("classes without an input-to-output path")
        if any(h.at_chance for h in mine):
            kinds.append("accuracy at chance")
        parts.append(f"{len(mine)} {m} ticket{'s' if len(mine) > 1 else ''}: {', '.join(kinds)}")
    return "; ".join(parts)


def section_summary(doc: Document, ctx: Context, res: GroupResult) -> None:
    res.anchors["summary"] = doc.heading(3, "What this says")
    if not res.pair_stats:
        doc.para("No pairs of tickets, so nothing to say about overlap.")
        return
    doc.para(f"Generated from the numbers above. A method pair shares more than chance when its mean Jaccard "
             f"lift is at least {LIFT_THRESHOLD} and every seed pair's one-sided p (per-layer hypergeometric "
             f"null, normal approximation) is below {ALPHA}; less than chance when the mean lift is at most "
             f"{num(1 / LIFT_THRESHOLD)} and every p is above {1 - ALPHA}; otherwise it is counted as close to "
             f"chance. Within vs across counts as a difference when the permutation p is below {ALPHA}; a "
             f"difference of {num(EFFECT)} or more in lift that the test cannot confirm is reported as not resolved.")
    for d in sorted(res.pair_stats, reverse=True):
        claims = res.claims.get(d, res.pair_stats[d])  # pairs of tickets that are not unhealthy
        groups: dict[str, list[str]] = {"more": [], "chance": [], "less": [], "n/a": []}
        for (a, b), st in claims.items():
            bound = "largest p "
            if st["verdict"] == "more":
                bound = "every p " + ("" if st["p_max"] < 1e-300 else "≤ ")
            groups[st["verdict"]].append(f"{pair_name(a, b)} (lift {num(st['lift'])}, {bound}{pnum(st['p_max'])})")
            doc.row(section="summary", **ctx.key, density=d, method_a=a, method_b=b, metric="verdict", lift=st["lift"],
                    p=st["p_max"], n=st["n"], note=st["verdict"])
        anchor = res.anchors.get(f"overlap:{d}")
        doc.para(["At density ", Link(num(d), anchor) if anchor else num(d), ":"])
        items = ["Share more than chance: " + ("; ".join(groups["more"]) or "none") + ".",
                 "Do not share more than chance: " + ("; ".join(groups["chance"] + groups["less"]) or "none") + "."]
        if groups["less"]:
            items.append("Of these, less than chance: " + "; ".join(groups["less"]) + ".")
        items += [f"Within vs across, {within_sentence(m, w)}." for m, w in
                  res.within_claims.get(d, res.within.get(d, {})).items() if math.isfinite(w["p"])]
        left = res.left_out.get(d, [])
        if left:
            gone = [(a, b) for a, b in res.pair_stats[d] if (a, b) not in claims]
            for a, b in gone:
                doc.row(section="summary", **ctx.key, density=d, method_a=a, method_b=b, metric="verdict",
                        note="left out: no pair of tickets that are not unhealthy")
            items.append(f"Left out of these claims: {len(left)} unhealthy ticket{'s' if len(left) > 1 else ''} "
                         f"({why(left)}), and every pair that holds one"
                         + (f", so nothing is said about {'; '.join(pair_name(a, b) for a, b in gone)}" if gone else "")
                         + ".")
        doc.bullets(items)


# ------------------------------------------------------------------------------ key findings
def _links(res: GroupResult, kind: str, densities: list[float]) -> list[Span]:
    out: list[Span] = []
    for i, d in enumerate(densities):
        if i:
            out.append(", ")
        anchor = res.anchors.get(f"{kind}:{d}")
        out.append(Link(num(d), anchor) if anchor else num(d))
    return out


def group_findings(ctx: Context, res: GroupResult, named: bool) -> list[list[Span]]:
    """The key findings of one (model, data set), each a sentence with its numbers and links (each
    starting with the model and data set when ``named``)."""
    where = f"{ctx.where}: " if named else ""
    out: list[list[Span]] = []
    densities = sorted(res.claims, reverse=True)
    if densities:
        counts = []
        for i, d in enumerate(densities):
            claims = res.claims[d]
            more = sum(1 for st in claims.values() if st["verdict"] == "more")
            anchor = res.anchors.get(f"overlap:{d}")
            counts += [", " if i else "", f"{more} of {len(claims)} at density ",
                       Link(num(d), anchor) if anchor else num(d)]
        best = []
        for d in densities:
            ranked = [(st["lift"], k) for k, st in res.claims[d].items() if math.isfinite(st["lift"])]
            if ranked:
                lift, (a, b) = max(ranked)
                st = res.claims[d][(a, b)]
                best.append(f"{pair_name(a, b)} {spread(st['lift'], st['lo'], st['hi'])} at {num(d)}")
        gone = any(res.left_out.get(d) for d in densities)
        inside = list(dict.fromkeys(k for d in densities for k in res.nested.get(d, [])))
        out.append([where + "method pairs whose tickets share more than chance (mean Jaccard lift ≥ "
                    f"{LIFT_THRESHOLD}, every seed pair p < {ALPHA}"
                    + ("; pairs with an unhealthy ticket left out" if gone else "")
                    + ("; nested pairs left out, their overlap built in: " + ", ".join(pair_name(a, b) for a, b in inside)
                       if inside else "") + "): ", *counts,
                    ". The most shared: " + "; ".join(best) + "."])
    within = {d: w for d, w in res.within_claims.items() if w}
    tests = [st for w in within.values() for st in w.values() if st["verdict"] != "n/a"]
    if tests:
        ws = [st["within"] for st in tests]
        acr = [st["across"] for st in tests]
        confirmed = [st for st in tests if st["verdict"].startswith("closer")]
        unresolved = [st for st in tests if st["verdict"] == "not resolved"]
        equal = [st for st in tests if st["verdict"] == "about equal"]
        text = (where + f"a method's tickets at different seeds share a mean lift of {num(min(ws))} to "
                f"{num(max(ws))}; tickets of different methods from the same initial weights {num(min(acr))} to "
                f"{num(max(acr))} (means per method and density). The within- vs across-method test confirms a "
                f"difference for {len(confirmed)} of {len(tests)} (method, density) comparisons")
        if confirmed:
            closer = sum(1 for st in confirmed if st["verdict"] == "closer across")
            text += f" ({closer} closer across methods, {len(confirmed) - closer} closer within)"
        if unresolved:
            n_w = sorted({st["n_within"] for st in unresolved})
            text += (f"; {len(unresolved)} differences of {num(EFFECT)} or more it cannot resolve with "
                     f"{' or '.join(str(n) for n in n_w)} within pair{'' if n_w == [1] else 's'}")
        if equal:
            text += f"; {len(equal)} under {num(EFFECT)}"
        out.append([text + " (tests at density "] + _links(res, "within", sorted(within, reverse=True)) + [")."])
    acc = {d: a for d, a in res.accuracy.items() if a}
    if acc:
        d = min(acc)
        ranked = sorted(acc[d].items(), key=lambda kv: kv[1][0])
        sick = {e.method for e in res.left_out.get(d, [])}
        (lo_m, lo_s), (hi_m, hi_s) = ((mark(m, m in sick), st) for m, st in (ranked[0], ranked[-1]))
        dense = f"the dense network {spread(*res.dense[:3])}" if res.dense else "no dense baseline recorded"
        out.append([where + f"trained tickets at density {num(d)}: the best {hi_m} ({spread(*hi_s[:3])}), the worst "
                    f"{lo_m} ({spread(*lo_s[:3])}); {dense}; chance {num(res.chance)} (",
                    Link("accuracy vs density", res.anchors["accuracy"]), ")."])
    js = {d: v for d, v in res.js_uniform.items() if v}
    if js:
        d = min(js)
        ranked = sorted(((s[0], m) for m, s in js[d].items() if math.isfinite(s[0])))
        if ranked:
            sick = {e.method for e in res.left_out.get(d, [])}
            (lo, lo_m), (hi, hi_m) = ((v, mark(m, m in sick)) for v, m in (ranked[0], ranked[-1]))
            anchor = res.anchors.get(f"profiles:{d}")
            out.append([where + f"per-layer allocation at density {num(d)}, Jensen-Shannon distance to a uniform "
                        f"random mask's: the farthest {hi_m} ({num(hi)}), the closest {lo_m} ({num(lo)}) (",
                        Link("per-layer densities", anchor) if anchor else "per-layer densities", ")."])
    return [[_capital(f[0]), *f[1:]] if f and isinstance(f[0], str) else f for f in out]


def _capital(s: str) -> str:
    return s[:1].upper() + s[1:]


def findings_of_study(tickets: dict[str, Any], sick: list[Entry], anchors: dict[str, str]) -> list[list[Span]]:
    """The study-wide findings: the tickets' states and their health."""
    out: list[list[Span]] = [[f"{tickets['ready']} of {tickets['jobs']} tickets are ready, {tickets['failed']} failed, "
                              f"{tickets['pending']} pending, {tickets['unusable']} unusable (",
                              Link("tickets and run times", anchors["tickets"]), ")."]]
    if sick:
        per = {m: sum(1 for e in sick if e.method == m) for m in dict.fromkeys(e.method for e in sick)}
        out.append([f"{len(sick)} of {tickets['ready']} tickets are unhealthy ("
                    + ", ".join(f"{m} {k}" for m, k in per.items()) + "); they are marked "
                    f"{MARK.strip()} and left out of every claim (", Link("ticket health", anchors["health"]), ")."])
    return out
