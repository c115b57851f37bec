"""benchmarks/compare_beyond.py (docs/results/compare_beyond.md): the quick mode end to end on tiny
settings, the page merge of one section, and the committed page against its stored numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchscripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def _script():
    return load_script("compare_beyond")


def test_explained_share_is_the_degree_excess_over_the_observed_excess():
    cb = _script()
    assert cb.explained(30.0, 10.0, 15.0) == pytest.approx(0.25)
    assert cb.explained(30.0, 10.0, 10.0) == 0.0


def test_early_bird_rule_needs_five_distances_within_eps_relative_to_chance():
    cb = _script()
    rows = [{"iteration": i, "mask_distance": d, "mask_distance_chance": 0.5}
            for i, d in enumerate([0.2, 0.04, 0.04, 0.04, 0.04, 0.06, 0.05, 0.05, 0.05, 0.05, 0.05], 1)]
    # relative: 0.4, then 0.08 x4 (only 4), 0.12 breaks the run, then 0.1 x5 -> stop at the 11th row
    assert cb.eb_rule_iteration(rows, 0.1) == 11
    assert cb.eb_rule_iteration(rows, 0.05) is None


def test_quick_mode_writes_the_page_and_merges_one_section(tmp_path):
    cb = _script()
    out = tmp_path / "results"
    cb.main(["--quick", "--out", str(out), "--sections", "1,3"])
    page = (out / "compare_beyond.md").read_text()
    for title in cb.TITLES.values():
        assert f"## {title}" in page
    assert page.count("Not generated yet") == 2  # sections 2 and 4
    s1 = json.loads((out / "compare_beyond" / "section1.json").read_text())
    for family in ("imp", "synflow"):
        control = s1["result"]["families"][family]["control"]
        assert control["exact"] == {"masks": True, "weights": True}
        assert control["masks"]["value"] == control["weights"]["value"] == 1.0
        assert control["raw"]["value"] < 1.0
    assert (out / "compare_beyond" / "mask_distance_lenet_300_100_magnitude.png").stat().st_size < 200_000
    before = (out / "compare_beyond" / "section1.json").read_text()
    cb.main(["--quick", "--out", str(out), "--sections", "2"])
    page = (out / "compare_beyond.md").read_text()
    assert page.count("Not generated yet") == 1 and "snip vs synflow" in page
    assert (out / "compare_beyond" / "section1.json").read_text() == before  # section 1 kept as it was


def test_quick_mode_refuses_the_real_page():
    cb = _script()
    with pytest.raises(SystemExit):
        cb.main(["--quick"])


def test_committed_page_is_rendered_from_its_stored_numbers():
    cb = _script()
    out = ROOT / "docs" / "results"
    if not (out / "compare_beyond" / "section1.json").exists():
        pytest.skip("the page has not been generated")
    assert cb.page_text(out, plots=False) == (out / "compare_beyond.md").read_text(encoding="utf-8")
