"""No import circle among the metrics modules (issue 24): counting the imports inside functions
too, which hide a circle from Python but not from a reader."""

from __future__ import annotations

import ast
from pathlib import Path

METRICS = Path(__file__).resolve().parents[1] / "ticketlab" / "metrics"


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ticketlab.metrics."):
            out.add(node.module.split(".")[2])
        elif isinstance(node, ast.ImportFrom) and node.module == "ticketlab.metrics":
            out.update(a.name for a in node.names if (METRICS / f"{a.name}.py").exists())
    return out


def test_no_import_cycle_among_metrics_modules():
    graph = {p.stem: _imports(p) - {p.stem} for p in METRICS.glob("*.py") if p.stem != "__init__"}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                cycle = stack[stack.index(m):] + [m]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)


def test_kahn_is_written_once():
    root = METRICS.parent
    hits = [p for p in root.rglob("*.py") if "indeg[" in p.read_text(encoding="utf-8")]
    assert [p.name for p in hits] == ["topology.py"]
