"""benchmarks/elastic_study.py (docs/results/elastic.md): the page's numbers from hand-made results,
and the committed page against the rule it describes."""

from __future__ import annotations

import argparse
import json

import numpy as np

from benchscripts import load_script
from ticketlab.elastic import block_sources


def _script():
    return load_script("elastic_study")


def fake_results(es):
    """Two seeds, rounds 0..2, moved at round 2; the transferred ticket is 0.01 and 0.03 below the
    direct one, the shuffled one 0.05 below the transferred one."""
    res = {"seeds": [0, 1], "ks": [2], "seconds": 120.0, "cpu_seconds": 60.0, "found": 14, "expected": 14}
    for target in (es.BIG, es.SMALL):
        direct = np.array([[0.97, 0.96, 0.95], [0.97, 0.96, 0.93]])
        d = {"direct": direct, "direct_density": np.tile([1.0, 0.64, 0.41], (2, 1)),
             "transfer": np.array([[0.94], [0.90]]), "masks_only": np.array([[0.95], [0.93]]),
             "shuffled": np.array([[0.89], [0.85]]), "profiles": {},
             "overlap": {2: {"transfer": [{"jaccard": (0.40, 0.30)}, {"jaccard": (0.42, 0.30)}],
                             "shuffled": [{"jaccard": (0.30, 0.30)}]}},
             "between_seeds": {2: [{"jaccard": (0.35, 0.30)}]}}
        for v in es.VARIANTS:
            d[v + "_density"] = np.array([[0.40], [0.42]])
        d["relational"] = {2: {kind: {m: relational_fields(es, kind, m) for m in es.RELATIONAL}
                               for kind in es.REL_TICKETS}}
        res[target] = d
    res["null_samples"] = 20
    return res


def relational_fields(es, kind, metric):
    """Two seeds of one ticket's relational record. C: direct 0.80 and 0.82 (random-mask null 0.79
    and 0.81, degree null 0.80 and 0.83); transferred 0.76 and 0.78 (random-mask null 0.77 and 0.79,
    degree null 0.76 and 0.78): 0.04 below direct, of which the random-mask nulls give 0.02 and the
    degree nulls 0.045. L: every value and null 1.2. p: the direct ticket above all 20 samples in seed 0 (1/21), the
    transferred ticket at or below all of them (1.0) in both seeds."""
    nan = np.full(2, np.nan)
    if metric == "relational_path_length":
        return {"value": np.array([1.2, 1.2]), "expected": np.array([1.2, 1.2]), "lift": np.ones(2), "z": np.zeros(2),
                "p": np.array([0.5, 0.5]), "expected_degree": np.array([1.2, 1.2]), "lift_degree": np.ones(2),
                "p_degree": np.array([0.5, 0.5])}
    v, e, ed, p = {"direct": ([0.80, 0.82], [0.79, 0.81], [0.80, 0.83], [1 / 21, 0.5]),
                   "transfer": ([0.76, 0.78], [0.77, 0.79], [0.76, 0.78], [1.0, 1.0]),
                   "shuffled": ([0.77, 0.79], [0.77, 0.79], [0.77, 0.79], [0.5, 0.5])}[kind]
    v, e, ed = np.array(v), np.array(e), np.array(ed)
    return {"value": v, "expected": e, "lift": v / e, "z": nan, "p": np.array(p), "expected_degree": ed,
            "lift_degree": v / ed, "p_degree": np.array(p)}


def test_paired_differences_and_findings_from_hand_made_numbers():
    es = _script()
    assert es._ms(np.array([0.1, 0.3])) == "0.2000 ± 0.1414"
    assert es._diff(np.array([0.94, 0.90]), np.array([0.95, 0.93])) == "-0.0200 ± 0.0141 (0/2)"
    assert es._pair([{"jaccard": (0.40, 0.30)}, {"jaccard": (0.42, 0.30)}], "jaccard") == "0.410 ± 0.014 (chance 0.300)"
    text = " ".join(es.findings(fake_results(es)))
    assert "Over 2 paired runs (seed × round), the transferred ticket's test accuracy minus the directly mined " \
           "ticket's is -0.0200 on average (sd 0.0141; ≥ 0 in 0 of 2)" in text
    assert "-0.0200 at round 2 (41.0 % kept)" in text and "7.2 of the 359 test images" in text
    assert "within one seed-to-seed sd of the direct tickets' accuracy in 0 of 1 rounds (sd 0.0141)" in text
    assert "the transferred ticket is +0.0500 (round 2)" in text and "are +0.0000 against the direct" in text
    assert "round 2: 0.410 against 0.300 by chance and 0.350 between two seeds' direct tickets" in text
    table = "\n".join(es.accuracy_table(fake_results(es)))
    assert "| resnet32 | 2 (density 41.00 ± 0.00 % / 41.00 ± 1.41 %) | 0.9400 ± 0.0141 | 0.9200 ± 0.0283 |" in table


