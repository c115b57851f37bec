"""``ticketlab mine``'s options come from the spec's fields (issue 24): every field is an option
with its help, a field added to the spec is an option, the CLI builds the spec that ``mine()``
builds from the same settings."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np
import pytest
from click.testing import CliRunner

from ticketlab.cli.main import cli
from ticketlab.cli.mine import command, make_command
from ticketlab.cli.spec_options import FORMS, NOT_EXPOSED, spec_values
from ticketlab.errors import ConfigError
from ticketlab.spec import MineSpec, PruneSpec, flat_fields


def _parsed(args: list[str], cmd=command) -> dict:
    """The values a command line gives ``mine``'s parameters (callbacks run, nothing mined)."""
    return dict(cmd.make_context("mine", list(args)).params)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_every_spec_field_is_an_option_with_its_help():
    assert set(NOT_EXPOSED) <= set(flat_fields()) and all(len(why) > 20 for why in NOT_EXPOSED.values())
    params = _parsed(["-m", "random"])
    values = spec_values(MineSpec, params)
    assert set(values) == set(flat_fields()) - set(NOT_EXPOSED)
    # the options' defaults are the spec's: a bare command line is the default spec
    method = values.pop("method")
    assert MineSpec.from_flat(method, **values) == MineSpec("random")
    shown = _flat(CliRunner().invoke(cli, ["mine", "--help"], terminal_width=1000).output)
    for key, spec_field in flat_fields().items():
        form = FORMS.get(key)
        if key in NOT_EXPOSED or (form is not None and form.params is not None):
            continue
        if key == "scope":  # its help lists each method's default scope, from the miners
            assert "--scope [global|layer]" in shown
            continue
        flag = (form.flags[0] if form is not None and form.flags else f"--{key.replace('_', '-')}")
        assert flag in shown, key
        assert _flat(spec_field.field.metadata["help"]) in shown, key
    assert "--init [" in shown and "--zero-bias" in shown  # model_kwargs: the options every model takes


@dataclass(frozen=True)
class _PruneSpec(PruneSpec):
    """PruneSpec with three fields more, as a later version might add them."""

    warmup_rounds: int | None = field(default=None, metadata={"help": "Rounds of warm-up before the first prune."})
    freeze_bias: bool = field(default=False, metadata={"help": "Keep every bias at its initial value."})
    layer_floor: dict = field(default_factory=dict, metadata={"help": "Least density per layer, a table."})


@dataclass(frozen=True)
class _Spec(MineSpec):
    prune: _PruneSpec = field(default_factory=_PruneSpec, metadata={"help": "pruning targets"})


def test_a_field_added_to_the_spec_is_an_option_with_its_help(monkeypatch, tmp_path):
    cmd = make_command(_Spec)
    shown = _flat(CliRunner().invoke(cmd, ["--help"], terminal_width=1000).output)
    assert "--warmup-rounds INTEGER Rounds of warm-up before the first prune." in shown
    assert "--freeze-bias Keep every bias at its initial value." in shown
    assert "--layer-floor TEXT Least density per layer, a table." in shown
    assert "--warmup-rounds" not in _flat(CliRunner().invoke(command, ["--help"]).output)  # the real one: not
    params = _parsed(["-m", "random", "--warmup-rounds", "3", "--freeze-bias", "--layer-floor", '{"fc1": 0.1}'], cmd)
    assert (params["warmup_rounds"], params["freeze_bias"], params["layer_floor"]) == (3, True, {"fc1": 0.1})
    with pytest.raises(ConfigError, match="option --layer-floor needs a JSON table"):
        _parsed(["-m", "random", "--layer-floor", "[1]"], cmd)

    # ... and reaches the spec the command runs
    seen = []

    def fake_mine(spec, **run):
        seen.append((spec, run))
        raise ConfigError("stop here")

    monkeypatch.setattr("ticketlab.mining.mine", fake_mine)
    res = CliRunner().invoke(cmd, ["-m", "random", "--density", "0.5", "--warmup-rounds", "3", "--freeze-bias",
                                   "-o", str(tmp_path / "t.h5")])
    assert isinstance(res.exception, ConfigError) and len(seen) == 1
    spec, run = seen[0]
    assert type(spec) is _Spec and spec.prune == _PruneSpec(density=0.5, warmup_rounds=3, freeze_bias=True)
    assert run["omit_weights"] is False and run["device"] == "auto"
    # a field added with a default that keeps today's behaviour renames no run (open_lth's rule)
    assert _Spec("random").hashname() == MineSpec("random").hashname()
    assert _Spec.from_flat("random", warmup_rounds=3).to_flat()["warmup_rounds"] == 3


