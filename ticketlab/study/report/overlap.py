"""Overlap sections: every pair's Jaccard beside chance, method pairs, within- vs across-method,
and lift vs density.

The expected Jaccard of a pair is that of random masks with the two tickets' per-layer kept
counts (:func:`ticketlab.metrics.chance.expected_jaccard_matrix`, what ``compare`` gives for the
whole network); its one-sided p is the normal approximation of ``P(X >= x)`` with a continuity
correction (:func:`ticketlab.metrics.chance.normal_tails`). Method pairs are aggregated over seed
pairs: different methods over same-seed pairs (the same initial weights), a method with itself
over pairs of different seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ticketlab.errors import ConfigError
from ticketlab.study.report import figures
from ticketlab.study.report.context import Context, GroupResult
from ticketlab.study.report.document import Document, num, pnum, spread
from ticketlab.study.report.load import Entry, kept_sizes, mark, sick_methods, stats
from ticketlab.study.report.rules import (
    ALPHA, BOOTSTRAP_SEED, EFFECT, LEVEL, LIFT_THRESHOLD, MARK, N_BOOTSTRAP, N_PERMUTATIONS, PERMUTATION_SEED, SPREAD,
)


@dataclass
class Overlap:
    """Pairwise overlap of one (group, density): Jaccard, chance, lift, z, one-sided p, clustering."""

    entries: list[Entry]
    jaccard: np.ndarray
    expected: np.ndarray
    lift: np.ndarray
    z: np.ndarray
    p: np.ndarray
    linkage: np.ndarray | None
    order_note: str | None = None
    pairs: dict[tuple[str, str], list[tuple[int, int]]] = field(default_factory=dict)
    nested: np.ndarray | None = None  # [i, j]: in every layer the smaller mask lies inside the larger


def nested_matrix(tickets: list[Any]) -> np.ndarray:
    """``[i, j]`` True when the two tickets keep different counts and, in every layer, the smaller
    of their masks lies inside the larger one (identical masks are not flagged: two methods or seeds
    that give the same mask is a finding): their overlap is built in (e.g. two variants of one method that draw the same
    per-weight scores from the seed's stream and keep other counts), not found.

    Example:
        >>> from ticketlab.ticket import Ticket
        >>> a = Ticket(masks={"w": np.array([1, 1, 0, 0], bool)})
        >>> b = Ticket(masks={"w": np.array([1, 0, 0, 0], bool)})
        >>> c = Ticket(masks={"w": np.array([0, 0, 1, 0], bool)})
        >>> nested_matrix([a, b, c]).astype(int).tolist()
        [[0, 1, 0], [1, 0, 0], [0, 0, 0]]
    """
    n = len(tickets)
    out = np.zeros((n, n), dtype=bool)
    kept = [[int(np.count_nonzero(m)) for m in t.masks.values()] for t in tickets]
    for i in range(n):
        for j in range(i + 1, n):
            if kept[i] == kept[j]:  # equal counts: nested means identical, a finding (e.g. a seed-free method)
                continue
            ok = True
            for name, a in tickets[i].masks.items():
                b = tickets[j].masks[name]
                small, big = (a, b) if np.count_nonzero(a) <= np.count_nonzero(b) else (b, a)
                if np.any(small & ~big):
                    ok = False
                    break
            out[i, j] = out[j, i] = ok
    return out


def overlap(entries: list[Entry]) -> Overlap:
    from ticketlab.metrics.chance import expected_jaccard_matrix, normal_tails
    from ticketlab.metrics.many import pairwise_matrix

    tickets = [e.ticket for e in entries]
    mat = pairwise_matrix(tickets, "jaccard", labels=[e.label for e in entries])  # bit-packed popcounts
    jac = mat.values
    kept, sizes = kept_sizes(tickets)
    mean, var, expected = expected_jaccard_matrix(kept, sizes)
    tot = kept.sum(axis=1)
    s = tot[:, None] + tot[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = jac / expected
        x = np.rint(np.nan_to_num(jac * s / (1.0 + jac)))  # the intersection, from J = X / (s - X)
        z = (x - mean) / np.sqrt(var)
    p = normal_tails(x, mean, var)[0]
    try:
        tree, note = mat.linkage(), None
    except ConfigError as exc:
        tree, note = None, f"not clustered: {exc}"
    pairs: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for i, a in enumerate(entries):
        for j in range(i + 1, len(entries)):
            b = entries[j]
            if a.method == b.method and a.seed != b.seed:
                pairs.setdefault((a.method, a.method), []).append((i, j))
            elif a.method != b.method and a.seed == b.seed:
                pairs.setdefault((a.method, b.method), []).append((i, j))
    return Overlap(entries, jac, expected, lift, z, p, tree, note, pairs, nested_matrix(tickets))


def pair_name(a: str, b: str) -> str:
    return f"{a}–{b}" if a != b else f"{a}–{a} (seeds)"


def verdict(mean_lift: float, p_max: float, p_min: float) -> str:
    if not math.isfinite(mean_lift):
        return "n/a"
    if mean_lift >= LIFT_THRESHOLD and p_max < ALPHA:
        return "more"
    if mean_lift <= 1.0 / LIFT_THRESHOLD and p_min > 1.0 - ALPHA:
        return "less"
    return "chance"


def pair_stats(ov: Overlap, pairs: dict[tuple[str, str], list[tuple[int, int]]]
               ) -> dict[tuple[str, str], dict[str, Any]]:
    """Mean lift [spread], largest / smallest p, mean Jaccard and chance, and the verdict per method pair."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for (ma, mb), idx in pairs.items():
        if not idx:
            continue
        mean, lo, hi, n = stats(ov.lift[i, j] for i, j in idx)
        ps = [ov.p[i, j] for i, j in idx]
        st = {"lift": mean, "lo": lo, "hi": hi, "n": n, "p_max": max(ps), "p_min": min(ps),
              "jaccard": stats(ov.jaccard[i, j] for i, j in idx)[0],
              "expected": stats(ov.expected[i, j] for i, j in idx)[0]}
        st["verdict"] = verdict(mean, st["p_max"], st["p_min"])
        out[(ma, mb)] = st
    return out


def healthy_pairs(ov: Overlap) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """``ov.pairs`` without the pairs that hold an unhealthy ticket, and without nested pairs
    (:func:`nested_matrix`: their overlap is built in): the pairs the claims rest on."""
    ok = [not e.unhealthy for e in ov.entries]
    inside = ov.nested if ov.nested is not None else np.zeros((len(ov.entries),) * 2, dtype=bool)
    return {k: [(i, j) for i, j in idx if ok[i] and ok[j] and not inside[i, j]] for k, idx in ov.pairs.items()}


def nested_pairs(ov: Overlap) -> list[tuple[str, str]]:
    """Method pairs with a nested pair of tickets (see :func:`nested_matrix`)."""
    if ov.nested is None:
        return []
    return [k for k, idx in ov.pairs.items() if any(ov.nested[i, j] for i, j in idx)]


def mark_note(doc: Document, entries: list[Entry]) -> None:
    """Under a table or figure of ``entries``: which methods the mark flags, and how many tickets."""
    sick = [e for e in entries if e.unhealthy]
    if sick:
        per = {m: sum(1 for e in sick if e.method == m) for m in dict.fromkeys(e.method for e in sick)}
        of = {m: sum(1 for e in entries if e.method == m) for m in per}
        doc.para(f"{MARK.strip()} unhealthy tickets (see Ticket health): " + "; ".join(
            f"{m}: {k} of {of[m]}" for m, k in per.items()) + ". Their numbers are shown but left out of the "
            "claims of \"What this says\".")


def section_overlap(doc: Document, ctx: Context, d: float, entries: list[Entry], res: GroupResult) -> Overlap | None:
    res.anchors[f"overlap:{d}"] = doc.heading(4, f"Overlap at density {num(d)}")
    if len(entries) < 2:
        doc.para("Only one ticket at this density: no pair to compare.")
        return None
    ov = overlap(entries)
    for i, a in enumerate(entries):
        for j in range(i + 1, len(entries)):
            b = entries[j]
            doc.row(section="overlap_pair", **ctx.key, density=d, method_a=a.method, method_b=b.method,
                    seed_a=a.seed, seed_b=b.seed, label_a=a.label, label_b=b.label, metric="jaccard",
                    value=ov.jaccard[i, j], expected=ov.expected[i, j], lift=ov.lift[i, j], z=ov.z[i, j],
                    p=ov.p[i, j], note="per-layer-density null; p one-sided, normal approximation")
    labels = [mark(e.label, e.unhealthy) for e in entries]
    doc.figure(figures.heatmap(ov.lift, labels, ov.linkage, f"Jaccard lift over chance, {ctx.where}, density {num(d)}"),
               f"{ctx.where}-d{d}-overlap",
               f"Jaccard lift over chance of every pair of tickets (red: more shared than random masks with the same "
               f"per-layer kept counts, blue: less, white: chance), {ctx.where}, density {num(d)}; rows and columns "
               "in the order of the tree on the top and left (average linkage of 1 - Jaccard); the Jaccard values are "
               "the overlap_pair rows of results.csv" + (f"; {ov.order_note}" if ov.order_note else "")
               + (f"; {MARK.strip()}: an unhealthy ticket" if any(e.unhealthy for e in entries) else ""))
    present = ctx.present(entries)
    sick = sick_methods(entries)
    table = pair_stats(ov, ov.pairs)
    for (ma, mb), st in table.items():
        doc.row(section="overlap_method_pair", **ctx.key, density=d, method_a=ma, method_b=mb, metric="jaccard",
                value=st["jaccard"], expected=st["expected"], lift=st["lift"], p=st["p_max"], spread=SPREAD,
                spread_lo=st["lo"], spread_hi=st["hi"], n=st["n"],
                note="pairs of different seeds" if ma == mb else "same-seed pairs; p = largest one-sided p")
    res.pair_stats[d] = table
    inside = nested_pairs(ov)
    res.claims[d] = pair_stats(ov, healthy_pairs(ov)) if sick or inside else table
    res.left_out[d] = [e for e in entries if e.unhealthy]
    res.nested[d] = inside

    def cell(a: str, b: str) -> str:
        st = table.get((a, b)) or table.get((b, a))
        return "n/a" if st is None else spread(st["lift"], st["lo"], st["hi"])

    doc.para(f"Mean Jaccard lift over chance by method pair [{SPREAD} over seed pairs]. Off the diagonal: "
             "pairs of tickets of the two methods at the same seed (same initial weights); on the diagonal: "
             "a method's tickets at different seeds. Lift 1 is what random masks with the same per-layer "
             "kept counts give.")
    shown = {m: mark(m, m in sick) for m in present}
    doc.table(["method", *shown.values()], [[shown[a], *(cell(a, b) for b in present)] for a in present])
    rows = [[pair_name(shown[ma], shown[mb]), str(st["n"]), num(st["jaccard"]), num(st["expected"]),
             spread(st["lift"], st["lo"], st["hi"]), pnum(st["p_max"])] for (ma, mb), st in table.items()]
    doc.table(["method pair", "seed pairs", "mean Jaccard", "mean expected Jaccard (chance)",
               f"lift [{SPREAD}]", "largest one-sided p"], rows)
    mark_note(doc, entries)
    if inside:
        doc.para("Nested pairs: " + ", ".join(pair_name(a, b) for a, b in inside) + ". In every layer one ticket's "
                 "mask lies inside the other's, so their overlap is built in, not found (e.g. two variants of one "
                 "method that draw the same per-weight scores from the seed's stream and keep other counts). These "
                 "pairs are shown but left out of the claims of \"What this says\" and of the key findings.")
    return ov


# ------------------------------------------------------------------------------ within vs across
def within_across(ov: Overlap, pairs: dict[tuple[str, str], list[tuple[int, int]]], present: list[str]
                  ) -> tuple[dict[str, tuple[list[float], list[tuple[str, float]]]], dict[str, dict[str, Any]]]:
    """Per method: the finite lifts within (other seeds) and across (same seed, with the other
    method), and their comparison: difference of the means with its bootstrap interval, the
    permutation p, and what the test can resolve at these group sizes."""
    from ticketlab.metrics.stats import bootstrap_difference, permutation_resolution, permutation_test

    data: dict[str, tuple[list[float], list[tuple[str, float]]]] = {}
    out: dict[str, dict[str, Any]] = {}
    for m in present:
        within = [float(ov.lift[i, j]) for i, j in pairs.get((m, m), [])]
        across = [(b if a == m else a, float(ov.lift[i, j])) for (a, b), idx in pairs.items()
                  if a != b and m in (a, b) for i, j in idx]
        within = [v for v in within if math.isfinite(v)]
        across = [(o, v) for o, v in across if math.isfinite(v)]
        data[m] = (within, across)
        values = [v for _, v in across]
        w, a = stats(within), stats(values)
        both = bool(within and values)
        p = permutation_test(within, values, N_PERMUTATIONS, PERMUTATION_SEED) if both else math.nan
        diff, lo, hi = bootstrap_difference(within, values, LEVEL, N_BOOTSTRAP, BOOTSTRAP_SEED)
        splits, extreme = permutation_resolution(len(within), len(values), ALPHA) if both else (0, 0)
        out[m] = {"within": w[0], "across": a[0], "diff": diff, "lo": lo, "hi": hi, "p": p, "n_within": w[3],
                  "n_across": a[3], "w": w, "a": a, "splits": splits, "extreme": extreme}
        out[m]["verdict"] = within_verdict(out[m])
    return data, out


def within_verdict(st: dict[str, Any]) -> str:
    """``closer within`` / ``closer across`` (the test's p below ALPHA), ``about equal`` (not
    resolved, and the difference under EFFECT), ``not resolved`` (a difference of EFFECT or more
    that the test cannot confirm at these group sizes), or ``n/a``."""
    if not math.isfinite(st["p"]):
        return "n/a"
    if st["p"] < ALPHA:
        return "closer within" if st["diff"] > 0 else "closer across"
    return "about equal" if abs(st["diff"]) < EFFECT else "not resolved"


def within_sentence(m: str, st: dict[str, Any]) -> str:
    """One clause about method ``m``'s within- vs across-method comparison, with its numbers."""
    nums = (f"mean lift {num(st['within'])} within vs {num(st['across'])} across, difference {num(st['diff'])} "
            f"[{LEVEL:.0%} bootstrap {num(st['lo'])} to {num(st['hi'])}], permutation p = {pnum(st['p'])}")
    v = st["verdict"]
    if v == "closer within":
        rel = "closer to its own tickets at other seeds than to other methods' at the same seed"
    elif v == "closer across":
        rel = "closer to other methods' tickets at the same seed than to its own at other seeds"
    elif v == "about equal":
        rel = "about as close to its own tickets at other seeds as to other methods' at the same seed"
    else:
        side = "less" if st["diff"] < 0 else "more"
        rel = (f"{side} overlap with its own tickets at other seeds than with other methods' at the same seed, "
               f"a difference the test cannot confirm with {st['n_within']} within and {st['n_across']} across pairs")
    return f"{m}: {rel} ({nums})"


def section_within(doc: Document, ctx: Context, d: float, ov: Overlap, res: GroupResult) -> None:
    present = ctx.present(ov.entries)
    sick = sick_methods(ov.entries)
    shown = {m: mark(m, m in sick) for m in present}
    data, out = within_across(ov, ov.pairs, present)
    rows = []
    for m in present:
        st = out[m]
        for metric, s in (("jaccard_lift_within", st["w"]), ("jaccard_lift_across", st["a"])):
            doc.row(section="within_vs_across", **ctx.key, density=d, method_a=m, metric=metric, value=s[0],
                    expected=1.0, spread=SPREAD, spread_lo=s[1], spread_hi=s[2], n=s[3])
        doc.row(section="within_vs_across", **ctx.key, density=d, method_a=m, metric="within_minus_across",
                value=st["diff"], expected=0.0, p=st["p"], spread=f"{LEVEL:.0%} bootstrap", spread_lo=st["lo"],
                spread_hi=st["hi"], n=st["n_within"],
                note=f"two-sided permutation test of the difference of means, {N_PERMUTATIONS} permutations, "
                     f"seed {PERMUTATION_SEED}; {st['verdict']}")
        diff = "n/a" if not math.isfinite(st["diff"]) else f"{num(st['diff'])} [{num(st['lo'])} to {num(st['hi'])}]"
        side = " (within lower)" if st["diff"] < 0 else " (within higher)"
        rows.append([shown[m], spread(*st["w"]), spread(*st["a"]), diff, pnum(st["p"]),
                     st["verdict"] + (side if st["verdict"] == "not resolved" else "")])
    res.within[d] = out
    res.within_claims[d] = within_across(ov, healthy_pairs(ov), present)[1] if sick or res.nested.get(d) else out
    res.anchors[f"within:{d}"] = doc.heading(4, f"Within- vs across-method at density {num(d)}")
    doc.para(f"Jaccard lift of a method's tickets at different seeds (within) and of its tickets beside other "
             f"methods' tickets at the same seed (across), mean [{SPREAD}] (n pairs); chance is lift 1 for both. "
             f"The effect is the difference of the means, with a {LEVEL:.0%} percentile bootstrap interval "
             f"({N_BOOTSTRAP} resamples of each group, seed {BOOTSTRAP_SEED}). p: two-sided permutation test of "
             f"that difference ({N_PERMUTATIONS} permutations, seed {PERMUTATION_SEED}).")
    doc.para(_resolution(out, present))
    doc.table(["method", "within", "across", f"within - across [{LEVEL:.0%} bootstrap]", "permutation p", "verdict"],
              rows)
    if any(w or a for w, a in data.values()):
        doc.figure(figures.within_across(present, [shown[m] for m in present], data, ctx.style,
                                         f"{ctx.where}, density {num(d)}"),
                   f"{ctx.where}-d{d}-within",
                   f"Jaccard lift of each method's tickets at other seeds (black, left) and beside other methods' "
                   f"tickets at the same seed (right, coloured as the other method), {ctx.where}, density {num(d)}; "
                   "bars: means; dashed: chance"
                   + (f"; {MARK.strip()}: a method with unhealthy tickets" if sick else ""))
    mark_note(doc, ov.entries)


def _resolution(out: dict[str, dict[str, Any]], present: list[str]) -> str:
    """What the test can resolve at the group sizes of this density."""
    sizes = sorted({(out[m]["n_within"], out[m]["n_across"], out[m]["splits"], out[m]["extreme"]) for m in present
                    if out[m]["splits"]})
    if not sizes:
        return "No method has both kinds of pair here, so there is no test."
    nw, na, splits, extreme = sizes[0]
    text = (f"What the test can resolve: with {nw} within and {na} across pairs there are {splits:,} ways to split "
            f"the {nw + na} lifts into the two groups, and p < {ALPHA} needs the observed split to be among the "
            f"{extreme:,} most extreme, i.e. the {nw} within lifts must lie beyond nearly all of the {na} across ones. "
            if extreme else
            f"What the test can resolve: with {nw} within and {na} across pairs there are only {splits:,} ways to "
            f"split the lifts, so p cannot go below {ALPHA}. ")
    if len(sizes) > 1:
        text += "(Other methods here have other group sizes: see n in the table.) "
    return text + ("The across pairs mix partner methods whose lifts differ widely (see the figure), so a large "
                   "difference can still leave p large: 'not resolved' marks a difference of at least "
                   f"{num(EFFECT)} in lift that the test cannot confirm, never the absence of a difference; "
                   f"'about equal' a difference under {num(EFFECT)}. Pairs that share a ticket are not independent, "
                   "and the interval is rough with so few pairs.")


# ------------------------------------------------------------------------------ lift vs density
def section_vs_density(doc: Document, ctx: Context, res: GroupResult, sick: set[str]) -> None:
    res.anchors["vs_density"] = doc.heading(3, "Overlap vs density")
    panels: dict[str, dict[str, list[tuple[float, float, float, float]]]] = {}
    for d, table in res.pair_stats.items():
        for (a, b), st in table.items():
            point = (d, st["lift"], st["lo"], st["hi"])
            panels.setdefault(a, {}).setdefault(b, []).append(point)
            if a != b:
                panels.setdefault(b, {}).setdefault(a, []).append(point)
    if not panels:
        doc.para("No method pair to plot.")
        return
    order = [m for m in ctx.methods if m in panels]
    panels = {m: {o: panels[m][o] for o in ctx.methods if o in panels[m]} for m in order}
    titles = {m: mark(m, m in sick) for m in ctx.methods}
    doc.figure(figures.lift_panels(panels, titles, ctx.style, f"Mean Jaccard lift over chance vs density, {ctx.where}"),
               f"{ctx.where}-lift-vs-density",
               f"Mean Jaccard lift over chance vs density, {ctx.where}: one panel per method, one line per other "
               f"method at the same seed (coloured as that method; dashed: the panel's method with itself at other "
               f"seeds); bars: {SPREAD} over seed pairs; dotted: chance. Each pair appears in the panels of both "
               "its methods. The numbers are the overlap_method_pair rows of results.csv"
               + (f"; {MARK.strip()}: a method with unhealthy tickets" if sick else ""))
