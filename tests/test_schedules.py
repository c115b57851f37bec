"""Per-layer density targets (issue 27): explicit per-layer rounds and rate multipliers, resolved
once in ``ticketlab.schedules`` for every miner; hand-computed counts; one-line errors."""

from __future__ import annotations

import math

import pytest

from ticketlab.errors import ConfigError
from ticketlab.schedules import (check_multipliers, parse_multipliers, per_layer, rate_schedule, resolve_keys,
                                 resolve_rounds, scale_rates)
from ticketlab.selection import keep_count

NAMES = ["fc1.weight", "fc2.weight", "fc3.weight"]


def test_keys_resolve_by_precedence():
    got = resolve_keys({"*": 0.1, "fc*": 0.2, "output": 0.3, "fc1.weight": 0.4}, NAMES, "fc3.weight",
                       what="x", complete=True)
    assert got == {"fc1.weight": 0.4, "fc2.weight": 0.2, "fc3.weight": 0.3}


def test_disagreeing_patterns_and_unknown_keys_are_one_line_errors():
    with pytest.raises(ConfigError, match="patterns 'fc\\*', '\\*2.weight' give fc2.weight different values"):
        resolve_keys({"fc*": 0.2, "*2.weight": 0.3}, NAMES, None, what="x", complete=False)
    with pytest.raises(ConfigError, match="'conv\\*' names no prunable parameter"):
        resolve_keys({"conv*": 0.2}, NAMES, None, what="x", complete=False)
    with pytest.raises(ConfigError, match="'output' names the output layer, which this run does not prune"):
        resolve_keys({"output": 0.5}, NAMES[:2], "fc3.weight", what="x", complete=False)
    with pytest.raises(ConfigError, match="round 2 of the schedule gives no value for fc2.weight"):
        resolve_rounds([{"*": 0.5}, {"fc1.weight": 0.2, "fc3.weight": 0.2}], NAMES, "fc3.weight")
    with pytest.raises(ConfigError, match="round 1 of the schedule gives fc1.weight density 1.5"):
        resolve_rounds([{"*": 1.5}], NAMES, "fc3.weight")
    with pytest.raises(ConfigError, match="a schedule is a list of rounds"):
        resolve_rounds({"*": 0.5}, NAMES, "fc3.weight")
    with pytest.raises(ConfigError, match="must be a finite number"):
        check_multipliers({"output": math.nan}, NAMES, "fc3.weight")
    with pytest.raises(ConfigError, match="must be > 0"):
        check_multipliers({"output": 0}, NAMES, "fc3.weight")


def test_frankle_carbin_and_zhou_output_rates_by_hand():
    # 20 % per round, the output layer at half the rate: hidden 0.8^k, output 0.9^k (F&C Fig. 2; Zhou Sec. 2)
    rounds = scale_rates([0.8 ** k for k in range(1, 4)], {"output": 0.5}, NAMES, "fc3.weight")
    for k, r in enumerate(rounds, 1):
        assert r["fc1.weight"] == pytest.approx(0.8 ** k) and r["fc2.weight"] == pytest.approx(0.8 ** k)
        assert r["fc3.weight"] == pytest.approx(0.9 ** k)
    assert rate_schedule({"fc1.weight": 0.2, "fc3.weight": 0.1}, 2) == [
        {"fc1.weight": 0.8, "fc3.weight": 0.9}, {"fc1.weight": 0.8 * 0.8, "fc3.weight": 0.9 * 0.9}]
    # a non-constant schedule: rates 1 - 0.5/1 = 0.5, then 1 - 0.2/0.5 = 0.6; the output layer's halves: 0.25, 0.3
    (a, b) = scale_rates([0.5, 0.2], {"output": 0.5}, NAMES, "fc3.weight")
    assert (a["fc1.weight"], b["fc1.weight"]) == pytest.approx((0.5, 0.2))
    assert (a["fc3.weight"], b["fc3.weight"]) == pytest.approx((0.75, 0.75 * 0.7))
    with pytest.raises(ConfigError, match="asks round 2 to prune 106.7 %"):
        scale_rates([0.6, 0.2], {"fc1.weight": 1.6}, NAMES, "fc3.weight")
    with pytest.raises(ConfigError, match="already gives per-layer densities"):
        scale_rates([{"fc1.weight": 0.5}], {"output": 0.5}, NAMES, "fc3.weight")