def test_first_and_last_layer_flags_and_their_older_spellings():
    for args, first, last in ((["--skip-first-layer"], True, False), (["--no-prune-first-layer"], True, False),
                              (["--skip-last-layer", "--prune-first-layer"], False, True),
                              (["--no-prune-last-layer"], False, True), (["--prune-last-layer"], False, False), ([], False, False)):
        params = _parsed(["-m", "random", *args])
        assert (params["skip_first_layer"], params["skip_last_layer"]) == (first, last), args


def test_the_cli_runs_the_spec_that_mine_builds_from_the_same_settings(tmp_path):
    from ticketlab.fileformat import load
    from ticketlab.mining import mine

    out = tmp_path / "s.h5"
    res = CliRunner().invoke(cli, ["mine", "-m", "synflow", "--rounds", "2", "--density", "0.5", "--skip-first-layer",
                                   "--rate-multiplier", "output=0.5", "--init", "kaiming_normal", "--zero-bias",
                                   "--seed", "3", "--device", "cpu", "--no-weights", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    kw = dict(rounds=2, density=0.5, skip_first_layer=True, rate_multipliers={"output": 0.5}, seed=3,
              model_kwargs={"init": "kaiming_normal", "zero_bias": True})
    t, ref = load(out), mine("synflow", device="cpu", omit_weights=True, **kw)
    assert t.provenance["spec_hash"] == MineSpec.from_flat("synflow", **kw).hashname() == ref.provenance["spec_hash"]
    assert list(t.masks) == list(ref.masks) == ["fc2.weight", "fc3.weight"]
    assert all(np.array_equal(t.masks[n], ref.masks[n]) for n in ref.masks) and t.weights == {}


def test_building_the_options_imports_no_torch():
    code = ("import sys; from ticketlab.cli.spec_options import spec_params; from ticketlab.cli import mine; "
            "spec_params(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ------------------------------------------------------------------ --schedule: densities, as mine(schedule=)
@pytest.mark.parametrize("text, densities", [
    ("0.8,0.48,0.2", [0.8, 0.48, 0.2]), ("1,0.5", [1.0, 0.5]), ("0.5, 0.5,", [0.5, 0.5]), ("0.3", [0.3]),
])
def test_schedule_reads_densities(text, densities):
    from ticketlab.cli.spec_options import parse_schedule

    assert parse_schedule(text) == densities
    assert _parsed(["-m", "synflow", "--schedule", text])["schedule"] == densities


@pytest.mark.parametrize("text, message", [
    # an increasing list that reads as the old cumulative sparsities: refused, with the densities it meant
    ("0.2,0.52,0.8", "option --schedule takes densities (fractions kept) now, not sparsities: 0.2,0.52,0.8 increases; "
                     "as densities the same rounds are --schedule 0.8,0.48,0.2"),
    ("0,0.5,0.5", "as densities the same rounds are --schedule 1,0.5,0.5"),
    ("0.2,0.96,0.996", "--schedule 0.8,0.04,0.004"),
    # neither densities nor sparsities
    ("0.5,0.8,0.2", "option --schedule densities must not increase (masks only shrink), got 0.5,0.8,0.2"),
    ("0.5,0", "option --schedule densities must be in (0, 1], got 0.0"),
    ("1.5", "option --schedule densities must be in (0, 1], got 1.5"),
    ("nan", "must be in (0, 1], got nan"),
    ("0.8;0.5", "option --schedule needs comma-separated densities like 0.8,0.48,0.2, got '0.8;0.5'"),
    (",", "option --schedule needs at least one density"),
])
def test_schedule_refuses_old_sparsity_lists_and_bad_ones_in_one_line(text, message):
    res = CliRunner().invoke(cli, ["mine", "-m", "synflow", "--schedule", text])
    assert res.exit_code == 2 and message in res.output and res.output.count("\n") == 1, res.output


def test_cli_schedule_is_the_api_schedule(tmp_path):
    from ticketlab.fileformat import load

    out = tmp_path / "s.h5"
    res = CliRunner().invoke(cli, ["mine", "-m", "synflow", "--schedule", "0.5,0.25", "--device", "cpu", "-o", str(out),
                                   "-q"])
    assert res.exit_code == 0, res.output
    t = load(out)
    assert t.provenance["spec_hash"] == MineSpec.from_flat("synflow", schedule=[0.5, 0.25]).hashname()
    assert [r["target_density"] for r in t.history if r.get("stage") == "round"] == [0.5, 0.25]
