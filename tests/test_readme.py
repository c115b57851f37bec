"""The README's Python tour runs as written (in a temporary folder)."""

import re
from pathlib import Path

from ticketlab.selection import keep_count

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_tour_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no Python tour"
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(blocks[0], str(README), "exec"), scope)
    assert (tmp_path / "a.h5").exists()
    a, b, records = scope["a"], scope["b"], scope["records"]
    assert a.kept == keep_count(0.1, a.total) and b.kept == keep_count(0.8 ** 5, b.total)
    assert {r["metric"] for r in records} >= {"jaccard"}
    assert "synflow" in capsys.readouterr().out