def test_cli_values_parse():
    assert parse_multipliers(["output=0.5", " conv* = 2"]) == {"output": 0.5, "conv*": 2.0}
    with pytest.raises(ConfigError, match="needs NAME=FACTOR like output=0.5, got 'output'"):
        parse_multipliers(["output"])


# --------------------------------------------------------------------------- through mine()
def test_mine_with_per_layer_rounds_keeps_exact_layer_counts():
    from ticketlab.mining import mine

    t = mine("synflow", schedule=[{"*": 0.8, "output": 0.9}, {"*": 0.5, "output": 0.7}], device="cpu",
             omit_weights=True)
    sizes = {n: m.size for n, m in t.masks.items()}
    assert t.provenance["layer_kept"] == {n: keep_count(0.7 if n == "fc3.weight" else 0.5, sizes[n]) for n in sizes}
    assert t.provenance["scope"] == "layer" and t.provenance["schedule"] == "explicit"


def test_mine_rate_multiplier_equals_imp_output_half_rate():
    """IMP's own per-kind rates (rate_fc, output at half) are the shared mechanism's special case."""
    from ticketlab.mining import mine

    common = dict(rounds=2, train_epochs=1, device="cpu", omit_weights=True, omit_scores=True)
    a = mine("imp", miner_config={"rate": 0.2}, rate_multipliers={"output": 0.5}, **common)
    b = mine("imp", miner_config={"rate_fc": 0.2}, **common)
    assert a.provenance["layer_kept"] == b.provenance["layer_kept"]
    assert all((a.masks[n] == b.masks[n]).all() for n in a.masks)
    assert a.provenance["rate_multipliers"] == {"fc1.weight": 1.0, "fc2.weight": 1.0, "fc3.weight": 0.5}
    sizes = {n: m.size for n, m in a.masks.items()}
    assert a.provenance["layer_kept"]["fc3.weight"] == keep_count(0.81, sizes["fc3.weight"])


def test_mine_schedule_errors_are_config_errors_not_type_errors():
    from ticketlab.mining import mine

    with pytest.raises(ConfigError, match="must not increase for fc1.weight"):
        mine("synflow", schedule=[{"*": 0.5}, {"*": 0.7}], device="cpu")
    with pytest.raises(ConfigError, match="per-layer schedule rounds need distribution global"):
        mine("random", schedule=[{"*": 0.5}], miner_config={"distribution": "erk"}, device="cpu")
    with pytest.raises(ConfigError, match="per-kind rates fix every layer|already gives per-layer"):
        mine("imp", miner_config={"rate_fc": 0.2}, rate_multipliers={"output": 0.5}, rounds=1, device="cpu")


def test_cli_rate_multiplier(tmp_path):
    from click.testing import CliRunner

    from ticketlab.cli.main import cli
    from ticketlab.fileformat import load

    out = tmp_path / "t.h5"
    r = CliRunner().invoke(cli, ["mine", "--method", "synflow", "--density", "0.25", "--rounds", "2",
                                 "--rate-multiplier", "output=0.5", "-o", str(out), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    prov = load(out).provenance
    sizes = prov["layer_kept"]
    assert prov["rate_multipliers"]["fc3.weight"] == 0.5
    # overall rate per round 1 - 0.25^(1/2) = 0.5; the output layer's 0.25: it keeps 0.75^2 of its weights
    assert sizes["fc3.weight"] == keep_count(0.75 ** 2, 100 * 10)
    bad = CliRunner().invoke(cli, ["mine", "--method", "synflow", "--rate-multiplier", "out", "-o", str(out)])
    assert bad.exit_code != 0 and "--rate-multiplier needs NAME=FACTOR" in bad.output
