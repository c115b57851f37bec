"""The thesis sections of docs/results/studies.md (benchmarks/study_thesis.py), on the committed
digits study report: every count and number is the report's own."""

import csv
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "docs" / "results" / "study_lenet_digits" / "results.csv"
sys.path.insert(0, str(ROOT / "benchmarks"))

pytestmark = pytest.mark.skipif(not DIGITS.exists(), reason="the committed digits study report is missing")


def _study(degree=None):
    from study_thesis import Study

    return Study(list(csv.DictReader(DIGITS.open())), degree)


def test_thesis_counts_are_the_reports():
    from study_thesis import thesis

    s = _study()
    text = "\n".join(thesis("lenet digits", s, "RUNS"))
    rows = list(csv.DictReader(DIGITS.open()))
    sick = {(float(r["density"]), r["method_a"]) for r in rows if r["section"] == "health" and r["value"] == "1"}
    for d in (0.2, 0.05, 0.01):
        more = {frozenset((r["method_a"], r["method_b"])) for r in rows if r["section"] == "summary"
                and float(r["density"]) == d and r["note"] == "more" and r["method_a"] != r["method_b"]
                and (d, r["method_a"]) not in sick and (d, r["method_b"]) not in sick}
        assert f"**Density {d:g}.** {len(more)} of " in text
    assert "RUNS" in text and "| imp | 1.04 (n/a) chance |" in text  # no degree rows: said, not invented
    imp = next(r for r in rows if r["section"] == "accuracy" and r["method_a"] == "imp" and r["density"] == "0.01")
    assert f"{float(imp['value']):.4g}" in text


def test_degree_rows_decide_beyond_degrees():
    from study_thesis import SAMPLES, Study, degree_more

    floor = 1 / (SAMPLES + 1)
    assert degree_more(1.2, floor) and not degree_more(1.2, 2 * floor) and not degree_more(1.05, floor)
    deg = [{"density": "0.2", "method_a": "snip", "method_b": "grasp", "seed_a": str(k), "seed_b": str(k),
            "lift_degree": str(x), "p_degree": str(floor)} for k, x in enumerate((1.5, 1.7, 1.6))]
    deg.append({"density": "0.2", "method_a": "snip", "method_b": "grasp", "seed_a": "0", "seed_b": "1",
                "lift_degree": "9", "p_degree": "1"})  # a cross-seed pair: not a method pair's evidence
    s = Study(_study().rows, deg)
    lift, p, n = s.degree_pair(0.2, "grasp", "snip")
    assert (round(lift, 6), p, n) == (1.6, floor, 3)


def test_changes_compare_by_density_rank():
    from study_thesis import changes

    s = _study()
    text = "\n".join(changes(s, s, "a", "b"))
    assert "0.2 vs 0.2 | 0.05 vs 0.05 | 0.01 vs 0.01" in text and "IMP across seeds, lift | 1.04 → 1.04" in text


def test_nested_variant_pairs_are_left_out_and_said_why():
    from study_thesis import Study, thesis
    deg = [{"density": d, "method_a": "snip", "method_b": "grasp", "seed_a": str(k), "seed_b": str(k), "nested": "1",
            "lift_degree": "1", "p_degree": "1"} for d in ("0.2", "0.05", "0.01") for k in range(3)]
    s = Study(_study().rows, deg)
    assert s.nested_pair("grasp", "snip") and not s.nested_pair("snip", "imp")
    text = "\n".join(thesis("x", s, ""))
    assert "Left out of every count below, because their overlap is built in: snip–grasp" in text
    assert "| snip–grasp |" not in text
