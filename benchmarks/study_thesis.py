"""The thesis question on one study, as Markdown for docs/results/studies.md: what do the tickets of
different methods share, and where did the answer change between two studies of one model?

Used by ``benchmarks/study_claims.py``. Every sentence is generated from a study report's
``results.csv`` (the report's numbers: hypergeometric lift and p per pair, profiles, graph
metrics, accuracy, ticket health) and from ``degree_null.csv``, which :func:`degree_null` writes
beside it from the study's tickets: the degree-preserving null of every pair's Jaccard index
(:mod:`ticketlab.metrics.degree`, through :func:`ticketlab.metrics.compare.compare`).

Thresholds (stated on the page): a method pair shares *more than chance* when its mean lift is at
least :data:`LIFT` and every seed's pair has p below :data:`ALPHA` (the report's rule); against the
degree-preserving null, when its mean degree lift is at least :data:`LIFT` and every seed's pair
has the smallest empirical p that :data:`SAMPLES` samples allow.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Iterable

from ticketlab.study.report.rules import ALPHA, LIFT_THRESHOLD as LIFT

#: Degree-preserving null: samples per ticket and curveball rounds (compare_beyond.md's settings).
SAMPLES, ROUNDS, SEED = 20, 30, 0
DEGREE_FIELDS = ("density", "method_a", "method_b", "seed_a", "seed_b", "nested", "value", "expected", "lift", "p",
                 "expected_degree", "lift_degree", "p_degree")


def f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def g(x: float, digits: int = 3) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}g}"


def mean(xs: Iterable[float]) -> float:
    v = [x for x in xs if math.isfinite(x)]
    return sum(v) / len(v) if v else math.nan


# ---------------------------------------------------------------------------- the degree null
def degree_null(folder: Path, *, samples: int = SAMPLES, rounds: int = ROUNDS, force: bool = False) -> list[dict]:
    """Rows of ``folder/degree_null.csv`` (every pair of tickets at each density, with the
    degree-preserving null of its Jaccard index); computed from the tickets when the file is missing
    or lists other tickets than the study's, else read. Without tickets: the file's rows, or none."""
    import json

    path = folder / "degree_null.csv"
    manifest = json.loads((folder / "study.json").read_text()) if (folder / "study.json").exists() else {"jobs": []}
    ready = [j for j in manifest["jobs"] if j.get("status") in ("done", "skipped")]
    have = list(csv.DictReader(path.open())) if path.exists() else []
    want = {(float(j["density"]), j["method"], int(j["seed"])) for j in ready}
    got = {(f(r["density"]), r["method_a"], int(r["seed_a"])) for r in have} | {
        (f(r["density"]), r["method_b"], int(r["seed_b"])) for r in have}
    tickets_there = ready and all((folder / j["output"]).exists() for j in ready)
    if have and (got == want or not tickets_there) and not force:
        return have
    if not tickets_there:
        return have
    import ticketlab
    from ticketlab.atomic import atomic_write_text
    from ticketlab.metrics.compare import compare
    from ticketlab.study.report.overlap import nested_matrix

    rows = []
    for d in sorted({float(j["density"]) for j in ready}, reverse=True):
        jobs = sorted((j for j in ready if float(j["density"]) == d), key=lambda j: (j["method"], j["seed"]))
        tickets = [ticketlab.load(folder / j["output"], scores=False) for j in jobs]
        labels = [f"{j['method']}/s{j['seed']}" for j in jobs]
        recs = compare(tickets, ["jaccard"], labels=labels, null="degree", null_samples=samples, null_rounds=rounds,
                       seed=SEED)
        at = {lab: j for lab, j in zip(labels, jobs)}
        inside = nested_matrix(tickets)  # the study report's own test of built-in overlap
        index = {lab: i for i, lab in enumerate(labels)}
        for r in recs:
            a, b = at[r["a"]], at[r["b"]]
            rows.append({"density": d, "method_a": a["method"], "method_b": b["method"], "seed_a": a["seed"],
                         "seed_b": b["seed"], "nested": int(inside[index[r["a"]], index[r["b"]]]),
                         **{k: r.get(k) for k in DEGREE_FIELDS[6:]}})
    lines = [",".join(DEGREE_FIELDS)] + [",".join(str(r[k]) for k in DEGREE_FIELDS) for r in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return list(csv.DictReader(path.open()))


# ---------------------------------------------------------------------------- reading results.csv
class Study:
    """The numbers of one study report, indexed for the thesis sections."""

    def __init__(self, rows: list[dict], degree: list[dict] | None = None, manifest: dict | None = None):
        self.rows, self.degree, self.manifest = rows, degree or [], manifest or {}
        self.densities = sorted({f(r["density"]) for r in rows if r["section"] == "overlap_method_pair"}, reverse=True)
        seen: dict[str, None] = {}
        for r in rows:
            if r["section"] == "accuracy" and r["method_a"] != "dense" or r["section"] == "overlap_method_pair":
                seen.setdefault(r["method_a"])
        self.methods = list(seen)
        self.seeds = sorted({r["seed_a"] for r in rows if r["section"] == "health"})
        self.sick = {}  # (density, method) -> unhealthy tickets
        for r in rows:
            if r["section"] == "health" and r["value"] not in ("", "0", "0.0"):
                key = (f(r["density"]), r["method_a"])
                self.sick[key] = self.sick.get(key, 0) + 1

    def healthy(self, d: float, *methods: str) -> bool:
        return not any(self.sick.get((d, m)) for m in methods)

    def section(self, name: str, d: float | None = None) -> list[dict]:
        return [r for r in self.rows if r["section"] == name and (d is None or f(r["density"]) == d)]

    def pair(self, d: float, a: str, b: str) -> dict | None:
        for r in self.section("overlap_method_pair", d):
            if {r["method_a"], r["method_b"]} == {a, b} and (a != b or r["method_a"] == a):
                return r
        return None

    def verdict(self, d: float, a: str, b: str) -> str:
        for r in self.section("summary", d):
            if {r["method_a"], r["method_b"]} == {a, b}:
                return r["note"]
        return "n/a"

    def degree_pair(self, d: float, a: str, b: str) -> tuple[float, float, int]:
        """Mean degree lift, largest p_degree and the number of ticket pairs: same-seed pairs of two
        methods, pairs of different seeds of one method (the report's pairing)."""
        rs = [r for r in self.degree if f(r["density"]) == d and {r["method_a"], r["method_b"]} == {a, b}
              and (r["method_a"] == r["method_b"]) == (a == b)
              and ((r["seed_a"] == r["seed_b"]) if a != b else (r["seed_a"] != r["seed_b"]))]
        return mean(f(r["lift_degree"]) for r in rs), max((f(r["p_degree"]) for r in rs), default=math.nan), len(rs)

    def nested_pair(self, a: str, b: str) -> bool:
        """Whether every same-seed pair of tickets of methods ``a`` and ``b`` is nested (``degree_null.csv``)."""
        rs = [r for r in self.degree if {r["method_a"], r["method_b"]} == {a, b} and a != b
              and r["seed_a"] == r["seed_b"]]
        return bool(rs) and all(r.get("nested") == "1" for r in rs)

    def metric(self, section: str, d: float, method: str, metric: str, layer: str | None = None) -> dict | None:
        for r in self.section(section, d):
            if r["method_a"] == method and r["metric"] == metric and (layer is None or r["layer"] == layer):
                return r
        return None

    def layers(self) -> list[str]:
        return list(dict.fromkeys(r["layer"] for r in self.section("profile")))


def degree_more(lift: float, p: float) -> bool:
    return math.isfinite(lift) and lift >= LIFT and p <= 1.0 / (SAMPLES + 1) + 1e-12


# ---------------------------------------------------------------------------- the sections
def recipe(manifest: dict) -> str:
    """One sentence: the training every ticket of the study gets (the model's default training
    with the study's ``[train]`` table over it), from the manifest's job configurations."""
    from ticketlab.training import TrainConfig, default_train_config

    jobs = [j for j in manifest.get("jobs", []) if isinstance(j.get("config"), dict)]
    if not jobs:
        return ""
    tables = {json_key(j["config"].get("train", {})) for j in jobs}
    c = jobs[0]["config"]
    cfg = TrainConfig.from_dict({**default_train_config(c["model"], c["dataset"]).to_dict(), **c.get("train", {})})
    length = f"{cfg.iterations:,} iterations" if cfg.iterations else f"{cfg.epochs} epochs"
    same = "one recipe for every ticket" if len(tables) == 1 else f"{len(tables)} different [train] tables"
    return (f"Every ticket is trained from its initial weights with {same}: {cfg.optimizer}, learning rate "
            f"{cfg.lr:g}, batch {cfg.batch_size}, {length}, the validation loss every {cfg.eval_every} iterations, "
            "the test accuracy at the end (the learned-mask methods' own score training comes before it; the "
            "report's configuration section lists every method's options).")


def json_key(x: Any) -> str:
    import json

    return json.dumps(x, sort_keys=True)


def thesis(label: str, s: Study, runs: str, trained: str = "") -> list[str]:
    """The thesis question answered on one study (Markdown lines)."""
    out = [f"## The thesis question at full scale: {label}", ""]
    n_tickets = len(s.section("health"))
    sick = sum(s.sick.values())
    out += [f"{n_tickets} trained tickets: {len(s.methods)} methods ({', '.join(s.methods)}) x {len(s.seeds)} seeds x densities "
            f"{', '.join(g(d) for d in s.densities)}; {sick} unhealthy (`ticketlab.health`), left out of every claim "
            f"below that involves them. {trained} {runs}".replace("  ", " "), ""]
    out += _shared(s) + _seeds(s) + _profiles(s) + _graph(s) + _accuracy(s)
    return out


def _shared(s: Study) -> list[str]:
    out = ["### Which methods' tickets share more than chance", "",
           f"Same-seed pairs of different methods (the same initial weights), {len(s.seeds)} per method pair. *Hypergeometric*: "
           f"random masks with the tickets' per-layer kept counts (the report's lift and p); more than chance = mean "
           f"lift at least {LIFT} and p below {ALPHA} for every seed. *Degree*: the degree-preserving null (every "
           f"unit keeps its in- and out-degree; {SAMPLES} samples per ticket, {ROUNDS} curveball rounds); more than "
           f"chance = mean degree lift at least {LIFT} and every seed's empirical p at its floor 1/{SAMPLES + 1}.", ""]
    cross = [(a, b) for i, a in enumerate(s.methods) for b in s.methods[i + 1:]]
    built_in = [(a, b) for a, b in cross if s.nested_pair(a, b)]
    if built_in:
        out += ["Left out of every count below, because their overlap is built in: "
                + ", ".join(f"{a}–{b}" for a, b in built_in) + ". At every density and seed one ticket's mask lies "
                "inside the other's in every layer (`degree_null.csv`, column `nested`): a variant of a method draws "
                "the same per-weight scores from the seed's stream as the method, and only keeps another number of "
                "them per layer, so same-seed tickets of two variants are nested, not independent draws.", ""]
        cross = [p for p in cross if p not in built_in]
    for d in s.densities:
        ok = [(a, b) for a, b in cross if s.healthy(d, a, b) and s.pair(d, a, b)]
        more = [(a, b) for a, b in ok if s.verdict(d, a, b) == "more"]
        deg = [(a, b) for a, b in more if degree_more(*s.degree_pair(d, a, b)[:2])]
        less = [(a, b) for a, b in ok if s.verdict(d, a, b) == "less"]
        left = len(cross) - len(ok)
        out.append(f"**Density {g(d)}.** {len(more)} of {len(ok)} method pairs share more than chance "
                   f"({len(deg)} of them also against the degree-preserving null)"
                   + (f", {len(less)} less than chance" if less else "")
                   + (f"; {left} pairs with an unhealthy ticket left out" if left else "") + ".")
        if more:
            out += ["", "| pair | Jaccard | lift [min-max] | degree lift | p degree (max) | beyond degrees |",
                    "|---|---:|---:|---:|---:|---|"]
            for a, b in sorted(more, key=lambda p: -f(s.pair(d, *p)["lift"])):
                r = s.pair(d, a, b)
                dl, dp, n = s.degree_pair(d, a, b)
                out.append(f"| {a}–{b} | {g(f(r['value']))} | {g(f(r['lift']))} [{g(f(r['spread_lo']))}-"
                           f"{g(f(r['spread_hi']))}] | {g(dl)} | {g(dp, 2)} | "
                           f"{'yes' if degree_more(dl, dp) else 'no' if n else 'not computed'} |")
        out.append("")
    return out


def _seeds(s: Study) -> list[str]:
    out = ["### Do a method's tickets of different seeds agree?", "",
           f"Mean lift of the {len(s.seeds) * (len(s.seeds) - 1) // 2} pairs of seeds (hypergeometric; degree-preserving in brackets). IMP first: Frankle & "
           "Carbin's argument is that the winning ticket depends on the initialization.", "",
           "| method | " + " | ".join(f"density {g(d)}" for d in s.densities) + " |",
           "|---|" + "---:|" * len(s.densities)]
    for m in sorted(s.methods, key=lambda m: m != "imp"):
        cells = []
        for d in s.densities:
            r = s.pair(d, m, m)
            if r is None:
                cells.append("n/a")
            elif not s.healthy(d, m):
                cells.append("unhealthy")
            else:
                dl = s.degree_pair(d, m, m)[0]
                cells.append(f"{g(f(r['lift']))} ({g(dl)}) {s.verdict(d, m, m)}")
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    return out + [""]


def _profiles(s: Study) -> list[str]:
    layers = s.layers()
    out = ["### Per-layer profiles", "",
           f"Density of each layer in % ({' / '.join(layers)}), mean over seeds.", "",
           "| method | " + " | ".join(f"density {g(d)}" for d in s.densities) + " |",
           "|---|" + "---|" * len(s.densities)]
    for m in s.methods:
        cells = []
        for d in s.densities:
            vals = [s.metric("profile", d, m, "layer_density", layer) for layer in layers]
            cells.append(" / ".join(g(100 * f(v["value"])) if v else "n/a" for v in vals))
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    return out + [""]


GRAPH = (("effective_sparsity", "effective sparsity"), ("dead_units", "dead units"),
         ("disconnected_units", "disconnected units"), ("log10_paths", "log10 paths"),
         ("relational_clustering", "relational C"), ("relational_path_length", "relational L"))


def _graph(s: Study) -> list[str]:
    d = s.densities[-1]
    out = ["### Graph properties", "",
           f"At density {g(d)}, mean over seeds; in brackets the same metric of a random mask with the ticket's "
           "per-layer counts (the report's layer-wise shuffle of the method's first ticket).", "",
           "| method | " + " | ".join(name for _, name in GRAPH) + " |", "|---|" + "---:|" * len(GRAPH)]
    for m in s.methods:
        cells = []
        for key, _ in GRAPH:
            r = s.metric("graph", d, m, key)
            cells.append(f"{g(f(r['value']))} ({g(f(r['expected']))})" if r else "n/a")
        out.append(f"| {m}{' †' if s.sick.get((d, m)) else ''} | " + " | ".join(cells) + " |")
    return out + ["", "† a method with unhealthy tickets at this density.", ""]


def _accuracy(s: Study) -> list[str]:
    dense = next((r for r in s.section("accuracy") if r["method_a"] == "dense"), None)
    out = ["### Accuracy against density", "",
           "Test accuracy of the trained tickets, mean [min-max] over seeds"
           + (f"; the dense network: {g(f(dense['value']), 4)} [{g(f(dense['spread_lo']), 4)}-"
              f"{g(f(dense['spread_hi']), 4)}]" if dense else "") + "; † unhealthy tickets among the seeds.", "",
           "| method | " + " | ".join(f"density {g(d)}" for d in s.densities) + " |",
           "|---|" + "---:|" * len(s.densities)]
    best = {}
    for d in s.densities:
        vals = {m: f(r["value"]) for m in s.methods if (r := s.metric("accuracy", d, m, "test_accuracy"))
                and s.healthy(d, m)}
        best[d] = max(vals.items(), key=lambda kv: kv[1]) if vals else None
    for m in s.methods:
        cells = []
        for d in s.densities:
            r = s.metric("accuracy", d, m, "test_accuracy")
            cells.append(f"{g(f(r['value']), 4)} [{g(f(r['spread_lo']), 4)}-{g(f(r['spread_hi']), 4)}]"
                         f"{' †' if s.sick.get((d, m)) else ''}" if r else "n/a")
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    out.append("")
    for d in s.densities:
        if best[d] and dense:
            m, v = best[d]
            close = [k for k in s.methods if (r := s.metric("accuracy", d, k, "test_accuracy")) and s.healthy(d, k)
                     and f(r["value"]) >= v - 0.01]
            gap = 100 * (v - f(dense["value"]))
            out.append(f"- Density {g(d)}: best {m} ({g(v, 4)}, {g(abs(gap), 2)} points "
                       f"{'above' if gap >= 0 else 'below'} the dense network); within 1 point of it: "
                       f"{', '.join(close)}.")
    return out + [""]


def changes(small: Study, large: Study, small_label: str, large_label: str) -> list[str]:
    """Where the answers differ between two studies of one model (e.g. digits and Fashion-MNIST)."""
    common = [m for m in large.methods if m in small.methods]
    out = [f"## Where the {small_label} results changed on {large_label}", "",
           f"Methods in both studies: {', '.join(common)}. Densities are compared by rank (highest, middle, lowest: "
           + ", ".join(f"{g(a)} vs {g(b)}" for a, b in zip(small.densities, large.densities)) + ").", ""]
    out += ["| question | " + " | ".join(f"{g(a)} vs {g(b)}" for a, b in zip(small.densities, large.densities))
            + " |", "|---|" + "---|" * min(len(small.densities), len(large.densities))]

    def row(name: str, cell) -> None:
        out.append(f"| {name} | " + " | ".join(cell(s_d, l_d) for s_d, l_d in zip(small.densities, large.densities))
                   + " |")

    def verdicts(st: Study, d: float) -> tuple[int, int]:
        ok = [(a, b) for i, a in enumerate(common) for b in common[i + 1:] if st.healthy(d, a, b) and st.pair(d, a, b)]
        return sum(st.verdict(d, a, b) == "more" for a, b in ok), len(ok)

    row("method pairs above chance (common methods)",
        lambda a, b: "{}/{} → {}/{}".format(*verdicts(small, a), *verdicts(large, b)))

    def lift(st: Study, d: float, m1: str, m2: str) -> str:
        if not st.healthy(d, m1, m2):
            return "unhealthy"
        r = st.pair(d, m1, m2)
        return g(f(r["lift"])) if r else "n/a"

    for m1, m2, name in (("imp", "imp", "IMP across seeds, lift"), ("snip", "magnitude_init", "SNIP–magnitude at init, lift"),
                         ("snip", "grasp", "SNIP–GraSP, lift"), ("synflow", "snip", "SynFlow–SNIP, lift")):
        if m1 in common and m2 in common:
            row(name, lambda a, b, m1=m1, m2=m2: f"{lift(small, a, m1, m2)} → {lift(large, b, m1, m2)}")

    def sick(st: Study, d: float) -> str:
        return ", ".join(f"{m} {n}" for (dd, m), n in sorted(st.sick.items()) if dd == d and m in common) or "none"

    row("unhealthy tickets", lambda a, b: f"{sick(small, a)} → {sick(large, b)}")

    def acc_rank(st: Study, d: float) -> str:
        vals = [(f(r["value"]), m) for m in common if (r := st.metric("accuracy", d, m, "test_accuracy"))
                and st.healthy(d, m)]
        return " > ".join(m for _, m in sorted(vals, reverse=True)[:3]) or "n/a"

    row("most accurate (healthy, top 3)", lambda a, b: f"{acc_rank(small, a)} → {acc_rank(large, b)}")
    out.append("")
    for m in common:  # health: where a method's tickets died on one data set and not on the other
        was = [a for a, b in zip(small.densities, large.densities) if not small.healthy(a, m)]
        now = [b for a, b in zip(small.densities, large.densities) if not large.healthy(b, m)]
        if len(was) != len(now):
            out.append(f"- {m}: unhealthy at {len(was)} of {len(small.densities)} densities on {small_label}"
                       + (f" ({', '.join(g(d) for d in was)})" if was else "") + f", at {len(now)} of "
                       f"{len(large.densities)} on {large_label}" + (f" ({', '.join(g(d) for d in now)})" if now else "")
                       + ": the claims that need its tickets are assessed where they are healthy.")
    for m in ("imp",):
        if m in common:
            pairs = [(small.verdict(a, m, m), large.verdict(b, m, m)) for a, b in zip(small.densities, large.densities)
                     if small.healthy(a, m) and large.healthy(b, m)]
            changed = sum(x != y for x, y in pairs)
            out.append(f"- IMP tickets of different seeds, hypergeometric verdict per density: "
                       + "; ".join(f"{x} → {y}" for x, y in pairs) + f" ({changed} of {len(pairs)} changed).")
    return out + [""]
