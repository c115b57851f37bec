"""The study report (ticketlab.study.report): files, figures, escaping, chance numbers, the paragraph."""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

import ticketlab
from ticketlab.errors import ConfigError
from ticketlab.metrics import compare
from ticketlab.metrics.chance import expected_jaccard_matrix
from ticketlab.metrics.sparsity import js_matrix, profile_js
from ticketlab.metrics.stats import permutation_test
from ticketlab.selection import keep_count
from ticketlab.study import report as rep
from ticketlab.study.jobs import config_hash
from ticketlab.study.verify import job_record
from ticketlab.ticket import Ticket

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
SHAPES = {"fc1.weight": (40, 30), "fc2.weight": (12, 40), "fc3.weight": (5, 12)}


def job(jid: str, method: str, seed: int, density: float, status: str = "done", error: str | None = None,
        model: str = "mlp", dataset: str = "toy", options: dict | None = None) -> dict:
    config = {"method": method, "model": model, "dataset": dataset, "seed": seed, "density": density,
              "options": options or {}}
    return {"id": jid, "hash": config_hash(config), "method": method, "model": model, "dataset": dataset,
            "seed": seed, "density": density, "config": config, "output": f"tickets/{jid}.h5", "status": status,
            "error": error, "wall_seconds": None if status != "done" else 0.1}


def stamped(entry: dict, **provenance) -> dict:
    """A ticket's provenance as ``study run`` writes it for the job ``entry`` (what the report verifies)."""
    return {"method": entry["method"], "model": entry["model"], "dataset": entry["dataset"], "seed": entry["seed"],
            "scope": "global", "count_rule": "exact", **provenance, **job_record(entry)}


def exact_masks(rng: np.random.Generator, density: float) -> dict[str, np.ndarray]:
    """Random masks that keep exactly ``keep_count(density, n)`` weights of every layer (for these
    SHAPES and densities their sum is the whole network's count, as a study's ticket must keep)."""
    out = {}
    for n, shape in SHAPES.items():
        flat = np.zeros(int(np.prod(shape)), bool)
        flat[rng.permutation(flat.size)[:keep_count(density, flat.size)]] = True
        out[n] = flat.reshape(shape)
    return out


def write_manifest(folder: Path, jobs: list[dict], name: str = "test") -> None:
    (folder / "study.json").write_text(json.dumps(
        {"name": name, "study_file": "s.toml", "ticketlab_version": ticketlab.__version__, "jobs": jobs}))


