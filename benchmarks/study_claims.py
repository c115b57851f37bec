"""Check three claims of the literature against the committed study reports; write docs/results/studies.md.

Reads ``results.csv`` of ``docs/results/study_lenet_digits`` (and of ``study_conv4_digits`` and
``study_lenet_fashion`` when present), made by::

    ticketlab study run examples/study_lenet_digits.toml -o docs/results/study_lenet_digits --jobs 2
    ticketlab study run examples/study_conv4_digits.toml -o docs/results/study_conv4_digits --jobs 2
    ticketlab study run examples/study_lenet_fashion.toml -o docs/results/study_lenet_fashion --jobs 2
    ticketlab study run examples/study_lenet5_fashion.toml -o docs/results/study_lenet5_fashion --jobs 2

then every sentence of the page is generated from those numbers (thresholds stated on the page).
For the full-size study (``THESIS``) the page also answers the thesis question
(``benchmarks/study_thesis.py``: overlap against both nulls, seeds, profiles, graph properties,
accuracy) and says where the digits answers changed; its degree-preserving null is computed from
the tickets once into the study's ``degree_null.csv`` (about 10 minutes), then read. The three
claims:

1. IMP tickets from different seeds overlap little more than chance (Frankle & Carbin 2019's
   random-reinit argument; Movva et al.): IMP-IMP (different seeds) mean Jaccard lift.
2. SNIP and magnitude-at-init tickets are close: their same-seed lift, and the profile distance.
3. SynFlow's per-layer profile differs from the data-driven methods' (SNIP, GraSP, IMP):
   Jensen-Shannon distance of the allocation profiles.

Usage: ``python benchmarks/study_claims.py``
"""

from __future__ import annotations

import csv
from pathlib import Path

from ticketlab.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
STUDIES = {"lenet_300_100 / digits": "study_lenet_digits", "conv4 / digits": "study_conv4_digits",
           "lenet_300_100 / fashion_mnist": "study_lenet_fashion", "lenet5 / fashion_mnist": "study_lenet5_fashion"}
#: The full-size studies that answer the thesis question, and the small study of the same model
#: that each is compared with (None: none).
THESIS = {"study_lenet_fashion": "study_lenet_digits", "study_lenet5_fashion": None}
CLOSE_LIFT = 1.25  # "little more than chance": mean lift below this at every density
FAR_JS = 0.2  # a Jensen-Shannon distance of the allocation profiles at least this "differs"


def _rows(folder: str) -> list[dict[str, str]]:
    path = RESULTS / folder / "results.csv"
    return list(csv.DictReader(path.open())) if path.exists() else []


def _unhealthy(rows) -> dict[tuple[float, str], int]:
    """(density, method) -> number of its tickets that ``ticketlab.health`` calls unhealthy (the
    report's ``health`` rows)."""
    out: dict[tuple[float, str], int] = {}
    for r in rows:
        if r["section"] == "health" and r["value"] not in ("", "0", "0.0"):
            key = (float(r["density"]), r["method_a"])
            out[key] = out.get(key, 0) + 1
    return out


def _pick(rows, section, a, b, key="lift"):
    """Values of the pair (a, b) per density, densities where a ticket of a or b is unhealthy left out."""
    bad = _unhealthy(rows)
    out = {}
    for r in rows:
        if r["section"] == section and {r["method_a"], r["method_b"]} == {a, b} and (a != b or r["method_a"] == a):
            d = float(r["density"])
            if not bad.get((d, a)) and not bad.get((d, b)):
                out[d] = (float(r[key]), r.get("spread_lo"), r.get("spread_hi"), r.get("p"))
    return dict(sorted(out.items(), reverse=True))


def _left_out(rows, *methods) -> str:
    """A sentence naming the densities left out because tickets of ``methods`` are unhealthy."""
    bad = _unhealthy(rows)
    parts = [f"{n} {m} ticket{'s' if n > 1 else ''} at density {d:g}" for (d, m), n in sorted(bad.items(), reverse=True)
             if m in methods]
    return (" Left out (unhealthy, `ticketlab.health`; see the report's Ticket health section): "
            + "; ".join(parts) + ".") if parts else ""


def _fmt(values: dict, p: bool = False) -> str:
    parts = []
    for d, (v, lo, hi, pv) in values.items():
        spread = f" [{float(lo):.3g}-{float(hi):.3g}]" if lo and hi else ""
        pp = f", p {float(pv):.2g}" if p and pv not in (None, "") else ""
        parts.append(f"{v:.3g}{spread} at density {d:g}{pp}")
    return "; ".join(parts)


