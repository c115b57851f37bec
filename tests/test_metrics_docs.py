"""The metrics' documentation runs: docstring examples, docs/similarity_study.md, the schema copy
in docs/compare_schema.md, and metric plug-ins through entry points."""

from __future__ import annotations

import doctest
import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ticketlab.metrics import COMPARE_SCHEMA, list_metrics, unregister
from ticketlab.ticket import Ticket

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["registry", "base", "_dist", "chance", "overlap", "units", "sparsity", "signs", "graph", "relational", "many",
           "compare", "schema", "__init__"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module("ticketlab.metrics" if name == "__init__" else f"ticketlab.metrics.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0


def _blocks(doc: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", doc, flags=re.S)


def test_schema_in_docs_equals_code():
    doc = (ROOT / "docs" / "compare_schema.md").read_text()
    schemas = [json.loads(b) for b in _blocks(doc, "json") if '"$schema"' in b]
    assert schemas == [COMPARE_SCHEMA]


def test_similarity_study_runs(tmp_path, monkeypatch, capsys):
    from ticketlab.fileformat import save

    doc = (ROOT / "docs" / "similarity_study.md").read_text()
    rng = np.random.default_rng(0)
    (tmp_path / "study").mkdir()
    shapes = {"fc1.weight": (30, 64), "fc2.weight": (20, 30), "fc3.weight": (10, 20)}
    for method in ("random", "snip", "synflow"):
        base = {n: rng.random(s) < 0.1 for n, s in shapes.items()}
        for seed in (0, 1):  # the study's ticket files, made without mining (fast)
            masks = {n: m ^ (rng.random(m.shape) < 0.02) for n, m in base.items()}
            save(Ticket(masks=masks, provenance={"method": method, "seed": seed}), tmp_path / "study" / f"{method}_s{seed}.h5")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    try:
        for block in _blocks(doc, "python"):
            if "import pandas" in block and importlib.util.find_spec("pandas") is None:
                continue
            exec(compile(block, "similarity_study.md", "exec"), scope)
    finally:
        if "input_jaccard" in list_metrics():
            unregister("input_jaccard")
    assert (tmp_path / "study" / "jaccard.png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert "clustering order:" in out and "random_s0" in out


def test_metric_plugin_from_entry_point(tmp_path):
    (tmp_path / "fake_metrics.py").write_text(textwrap.dedent("""
        from ticketlab.metrics import register

        @register("plugin_density_gap", kind="pair")
        def plugin_density_gap(a, b):
            return abs(a.density - b.density)
    """))
    info = tmp_path / "fake_metrics-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-metrics\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ticketlab.metrics]\nfake = fake_metrics\n")
    code = textwrap.dedent("""
        import numpy as np
        from ticketlab.metrics import compare
        from ticketlab.ticket import Ticket
        a = Ticket(masks={"w": np.array([1, 1, 0, 0], bool)})
        b = Ticket(masks={"w": np.array([1, 0, 0, 0], bool)})
        print(compare([a, b], ["plugin_density_gap"])[0]["value"])
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0.25"