def test_relational_table_and_sentences_from_hand_made_numbers():
    es = _script()
    table = "\n".join(es.relational_table(fake_results(es)))
    # C 0.81 ± 0.0141, lift vs random (0.80/0.79, 0.82/0.81), z missing, lift vs degree (1.0, 0.82/0.83); L all 1.2
    assert ("| resnet32 | 2 | direct IMP | 0.8100 ± 0.0141 | 1.0125 ± 0.0002 | – | 0.9940 ± 0.0085 | "
            "1.2000 ± 0.0000 | 1.0000 ± 0.0000 | +0.00 ± 0.00 | 1.0000 ± 0.0000 |") in table
    assert "| resnet20 | 2 | transferred (= masks only) | 0.7700 ± 0.0141 |" in table
    assert table.count("\n") == 1 + 2 * 3  # header, rule, 2 targets × 1 round × 3 tickets
    text = " ".join(es.relational_findings(fake_results(es)))
    assert "at round 2 C from 0.7700 to 0.8100 and L from 1.2000 to 1.2000" in text
    assert ("C against random masks: direct IMP 1 / 0 of 2, transferred 0 / 2 of 2, layer-wise shuffled 0 / 0 of 2"
            in text) and "chance 0.095 per ticket" in text
    # transferred − direct: value -0.04; random nulls' means -0.02, degree -0.045; beyond: -0.02 and +0.005
    # against the direct tickets' value − null mean (+0.01, +0.01: sd 0; 0.0, -0.01: sd 0.0071)
    assert ("C at round 2: -0.0400; their random-mask nulls' means differ by -0.0200, their degree nulls' by -0.0450; "
            "beyond the nulls -0.0200 (sd 0.0000) and +0.0050 (sd 0.0071)") in text
    # C random: outside (0.02 > 0); C degree: within; L: 0 beyond, sd 0, within (|0| <= 0) for both nulls
    assert "within one such sd in 3 of 4 comparisons (measure × round × null)" in text
    assert text.count("**Relational measures at") == 4
    empty = fake_results(es)
    del empty[es.SMALL]["relational"]
    assert "**Relational measures at resnet20.** Not computed" in " ".join(es.relational_findings(empty))


def test_relational_records_are_cached_and_a_broken_cache_file_is_recomputed(tmp_path, monkeypatch):
    es = _script()
    path = es.relational_path(tmp_path, 0, es.BIG, 3, "direct", 20)
    assert path == tmp_path / "s0" / "resnet32" / "relational_direct_r03_n20.json"
    assert es.relational(tmp_path, 0, es.BIG, 3, "direct", 20) is None  # no masks, nothing cached
    path.parent.mkdir(parents=True)
    rec = {"value": 0.5, "expected": 0.4, "lift": 1.25, "z": None, "p": 0.1, "expected_degree": 0.5,
           "lift_degree": 1.0, "p_degree": 0.5}
    path.write_text(json.dumps({"metrics": {m: rec for m in es.RELATIONAL}, "cpu_seconds": 2.0}))
    got = es.relational(tmp_path, 0, es.BIG, 3, "direct", 20)
    assert got["relational_clustering"]["lift"] == 1.25 and np.isnan(got["relational_clustering"]["z"])
    assert got["cpu_seconds"] == 2.0 and np.isnan(got["wall_seconds"])
    path.write_text(json.dumps({"metrics": {m: {**rec, "value": "<b>"} for m in es.RELATIONAL}}))
    assert es._read_relational(path) is None  # a string where a number belongs: unreadable, not rendered
    assert es.relational(tmp_path, 0, es.BIG, 3, "direct", 20) is None  # recomputed, and here no masks to do it


def test_page_states_the_rule_and_the_command():
    es = _script()
    args = argparse.Namespace(width=8, rate=0.36, rounds=6)
    page = es.page(fake_results(es), args, None)
    assert es.COMMAND in page and "## Relational measures (You et al. 2020)" in page
    assert "being added" not in page and "null_samples=20" in page
    assert block_sources(3, 5) == [0, 1, 1, 2, 2] and "blocks 0, 1, 2 → 0, 1, 1, 2, 2" in page
    assert block_sources(5, 3) == [0, 1, 3] and "blocks 0, 1, 3 of each stage kept" in page
    committed = (es.DOC).read_text()
    assert es.COMMAND in committed and "blocks 0, 1, 2 → 0, 1, 1, 2, 2" in committed
    assert "## Relational measures (You et al. 2020)" in committed and "being added" not in committed
