"""The named random streams (``ticketlab.streams``): one table of distinct values, pinned, torch-free
at import, and the only place where a seed is offset or mixed into a seed sequence."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ticketlab import streams
from ticketlab.streams import STREAMS

PACKAGE = Path(streams.__file__).resolve().parent

#: The values every mask depends on: changing one changes tickets, so it must fail a test.
PINNED = {"MINER": 0x5EED, "TIE": 0x71E5, "BERNOULLI": 0xBE2, "KEPT": 0x6E97, "BIAS": 0xB1A5, "KEPT_REINIT": 0x2E1,
          "IMP_REINIT": 0x1E1217, "RANDOM_LABELS": 0x1AB5, "RANDOM_PIXELS": 0x91C5, "BATCH_ORDER": 1, "DROPOUT": 2,
          "RECALIBRATION": 3, "ALIGNED_NULL": 14, "RELATIONAL_RANDOM": 26, "RELATIONAL_NODES": 27,
          "DEGREE_SELF": 2**31}


def test_values_are_pinned_and_distinct():
    assert STREAMS == PINNED
    assert len(set(STREAMS.values())) == len(STREAMS)
    assert all(getattr(streams, name) == value for name, value in STREAMS.items())


def test_every_stream_is_in_the_docstring_table_with_its_value():
    doc = streams.__doc__ or ""
    for name, value in STREAMS.items():
        row = re.search(rf"^{name} +(.+?)  ", doc, re.MULTILINE)
        assert row is not None, f"{name} has no row in the table"
        base, _, shift = row.group(1).partition("<<")
        assert int(base, 0) << int(shift or 0) == value, f"{name}: the table says {row.group(1)}"


def test_the_module_imports_without_torch():
    code = "import sys, ticketlab.streams as s; s.numpy_rng(0, s.TIE).random(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("seed", [0, 1, 2**32 - 1])
def test_helpers_are_the_formulas_the_call_sites_used(seed):
    # offset style: a torch generator seeded with seed + value (the miner, tie and Bernoulli streams)
    for stream in (streams.MINER, streams.TIE, streams.BERNOULLI):
        a = torch.rand(5, generator=streams.offset_generator(seed, stream))
        b = torch.rand(5, generator=torch.Generator().manual_seed(seed + stream))
        assert torch.equal(a, b)
    g, t = streams.miner_generators(seed)
    assert g.initial_seed() == seed + 0x5EED and t.initial_seed() == seed + 0x71E5
    # sequence style: SeedSequence([seed, value, *keys])
    assert streams.seed32(seed, 0x6E97) == int(np.random.SeedSequence([seed, 0x6E97]).generate_state(1)[0])
    assert streams.sequence_generator(seed, 0xB1A5).initial_seed() == \
        int(np.random.SeedSequence([seed, 0xB1A5]).generate_state(1)[0])
    want = int(np.random.SeedSequence([seed, 0x1E1217, 3]).generate_state(1, np.uint64)[0] >> np.uint64(1))
    assert streams.seed63(seed, streams.IMP_REINIT, 3) == want and 0 <= want < 2**63
    assert np.array_equal(streams.numpy_rng(seed, 14).random(4),
                          np.random.default_rng(np.random.SeedSequence([seed, 14])).random(4))
    assert np.array_equal(streams.words_rng(seed, 2, 27).random(4),
                          np.random.default_rng(np.random.SeedSequence([seed, 2, 27])).random(4))


def test_the_stream_helpers_pin_the_draws_of_the_library():
    """The library functions that draw from a stream give what the literal formulas gave."""
    from ticketlab.miners.imp import reinit_seed
    from ticketlab.weights import bias_generator, kept_generator, reinit_draw_seed

    assert reinit_seed(0, 1) == int(np.random.SeedSequence([0, 0x1E1217, 1]).generate_state(1, np.uint64)[0] >> 1)
    assert reinit_draw_seed(7) == int(np.random.SeedSequence([7, 0x2E1]).generate_state(1)[0])
    assert kept_generator(7).initial_seed() == int(np.random.SeedSequence([7, 0x6E97]).generate_state(1)[0])
    assert bias_generator(7).initial_seed() == int(np.random.SeedSequence([7, 0xB1A5]).generate_state(1)[0])


def _offsets_and_sequences(path: Path) -> list[str]:
    """``SeedSequence(...)`` calls and ``manual_seed(a + b)`` calls in a module: a stream made by hand."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name == "SeedSequence" or (name == "manual_seed" and node.args and isinstance(node.args[0], ast.BinOp)):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return found


def test_streams_is_the_only_module_that_derives_a_stream():
    hits = [h for p in sorted(PACKAGE.rglob("*.py")) if p.name != "streams.py" for h in _offsets_and_sequences(p)]
    assert hits == []
