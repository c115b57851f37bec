"""benchmarks/lth_fashion.py: the page's table and generated findings from hand-made results."""

from __future__ import annotations

import numpy as np

from benchscripts import load_script


def _res():
    nan = np.nan
    return {
        "seeds": [0, 1], "density": [1.0, 0.8, 0.5], "layers": [None, {"a": 0.8, "b": 0.9}, {"a": 0.5, "b": 0.7}],
        "seconds": 3600.0, "found": {"init": 2, "reinit": 4}, "last": 1000,
        "init": {"stop": np.array([[500, 300, 400], [500, 300, 400.0]]),
                 "early": np.array([[0.80, 0.82, 0.79], [0.80, 0.82, 0.79]]),
                 "end": np.array([[0.79, 0.81, 0.78], [0.79, 0.81, 0.78]])},
        "reinit": {"stop": np.array([[nan, 600, 1000], [nan, 600, 1000.0]]),
                   "early": np.array([[nan, 0.81, 0.70], [nan, 0.83, 0.72]]),
                   "end": np.array([[nan, 0.80, 0.69], [nan, 0.82, 0.71]])},
    }


def test_findings_follow_the_numbers():
    script = load_script("lth_fashion")
    text = " ".join(script.findings(_res())).replace("\u00a0", " ")
    assert "The dense network reaches 0.8000" in text
    assert "at or above it in 1 of 2 rounds, without a break down to 80.0 % of the weights" in text
    assert "Their best mean is 0.8200 at 80.0 % (+0.0200 against dense); at 50.0 % it is 0.7900 (-0.0100)" in text
    assert "stop earlier on average in 2 of 2 rounds; their earliest mean is 300 at 80.0 %" in text
    # round 1: reinit 0.82 mean = winning 0.82 (not less); round 2: less for both seeds
    assert "less accurate at their early stop than the winning tickets in 1 of 2 rounds (for every seed in 1)" in text
    assert "the widest gap is +0.0800 at 50.0 %" in text
    assert "At 50.0 % some run's early stop is its last evaluation" in text  # 1000 = the last iteration


def test_table_rows():
    script = load_script("lth_fashion")
    rows = script.table(_res())
    assert rows[2].startswith("| 0 | 100.00 % | 100 / 100 / 100 | 500 ± 0 | (dense) |")
    assert "| 2 | 50.00 % | 50 / 70 | 400 ± 0 | 1000 ± 0 | 0.7900 ± 0.0000 | 0.7100 ± 0.0141 | +0.0800 ± 0.0141 (2/2) |" in rows[4]
