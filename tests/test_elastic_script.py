"""benchmarks/elastic_study.py (docs/results/elastic.md): the page's numbers from hand-made results,
and the committed page against the rule it describes."""

from __future__ import annotations

import argparse

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
        res[target] = d
    return res


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


def test_page_states_the_rule_and_the_command():
    es = _script()
    args = argparse.Namespace(width=8, rate=0.36, rounds=6)
    page = es.page(fake_results(es), args, None)
    assert es.COMMAND in page and "relational-graph measures" in page
    assert block_sources(3, 5) == [0, 1, 1, 2, 2] and "blocks 0, 1, 2 → 0, 1, 1, 2, 2" in page
    assert block_sources(5, 3) == [0, 1, 3] and "blocks 0, 1, 3 of each stage kept" in page
    committed = (es.DOC).read_text()
    assert es.COMMAND in committed and "blocks 0, 1, 2 → 0, 1, 1, 2, 2" in committed
