"""``ticketlab inspect``: a ticket's provenance and per-layer densities (never imports torch)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from ticketlab.cli.common import common_options
from ticketlab.cli.render import console, density_table, round_table, trained_rounds, visible, warn_unhealthy

#: Provenance keys shown first, in this order; the rest follow alphabetically.
_FIRST = ("method", "model", "dataset", "seed", "scope", "rounds", "target_density", "achieved_density",
          "kept", "total", "collapsed", "test_accuracy", "device", "created", "ticketlab_version",
          "torch_version")
_HIDDEN = ("topology", "health")  # large; shown with --json only (health: its summary line, computed anew)
#: The text view stays readable and fast on any provenance (it is bounded at load, but may still
#: hold ~10**6 keys): at most this many keys, each value cut to this many characters.
MAX_KEYS, MAX_VALUE_CHARS = 100, 300


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = json.dumps(value, separators=(", ", ": "), ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)
    if len(text) > MAX_VALUE_CHARS:
        text = f"{text[:MAX_VALUE_CHARS]} ... ({len(text):,} characters; --json shows all)"
    return visible(text)


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


@click.command("inspect")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, default=False, help="Print everything as JSON.")
@common_options
def command(path: Path, as_json: bool) -> None:
    """Show a ticket file's provenance, per-layer densities, health and trained rounds (IMP)."""
    from ticketlab.fileformat import load, read_info
    from ticketlab.metrics.health import health

    info = read_info(path, history=True, verify=True)  # what load refuses, inspect refuses too
    checked = health(load(path, weights=False, scores=False)).to_dict()  # computed now, not the stored record
    warn_unhealthy(path, checked)  # one line on stderr
    if as_json:  # strict JSON: NaN and infinities as null (as compare --json writes them)
        click.echo(json.dumps(_json_safe({**info, "health": checked}), indent=2, default=str, allow_nan=False))
        return
    prov = info["provenance"]
    out = console()
    out.print(f"{visible(path)}  (format v{info['format_version']}, {info['file_bytes']:,} bytes)")
    keys = [k for k in _FIRST if k in prov] + sorted(k for k in prov if k not in _FIRST and k not in _HIDDEN)
    shown = keys[:MAX_KEYS]
    width = min(max((len(visible(k)) for k in shown), default=0), 40)
    for k in shown:
        out.print(f"  {visible(k[:80]):<{width}}  {_fmt(prov[k])}")
    if len(keys) > len(shown):
        out.print(f"  ... and {len(keys) - len(shown):,} more provenance keys (--json shows all)")
    extras = [f"weights: {', '.join(info['snapshots']) or 'none'}", f"scores: {'yes' if info['scores'] else 'no'}",
              f"history rows: {info['history_rows']}"]
    out.print("  " + "; ".join(extras))
    out.print(f"  {visible(checked['summary'])}")
    layers = info["layers"]
    out.print(density_table({n: v["kept"] for n, v in layers.items()}, {n: v["total"] for n, v in layers.items()}))
    rounds = trained_rounds(info["history"])
    if rounds:
        out.print(round_table(rounds))