def claims(label: str, rows: list[dict[str, str]]) -> list[str]:
    out = [f"## {label}", ""]
    methods = {r["method_a"] for r in rows if r["section"] == "overlap_method_pair"}
    if "imp" in methods:
        imp = _pick(rows, "overlap_method_pair", "imp", "imp")
        ok = all(v[0] < CLOSE_LIFT for v in imp.values())
        out.append(f"1. **IMP across seeds** — mean Jaccard lift of IMP tickets of different seeds: {_fmt(imp, True)}. "
                   + ("Below " if ok else "Not below ") + f"{CLOSE_LIFT} at every density assessed: the claim "
                   + ("reproduces" if ok else "does not reproduce") + "." + _left_out(rows, "imp"))
    if {"snip", "magnitude_init"} <= methods:
        lift = _pick(rows, "overlap_method_pair", "snip", "magnitude_init")
        js = _pick(rows, "profile_js", "snip", "magnitude_init", key="value")
        ok = bool(lift) and all(v[0] > CLOSE_LIFT for v in lift.values())
        empty = sorted({(float(r["density"]), r["layer"]) for r in rows if r["section"] == "profile"
                        and r["method_a"] == "magnitude_init" and float(r["spread_hi"] or r["value"]) == 0.0},
                       reverse=True)
        collapse = (" magnitude_init keeps no weight of " + ", ".join(f"{layer} at density {d:g}" for d, layer in empty)
                    + " (layer collapse: global magnitude ranking at init, Tanaka et al. 2020), which is why "
                    "their allocation profiles are far apart.") if empty else ""
        acc = [(float(r["density"]), float(r["value"]), float(r["expected"])) for r in rows
               if r["section"] == "accuracy" and r["method_a"] == "magnitude_init" and r["value"]]
        if acc:
            collapse += " Its trained tickets' test accuracy: " + "; ".join(
                f"{v:.3g} at density {d:g} (chance {e:.3g})" for d, v, e in sorted(acc, reverse=True)) + "."
        if lift:
            out.append(f"2. **SNIP vs magnitude at init** — same-seed Jaccard lift {_fmt(lift, True)}; profile JS "
                       f"distance {_fmt(js)}. They share " + ("more" if ok else "not clearly more")
                       + f" than chance (lift above {CLOSE_LIFT} at every density assessed): the claim "
                       + ("reproduces" if ok else "does not reproduce") + " for overlap."
                       + _left_out(rows, "snip", "magnitude_init") + collapse)
        else:  # every density holds a dead ticket: an overlap with a dead network is no evidence either way
            out.append("2. **SNIP vs magnitude at init** — not assessed: at every density some of these tickets are "
                       "unhealthy, so their overlap says nothing about the claim." + _left_out(rows, "snip", "magnitude_init")
                       + collapse)
    else:
        out.append("2. **SNIP vs magnitude at init** — not in this study (no magnitude_init tickets).")
    if "synflow" in methods:
        lines = []
        verdicts = []
        for other in ("snip", "grasp", "imp"):
            if other in methods:
                js = _pick(rows, "profile_js", "synflow", other, key="value")
                if not js:
                    lines.append(f"{other}: not assessed (unhealthy tickets at every density)")
                    continue
                n_far = sum(v[0] >= FAR_JS for v in js.values())
                far = n_far == len(js)
                verdicts.append((other, far))
                how = ("differs at every density" if far else "differs at no density" if n_far == 0
                       else f"differs at {n_far} of {len(js)} densities")
                lines.append(f"{other}: {_fmt(js)} ({how})")
        verdict = ("reproduces" if all(v for _, v in verdicts) else "is refuted for " + ", ".join(
            o for o, v in verdicts if not v)) if verdicts else "cannot be assessed"
        out.append("3. **SynFlow's per-layer profile** — Jensen-Shannon distance to " + "; ".join(lines)
                   + f". With 'differs' meaning a distance of at least {FAR_JS}, the claim {verdict}."
                   + _left_out(rows, "synflow", "snip", "grasp", "imp"))
    return out + [""]


def thesis_sections(label: str, folder: str) -> list[str]:
    """The thesis question on ``folder``'s study and where ``THESIS[folder]``'s answers changed."""
    import json

    from study_thesis import Study, changes, degree_null, recipe, thesis

    from ticketlab.study.report.front import runs_sentence

    path = RESULTS / folder
    manifest = json.loads((path / "study.json").read_text())
    big = Study(_rows(folder), degree_null(path), manifest)
    small_folder = THESIS[folder]
    small = Study(_rows(small_folder)) if small_folder else None
    answer = thesis(label, big, runs_sentence(manifest), recipe(manifest))
    if small is None or not small.rows:
        return answer
    small_label = next(k for k, v in STUDIES.items() if v == small_folder)
    return answer + changes(small, big, small_label, label)


def main() -> None:
    text = ["# What the study reports say about three claims", "",
            "Generated by `python benchmarks/study_claims.py` from the `results.csv` of each study report "
            "(regenerate those first with the commands in each report). Lift = Jaccard / expected Jaccard of "
            "random masks with the same per-layer kept counts; spreads are min-max over seed pairs. A density where "
            "a ticket of a claim's methods is unhealthy (`ticketlab.health`: a collapsed layer, an unreachable "
            "class, or an accuracy at chance) is left out of that claim, and the claim says so.", ""]
    for label, folder in STUDIES.items():
        rows = _rows(folder)
        if rows:
            text += claims(label, rows) + [f"Full report: [{folder}/report.md]({folder}/report.md).", ""]
            if folder in THESIS:
                text += thesis_sections(label, folder)
    atomic_write_text(RESULTS / "studies.md", "\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