def rows(folder: Path, **match: str) -> list[dict]:
    with open(folder / "results.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh) if all(r[k] == v for k, v in match.items())]


def summary_parts(folder: Path) -> tuple[str, str]:
    """The 'share more than chance' and 'do not' lists of "What this says" (first density)."""
    md = (folder / "report.md").read_text().replace("\\", "")
    m = re.search(r"\n- Share more than chance: (.*?)\.\n- Do not share more than chance: (.*?)\.\n", md)
    assert m, md
    return m.group(1), m.group(2)


def synthetic_study(folder: Path, copy: str, noise: str, seeds: int = 5, density: float = 0.2,
                    weights: bool = False) -> None:
    """Method ``copy``: the same mask at every seed; method ``noise``: an independent random mask."""
    (folder / "tickets").mkdir(parents=True)
    fixed = exact_masks(np.random.default_rng(99), density)
    jobs = []
    for s in range(seeds):
        rng = np.random.default_rng(s)
        for method, masks in ((copy, fixed), (noise, exact_masks(rng, density))):
            w = {}
            if weights:
                init = {n: rng.standard_normal(sh) for n, sh in SHAPES.items()}
                w = {"init": init, "final": {n: v + 0.1 * rng.standard_normal(v.shape) for n, v in init.items()}}
            jid = f"{method}-s{s}-{s:04d}"
            jobs.append(job(jid, method, s, density))
            prov = stamped(jobs[-1], test_accuracy=0.5 + 0.01 * s, data_spec={"num_classes": 10})
            ticketlab.save(Ticket(masks=masks, provenance=prov, weights=w), folder / f"tickets/{jid}.h5")
    write_manifest(folder, jobs)


@pytest.fixture(scope="module")
def mined(tmp_path_factory):
    """A small real study: random, magnitude_init and synflow at two seeds, plus a
    failed job with a hostile error message and a finished job whose file is missing."""
    folder = tmp_path_factory.mktemp("study")
    (folder / "tickets").mkdir()
    jobs = []
    for method in ("random", "magnitude_init", "synflow"):
        for seed in (0, 1):
            for density in (0.05,):
                jid = f"{method}-s{seed}-d{density}-{seed}{int(density * 100):02d}ab"
                t = ticketlab.mine(method, model="lenet_300_100", dataset="digits", density=density, seed=seed,
                                   device="cpu", rounds=2)
                jobs.append(job(jid, method, seed, density, model="lenet_300_100", dataset="digits",
                                options={"rounds": 2}))  # the job of this ticket's spec
                t.provenance.update(job_record(jobs[-1]))
                ticketlab.save(t, folder / f"tickets/{jid}.h5")
    jobs.append(job("snip-s0-bad1", "snip", 0, 0.2, status="failed", error=HOSTILE, model="lenet_300_100",
                    dataset="digits"))
    jobs.append(job("grasp-s0-gone", "grasp", 0, 0.2, model="lenet_300_100", dataset="digits"))
    write_manifest(folder, jobs, name="mined <b>study</b>")
    paths = rep.write_report(folder)
    return folder, paths


def test_files_figures_embedded_and_escaped(mined):
    folder, paths = mined
    for key in ("markdown", "html", "csv"):
        assert paths[key].is_file()
    names = {paths["markdown"].name, paths["html"].name, paths["csv"].name}
    assert names == {"report.md", "report.html", "results.csv"}
    md = paths["markdown"].read_text()
    page = paths["html"].read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    figures = {k: v for k, v in paths.items() if k.startswith("figure:")}
    assert len(images) == len(figures) == 4  # per density: heatmap, within/across, profile; plus lift vs density
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == len(images)
    for rel, data in zip(images, embedded):
        assert (folder / rel).is_file()
        assert base64.b64decode(data) == (folder / rel).read_bytes()  # the same figure, in the same order
    # no external resource, and every string from the files is escaped
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", page)
    assert "<script" not in page and "<img src=x" not in page and "<b>study" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x" in page
    assert "&lt;b&gt;study&lt;/b&gt;" in page
    # failures and unusable jobs are listed
    assert "snip-s0-bad1" in md and "grasp-s0-gone" in md
    with open(paths["csv"], newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == rep.COLUMNS
        table = list(reader)
    sections = {r["section"] for r in table}
    assert {"overlap_pair", "overlap_method_pair", "within_vs_across", "profile", "profile_js", "graph",
            "summary"} <= sections
    # 6 tickets: 15 pairs, each with value, expected, lift and p
    pairs = [r for r in table if r["section"] == "overlap_pair"]
    assert len(pairs) == 15 and all(r["expected"] and r["lift"] and r["p"] for r in pairs)
    # mined tickets store no final weights: sign agreement is "not computed", not an error
    assert "not computed (no init and final weights stored)" in md
    assert "No trained tickets" in md


def test_vectorised_expected_jaccard_equals_compare(mined):
    folder, _ = mined
    a = ticketlab.load(next((folder / "tickets").glob("synflow-s0-d0.05-*.h5")))
    b = ticketlab.load(next((folder / "tickets").glob("magnitude_init-s1-d0.05-*.h5")))
    assert a.layer_kept() != b.layer_kept()  # different per-layer densities: a real test of the null
    want = next(r for r in compare([a, b], ["jaccard"]) if r["layer"] == "__total__")
    kept = [list(t.layer_kept().values()) for t in (a, b)]
    mean, var, expected = expected_jaccard_matrix(np.array(kept), np.array([m.size for m in a.masks.values()]))
    assert expected[0, 1] == pytest.approx(want["expected"], rel=1e-12)
    assert expected[1, 0] == pytest.approx(want["expected"], rel=1e-12)
    row = next(r for r in rows(folder, section="overlap_pair", density="0.05")
               if {r["label_a"], r["label_b"]} == {"synflow/s0", "magnitude_init/s1"})
    assert float(row["value"]) == pytest.approx(want["value"], rel=1e-12)
    assert float(row["expected"]) == pytest.approx(want["expected"], rel=1e-12)
    assert float(row["lift"]) == pytest.approx(want["lift"], rel=1e-12)
    assert float(row["p"]) == pytest.approx(want["p"], rel=1e-9, abs=1e-300)
    assert float(row["z"]) == pytest.approx(want["z"], rel=1e-9)


def test_identical_tickets_lift_within_across_signs_and_accuracy(tmp_path):
    synthetic_study(tmp_path, "copy", "noise", weights=True)
    rep.write_report(tmp_path)
    pair = {(r["method_a"], r["method_b"]): r for r in rows(tmp_path, section="overlap_method_pair")}
    same = pair["copy", "copy"]
    assert float(same["value"]) == 1.0 and float(same["lift"]) > 3.0  # identical: Jaccard 1 vs chance ~0.11
    assert float(same["p"]) < 1e-10
    assert 0.8 < float(pair["noise", "noise"]["lift"]) < 1.25
    test = {r["method_a"]: r for r in rows(tmp_path, section="within_vs_across", metric="within_minus_across")}
    assert float(test["copy"]["value"]) > 2.0 and float(test["copy"]["p"]) < 0.01
    assert f"{rep.N_PERMUTATIONS} permutations" in test["copy"]["note"]
    signs = {r["method_a"]: r for r in rows(tmp_path, section="graph", metric="sign_kept")}
    assert 0.8 < float(signs["copy"]["value"]) <= 1.0 and float(signs["copy"]["expected"]) == 0.5
    acc = {r["method_a"]: r for r in rows(tmp_path, section="accuracy")}
    assert float(acc["noise"]["value"]) == pytest.approx(0.52) and float(acc["noise"]["expected"]) == 0.1
    assert float(acc["noise"]["spread_lo"]) == pytest.approx(0.5)
    assert float(acc["noise"]["spread_hi"]) == pytest.approx(0.54)
    md = (tmp_path / "report.md").read_text().replace("\\", "")
    assert "copy: closer to its own tickets at other seeds than to other methods' at the same seed" in md


def test_paragraph_follows_the_numbers(tmp_path):
    # the same construction with the roles swapped: a hard-coded sentence cannot pass both
    for copy, noise in (("alpha", "beta"), ("beta", "alpha")):
        folder = tmp_path / copy
        synthetic_study(folder, copy, noise, seeds=3)
        rep.write_report(folder)
        more, less = summary_parts(folder)
        assert f"{copy}–{copy} (seeds)" in more and f"{noise}–{noise} (seeds)" not in more
        assert f"{noise}–{noise} (seeds)" in less and f"{copy}–{copy} (seeds)" not in less
        verdict = {(r["method_a"], r["method_b"]): r["note"] for r in rows(folder, section="summary")}
        assert verdict[copy, copy] == "more" and verdict[noise, noise] == "chance"


def test_helpers_match_the_metrics():
    rng = np.random.default_rng(3)
    ts = [Ticket(masks={n: rng.random(s) < d for n, s in SHAPES.items()}) for d in (0.1, 0.3, 0.6)]
    k = np.array([[np.count_nonzero(m) for m in t.masks.values()] for t in ts], float)
    shares = k / k.sum(axis=1, keepdims=True)
    js = js_matrix(shares, shares)
    for i in range(3):
        for j in range(3):
            assert js[i, j] == pytest.approx(profile_js(ts[i], ts[j]), abs=1e-12)
    x, y = [3.0, 3.2, 2.9, 3.1, 3.3], [1.0, 1.1, 0.9, 1.2, 1.0]
    p = permutation_test(x, y, 2000, seed=1)
    assert p == permutation_test(x, y, 2000, seed=1)  # seeded
    assert p == pytest.approx(2 / 252, abs=0.01)  # only the 2 extreme of C(10, 5) splits reach |d|
    assert permutation_test([1.0, 2.0], [1.0, 2.0], 500) == 1.0


def test_bad_manifest_is_one_sentence(tmp_path):
    with pytest.raises(ConfigError, match="no study manifest"):
        rep.write_report(tmp_path)
    (tmp_path / "study.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read the study manifest"):
        rep.write_report(tmp_path)
    (tmp_path / "study.json").write_text(json.dumps({"name": "x", "jobs": {}}))
    with pytest.raises(ConfigError, match="'jobs' list"):
        rep.write_report(tmp_path)


def test_unhealthy_tickets_are_marked_listed_and_left_out_of_the_claims(tmp_path):
    """'dead' = 'copy''s mask with fc3 emptied: it shares far more than chance with 'copy', but it is
    collapsed, so the paragraph must not claim it, must say so, and every table must mark it."""
    names = ["input", "t1", "t2", "t3"]
    topo = {"tensors": {"input": 30, "t1": 40, "t2": 12, "t3": 5}, "input": "input", "output": "t3",
            "edges": [{"param": p, "src": names[i], "dst": names[i + 1], "kind": "linear", "group": 1}
                      for i, p in enumerate(SHAPES)]}
    (tmp_path / "tickets").mkdir()
    fixed = exact_masks(np.random.default_rng(99), 0.5)
    # fc3 emptied, its kept weights moved to fc1: the ticket still keeps the count of density 0.5
    fc1 = fixed["fc1.weight"].copy()
    fc1.flat[np.flatnonzero(~fc1)[:int(fixed["fc3.weight"].sum())]] = True
    jobs = []
    for s in range(3):
        rng = np.random.default_rng(s)
        dead = {**fixed, "fc1.weight": fc1, "fc3.weight": np.zeros(SHAPES["fc3.weight"], bool)}
        noise = exact_masks(rng, 0.5)
        for method, masks in (("copy", fixed), ("noise", noise), ("dead", dead)):
            jid = f"{method}-s{s}-{s:04d}"
            jobs.append(job(jid, method, s, 0.5))
            prov = stamped(jobs[-1], topology=topo, data_spec={"num_classes": 5})
            ticketlab.save(Ticket(masks=masks, provenance=prov), tmp_path / f"tickets/{jid}.h5")
    write_manifest(tmp_path, jobs)
    rep.write_report(tmp_path)
    md = (tmp_path / "report.md").read_text().replace("\\", "")
    pair = {(r["method_a"], r["method_b"]): r for r in rows(tmp_path, section="overlap_method_pair")}
    assert float(pair["copy", "dead"]["lift"]) > 1.5 and float(pair["copy", "dead"]["p"]) < 1e-6  # claimable...
    more, less = summary_parts(tmp_path)
    assert "copy–copy (seeds)" in more and "dead" not in more and "dead" not in less  # ... but not claimed
    assert ("Left out of these claims: 3 unhealthy tickets (3 dead tickets: collapsed layers, classes without an "
            "input-to-output path), and every pair that holds one, so nothing is said about copy–dead; "
            "noise–dead; dead–dead (seeds).") in md
    verdict = {(r["method_a"], r["method_b"]): r["note"] for r in rows(tmp_path, section="summary")}
    assert verdict["copy", "dead"].startswith("left out") and verdict["copy", "copy"] == "more"
    health = {r["label_a"]: r for r in rows(tmp_path, section="health")}
    assert [health[f"dead/s{s}"]["value"] for s in range(3)] == ["1", "1", "1"]
    assert health["copy/s0"]["value"] == "0" and "collapsed: 1 of 3 layers keep no weight" not in health["copy/s0"]["note"]
    assert "3 of 9 tickets are unhealthy" in md and "| dead/s0 | dead-s0-0000 |" in md
    # marked in every method table: rows of the overlap matrix, within/across, profiles and graph tables, and the
    # column headers of the overlap matrix and the profile distances; the pair table's names
    assert md.count("| dead † |") == 6 and "| copy–dead † |" in md and "| dead †–dead † (seeds) |" in md
    assert "| copy † |" not in md
    assert "9 of 9 tickets ready, 3 of them unhealthy (marked †; see Ticket health)" in md


# ------------------------------------------------------------------------------ the page a reader opens
def _png_width(path: Path) -> int:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big")


def test_opens_with_findings_contents_configuration_and_run_times(mined):
    folder, paths = mined
    md = paths["markdown"].read_text()
    page = paths["html"].read_text()
    plain = md.replace("\\", "")
    order = [plain.index(h) for h in ("## Key findings", "## Contents", "## Study configuration",
                                      "## Tickets and run times", "## lenet_300_100 / digits", "## Ticket health")]
    assert order == sorted(order)
    # every link of the page goes to an anchor of the page (Markdown and HTML alike)
    links = set(re.findall(r"\]\(#([a-z0-9-]+)\)", md))
    assert len(links) > 10 and links <= set(re.findall(r'<a id="([a-z0-9-]+)"></a>', md))
    assert set(re.findall(r'href="#([a-z0-9-]+)"', page)) <= set(re.findall(r' id="([a-z0-9-]+)"', page))
    # the configuration and what the tickets are: 6 ready (mined by that run), 1 failed, 1 without its file
    for needle in ("| seeds | 0, 1 |", "| densities | 0.2, 0.05 |", f"| ticketlab | {ticketlab.__version__} |",
                   "| methods | random, magnitude_init, synflow, snip, grasp |",
                   "| synflow | rounds=2 | batchnorm=eval, precision=float64, rescale=false | global | exact | 2 |"):
        assert needle in plain, needle
    assert ("6 of 8 tickets are ready: their files exist, load and are verified as their jobs' (6 mined by the last "
            "study run, 0 made by an earlier run and reused). 1 failed, 0 pending, 1 finished without a usable "
            "ticket") in plain
    assert "| random | 2 | 2 | 0 | 0.2 s | 0.1 s |" in plain  # the runner's wall times, per method
    # the findings carry the numbers of the sections they link to
    more = sum(1 for r in rows(folder, section="summary") if r["note"] == "more")
    assert f"{more} of 3 at density [0.05](#overlap-at-density-0-05)" in plain
    # commands are code, never literal backticks in the page
    assert "`" not in page and "<code>ticketlab study report " in page
    # figures are made to be shown at their own size on a page 1,260 px wide
    for key, path in paths.items():
        if key.startswith("figure:"):
            assert 400 < _png_width(path) <= 1260, key


def test_a_rerun_reports_what_the_tickets_are(tmp_path):
    synthetic_study(tmp_path, "copy", "noise", seeds=2)
    manifest = json.loads((tmp_path / "study.json").read_text())
    for j in manifest["jobs"]:
        j["status"] = "skipped"  # what `study run` writes for tickets it finds verified
    manifest["jobs"][0]["status"] = "failed"
    manifest["jobs"][1]["status"] = "pending"
    (tmp_path / "study.json").write_text(json.dumps(manifest))
    rep.write_report(tmp_path)
    md = (tmp_path / "report.md").read_text().replace("\\", "")
    assert ("2 of 4 tickets are ready: their files exist, load and are verified as their jobs' (0 mined by the last "
            "study run, 2 made by an earlier run and reused). 1 failed, 1 pending") in md
    assert "skipped" not in md


def test_a_large_difference_the_test_cannot_resolve_is_never_called_no_difference(tmp_path):
    """3 seeds: 'copy' keeps one mask (within lift ~9), 'noise' draws a new one (across lift ~1); with 3
    within and 3 across pairs, no split of 6 lifts gives p < 0.01, and the report says so."""
    synthetic_study(tmp_path, "copy", "noise", seeds=3)
    rep.write_report(tmp_path)
    md = (tmp_path / "report.md").read_text().replace("\\", "")
    test = {r["method_a"]: r for r in rows(tmp_path, section="within_vs_across", metric="within_minus_across")}
    copy = test["copy"]
    assert float(copy["value"]) > 2.0 and float(copy["p"]) >= rep.ALPHA
    assert 0.0 < float(copy["spread_lo"]) < float(copy["value"]) < float(copy["spread_hi"])  # the effect's interval
    assert copy["spread"] == "95% bootstrap" and copy["note"].endswith("not resolved")
    assert "with 3 within and 3 across pairs there are only 20 ways to split the lifts, so p cannot go below 0.01" in md
    assert ("copy: more overlap with its own tickets at other seeds than with other methods' at the same seed, a "
            "difference the test cannot confirm with 3 within and 3 across pairs") in md
    assert "no clear difference" not in md and "no difference" not in md


def test_graph_section_shows_every_metric_of_the_graph_groups(tmp_path):
    """A metric registered in the graph group appears with no change to the report; the random
    baseline keeps the per-layer counts, so a kept count equals its chance exactly."""
    from ticketlab.metrics import register, unregister

    @register("kept_demo", kind="single", group="graph", description="weights kept (a test metric)")
    def kept_demo(t):
        return {"__total__": float(t.kept)}

    try:
        synthetic_study(tmp_path, "copy", "noise", seeds=2)
        rep.write_report(tmp_path)
    finally:
        unregister("kept_demo")
    found = rows(tmp_path, section="graph", metric="kept_demo")
    assert {r["method_a"] for r in found} == {"copy", "noise"}
    assert all(float(r["value"]) == float(r["expected"]) == 348.0 for r in found)  # 20 % of 1,740 weights
    md = (tmp_path / "report.md").read_text().replace("\\", "")
    assert "- kept_demo: weights kept (a test metric)" in md and "| kept_demo | 348 [348–348] | 348 [348–348] |" in md
    assert "| chance | 348 | 348 |" in md


def test_accuracy_beside_the_dense_network_and_chance(tmp_path):
    synthetic_study(tmp_path, "copy", "noise", seeds=3)
    for path in sorted((tmp_path / "tickets").glob("copy-*.h5")):
        t = ticketlab.load(path)
        seed = t.provenance["seed"]
        t.history = [{"stage": "dense", "round": 0, "test_accuracy": 0.9 + 0.01 * seed}]
        ticketlab.save(t, path)
    rep.write_report(tmp_path)
    dense = rows(tmp_path, section="accuracy", method_a="dense")
    assert len(dense) == 1 and float(dense[0]["value"]) == pytest.approx(0.91)
    assert (float(dense[0]["spread_lo"]), float(dense[0]["spread_hi"]), dense[0]["n"]) == (0.9, 0.92, "3")
    md = (tmp_path / "report.md").read_text().replace("\\", "")
    assert "The dense network, trained with the same recipe (round 0 of copy, one per seed), reaches 0.91 [0.9–0.92]" in md
    assert "the dense network 0.91 [0.9–0.92]; chance 0.1" in md  # and in the key findings


def test_figures_readers_asked_for():
    """Per-layer densities on a log axis even with an empty layer; lift in one panel per method
    with the chance line; the lift heatmap with dendrograms, coloured symmetrically around 1."""
    from matplotlib.colors import LogNorm

    from ticketlab.study.report import figures

    style = figures.styles(["a", "b", "c"])
    assert len({c for c, _ in style.values()}) == len({m for _, m in style.values()}) == 3
    dens = {"a": np.array([[0.3, 0.0], [0.2, 0.0]]), "b": np.array([[0.01, 0.1], [0.02, 0.1]])}
    fig = figures.profiles(["l1", "l2"], dens, 0.05, style, {"a": "a", "b": "b"}, "t")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_ylim()[0] > 0
    assert "no weight kept (density 0)" in [t.get_text() for t in ax.get_legend().get_texts()]
    panels = {m: {o: [(0.1, 2.0, 1.5, 2.5), (0.01, 3.0, 2.0, 4.0)] for o in style} for m in style}
    fig = figures.lift_panels(panels, {m: m for m in style}, style, "t")
    shown = [a for a in fig.axes if a.get_visible() and a.axison]
    assert [a.get_title() for a in shown] == ["a", "b", "c"]
    assert all(any(list(line.get_ydata()) == [1.0, 1.0] for line in a.get_lines()) for a in shown)
    lift = np.array([[np.nan, 4.0, 0.5], [4.0, np.nan, 1.0], [0.5, 1.0, np.nan]])
    from scipy.cluster.hierarchy import linkage

    fig = figures.heatmap(lift, ["x", "y", "z"], linkage(np.array([0.2, 0.9, 0.9])), "t")
    assert len(fig.axes) == 4  # matrix, two dendrograms, colour bar
    norm = fig.axes[0].images[0].norm
    assert isinstance(norm, LogNorm) and norm.vmin * norm.vmax == pytest.approx(1.0) and norm.vmax == 4.0


def test_nested_pairs_are_flagged_and_left_out_of_the_claims():
    """Two variants of one method that draw the same scores keep nested masks: their overlap is built
    in. The report finds such pairs, keeps them in the tables and leaves them out of the claims."""
    from ticketlab.study.report.load import Entry
    from ticketlab.study.report.overlap import healthy_pairs, nested_pairs, overlap, pair_stats
    from ticketlab.ticket import Ticket

    rng = np.random.default_rng(0)
    entries = []
    for seed in (0, 1):
        scores = rng.random(400)
        order = np.argsort(-scores)
        big, small = np.zeros(400, bool), np.zeros(400, bool)
        big[order[:80]], small[order[:40]] = True, True  # the same scores, other counts: nested
        other = np.zeros(400, bool)
        other[rng.permutation(400)[:60]] = True
        for method, m in (("uniform", big), ("erk", small), ("snip", other)):
            entries.append(Entry(f"{method}/s{seed}", f"{method}-{seed}", method, seed, 0.1,
                                 Ticket(masks={"w": m.reshape(20, 20)})))
    ov = overlap(entries)
    assert nested_pairs(ov) == [("uniform", "erk")]
    claims = pair_stats(ov, healthy_pairs(ov))
    assert ("uniform", "erk") not in claims and ("uniform", "snip") in claims
    assert pair_stats(ov, ov.pairs)[("uniform", "erk")]["lift"] > 1.5  # shown, with its built-in lift
