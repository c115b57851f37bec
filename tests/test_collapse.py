"""Layer collapse and the critical-compression tool (Tanaka et al. 2020, Fig. 1)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ticketlab.collapse import compression_grid, critical_compression, empty_layers
from ticketlab.errors import ConfigError
from ticketlab.mining import mine

DOC = Path(__file__).resolve().parents[1] / "docs" / "results" / "layer_collapse.md"


def test_grid_stops_where_one_weight_per_layer_is_still_possible():
    # keep_count(10^-x * 1000): x=2.5 -> 3 (>= 3 layers), x=3 -> 1
    assert compression_grid(1000, 3, 0.5) == [0.5, 1.0, 1.5, 2.0, 2.5]
    assert compression_grid(1000, 4, 0.5) == [0.5, 1.0, 1.5, 2.0]
    assert compression_grid(10, 20, 0.25) == []
    with pytest.raises(ConfigError, match="step"):
        compression_grid(10, 1, 0.0)


def test_empty_layers():
    masks = {"a": torch.tensor([[False, True]]), "b": torch.zeros(3, dtype=torch.bool), "c": torch.ones(1, dtype=torch.bool)}
    assert empty_layers(masks) == ["b"]


def _collapsed_at(method: str, x: float, **kw) -> bool:
    t = mine(method, model="lenet_300_100", dataset="digits", density=10.0 ** -x, seed=0, device="cpu", **kw)
    assert t.provenance["collapsed"] == any(not m.any() for m in t.masks.values())
    return t.provenance["collapsed"]


@pytest.mark.parametrize("method", ["random", "magnitude_init", "snip"])
def test_one_shot_critical_compression_matches_mine_and_grid(method):
    bis = critical_compression("lenet_300_100", [method], dataset="digits", device="cpu")
    grid = critical_compression("lenet_300_100", [method], dataset="digits", search="grid", device="cpu")
    b, g = bis.results[0], grid.results[0]
    assert b.critical_x == g.critical_x and g.monotone
    assert len(b.probes) < len(g.probes) == len(compression_grid(grid.total, 3))
    x = b.critical_x
    assert 0 < x < bis.max_x
    assert not _collapsed_at(method, x) and _collapsed_at(method, x + 0.25)
    probe = next(p for p in g.probes if p.x == x)
    t = mine(method, model="lenet_300_100", dataset="digits", density=10.0 ** -x, seed=0, device="cpu")
    assert probe.kept == t.kept and probe.empty_layers == ()


def test_magnitude_at_init_collapses_early_on_lenet():
    """fc1 (fan-in 64) starts with larger weights than fc2 (fan-in 300): magnitude at init empties fc2."""
    r = critical_compression("lenet_300_100", ["magnitude_init"], dataset="digits", device="cpu").results[0]
    assert r.critical_x == 0.5
    assert next(p for p in r.probes if p.x == 0.75).empty_layers == ("fc2.weight",)


def test_iterative_probes_run_the_schedule_and_stop_at_the_first_empty_layer():
    study = critical_compression("lenet_300_100", ["synflow"], dataset="digits", rounds={"synflow": 10},
                                 search="grid", device="cpu")
    r = study.results[0]
    assert r.rounds == 10
    intact = [p.x for p in r.probes if not p.collapsed]
    assert r.critical_x == max(intact)
    assert not _collapsed_at("synflow", r.critical_x, rounds=10)
    stopped = [p for p in r.probes if p.stopped_round is not None]
    assert stopped and all(p.collapsed and p.stopped_round < 10 for p in stopped)
    for p in stopped[:1]:
        assert _collapsed_at("synflow", p.x, rounds=10)
    # the run at 3.75 collapses but the one at 4.0 does not: the grid search reports collapse as
    # not monotone in x, and the critical compression as the largest intact x, 4.0
    by_x = {p.x: p for p in r.probes}
    assert by_x[3.75].collapsed and not by_x[4.0].collapsed and by_x[4.25].collapsed
    assert _collapsed_at("synflow", 3.75, rounds=10) and not _collapsed_at("synflow", 4.0, rounds=10)
    assert r.monotone is False and r.critical_x == 4.0


def test_an_iterative_probe_keeps_per_layer_what_mine_keeps_with_the_same_settings():
    """The study builds its network as mine does (ticketlab.build) and runs the shared round loop
    (ticketlab.rounds) with mine's streams: an intact probe keeps, layer by layer, mine's ticket."""
    study = critical_compression("lenet_300_100", ["synflow"], dataset="digits", rounds={"synflow": 4}, search="grid",
                                 seed=2, init="kaiming_normal", zero_bias=True, skip_first_layer=True, device="cpu")
    probes = {p.x: p for p in study.results[0].probes}
    assert study.layers == ["fc2.weight", "fc3.weight"]
    for x in (1.0, 2.0):
        t = mine("synflow", model="lenet_300_100", dataset="digits", density=10.0 ** -x, rounds=4, seed=2,
                 skip_first_layer=True, model_kwargs={"init": "kaiming_normal", "zero_bias": True}, device="cpu")
        assert not probes[x].collapsed and probes[x].layer_kept == tuple(t.provenance["layer_kept"].values())


def test_synflow_reaches_maximal_compression_with_zero_biases():
    """Tanaka et al. 2020, Sec. 6: iterative SynFlow avoids layer collapse up to the limit (one
    weight per layer) when no bias feeds the linearized network; with the model's default
    initialisation (uniform weights, nonzero biases) it collapses earlier on this model."""
    kw = dict(dataset="digits", init="kaiming_normal", device="cpu")
    zero = critical_compression("lenet_300_100", ["synflow", "magnitude_init"], zero_bias=True, **kw)
    assert zero.results[0].critical_x == zero.max_x == 4.25
    assert zero.results[0].probes[0].kept == 3  # keep_count(10^-4.25 * 50200) = 3 weights, one per layer
    assert zero.results[1].critical_x < zero.max_x
    biased = critical_compression("lenet_300_100", ["synflow"], dataset="digits", device="cpu")
    assert biased.results[0].critical_x < biased.max_x


def test_random_images_stand_in_for_missing_files_and_real_files_are_used(tmp_path):
    from fakedata import write_fake_cifar10

    fake = critical_compression("conv2", ["snip"], dataset="cifar10", samples_per_class=1, device="cpu")
    assert fake.data_source.startswith("random images")
    assert "10 standard-normal images of shape 3x32x32" in fake.data_source
    write_fake_cifar10(tmp_path, n_train=20, n_test=10, seed=0)
    real = critical_compression("conv2", ["snip"], dataset="cifar10", samples_per_class=1, data_root=tmp_path,
                                device="cpu")
    assert real.data_source == f"the cifar10 training split in {tmp_path}"
    assert 0 < fake.results[0].critical_x <= fake.max_x


@pytest.mark.parametrize("kwargs,match", [
    ({"methods": ["magnitude"]}, "trains the network"),
    ({"methods": ["random"], "search": "binary"}, "search must be"),
    ({"methods": ["random"], "rounds": {"synflow": 10}}, "not one of the methods"),
    ({"methods": []}, "at least one method"),
    ({"methods": ["random"], "dataset": "cora"}, "needs --data-root"),
    ({"methods": ["nope"]}, "unknown miner 'nope'"),
])
def test_errors(kwargs, match):
    kwargs.setdefault("dataset", "digits")
    with pytest.raises(ConfigError, match=match):
        critical_compression("lenet_300_100", **kwargs)


def _cli():
    from ticketlab.cli.main import cli

    assert "collapse" in cli.commands
    return cli


def test_cli_writes_markdown_that_its_command_regenerates(tmp_path):
    out = tmp_path / "collapse.md"
    args = ["collapse", "--model", "lenet_300_100", "--dataset", "digits", "--methods", "random,magnitude_init",
            "--seed", "2", "--device", "cpu", "--output", str(out)]
    res = CliRunner().invoke(_cli(), args)
    assert res.exit_code == 0, res.output
    text = out.read_text()
    command = re.search(r"```\n(ticketlab collapse .*)\n```", text).group(1)
    assert shlex.split(command) == ["ticketlab", *args]
    assert "| random | 1 |" in text and "| magnitude_init | 1 |" in text
    first = [line.rsplit("|", 2)[0] for line in text.splitlines() if line.startswith("| ")]
    out.unlink()
    res = CliRunner().invoke(_cli(), shlex.split(command)[1:])
    assert res.exit_code == 0, res.output
    again = [line.rsplit("|", 2)[0] for line in out.read_text().splitlines() if line.startswith("| ")]
    assert again == first  # identical table apart from the timing column


def test_cli_json_and_errors(tmp_path):
    import json

    res = CliRunner().invoke(_cli(), ["collapse", "--model", "lenet_300_100", "--dataset", "digits",
                                      "--methods", "random", "--json", "--search", "grid", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["results"][0]["method"] == "random" and data["search"] == "grid"
    assert all("collapsed" in p for p in data["results"][0]["probes"])
    res = CliRunner().invoke(_cli(), ["collapse", "--dataset", "digits", "--model", "lenet_300_100",
                                      "--rounds", "synflow"])
    assert res.exit_code == 2 and "METHOD=N" in res.output
    res = CliRunner().invoke(_cli(), ["collapse", "--dataset", "digits", "--model", "lenet_300_100",
                                      "-o", str(tmp_path / "missing" / "x.md")])
    assert res.exit_code == 2 and "does not exist" in res.output


def _committed() -> tuple[str, dict[str, tuple[int, float, int]], dict[str, list[tuple[float, int, int]]]]:
    """docs/results/layer_collapse.md: its command, table rows and probe lists."""
    text = DOC.read_text()
    command = re.search(r"```\n(ticketlab collapse .*)\n```", text).group(1)
    rows = {m: (int(r), float(x), int(k.replace(",", "")))
            for m, r, x, k in re.findall(r"^\| (\w+) \| (\d+) \| ([\d.]+) \| [^|]+ \| ([\d,]+) \|", text, flags=re.M)}
    probes = {m: [(float(x), int(k.replace(",", "")), int(e)) for x, k, e in re.findall(r"([\d.]+): ([\d,]+), (\d+) empty", line)]
              for m, line in re.findall(r"^- (\w+): (.*)$", text, flags=re.M)}
    return command, rows, probes


def test_committed_results_reproduce():
    """Regenerate the committed table's two cheap rows (random, magnitude_init: one-shot, no data)
    with the committed command's settings, on CPU, and compare every probe."""
    command, rows, probes = _committed()
    assert shlex.split(command) == ["ticketlab", "collapse", "--model", "vgg16", "--dataset", "cifar100",
                                    "--init", "kaiming_normal", "--zero-bias", "--plot", "docs/results/layer_collapse.png",
                                    "--output", "docs/results/layer_collapse.md"]
    study = critical_compression("vgg16", ["random", "magnitude_init"], dataset="cifar100", init="kaiming_normal",
                                 zero_bias=True, device="cpu")
    assert study.max_x == 6.0
    for r in study.results:
        crit = next(p for p in r.probes if p.x == r.critical_x)
        assert rows[r.method] == (r.rounds, r.critical_x, crit.kept), r.method
        assert probes[r.method] == [(p.x, p.kept, len(p.empty_layers)) for p in r.probes], r.method


def test_committed_results_show_the_ordering_of_tanaka_et_al():
    """The committed table: SynFlow's critical compression is far above the others (its Fig. 1)."""
    _, rows, probes = _committed()
    x = {m: v[1] for m, v in rows.items()}
    assert set(x) == set(probes) == {"random", "magnitude_init", "snip", "grasp", "synflow"}
    assert x["synflow"] >= max(v for k, v in x.items() if k != "synflow") + 1.0
    assert x["magnitude_init"] <= x["random"]
    assert np.isclose(x["synflow"], 6.0)
    for m, (_, crit, kept) in rows.items():  # the table row is the probe list's largest intact x
        intact = [(px, k) for px, k, e in probes[m] if e == 0]
        assert max(intact) == (crit, kept), m


def test_plot_of_layer_densities_at_the_critical_compression(tmp_path):
    from matplotlib.image import imread

    out, png = tmp_path / "c.md", tmp_path / "figs" / "c.png"
    png.parent.mkdir()
    args = ["collapse", "--model", "lenet_300_100", "--dataset", "digits", "--methods", "random,magnitude_init",
            "--plot", str(png), "--output", str(out), "--json", "--device", "cpu"]
    res = CliRunner().invoke(_cli(), args)
    assert res.exit_code == 0, res.output
    assert imread(png).shape[0] > 100
    assert "![per-layer density at the critical compression](figs/c.png)" in out.read_text()
    data = __import__("json").loads(res.stdout)
    sizes = data["layer_sizes"]
    assert sizes == [19200, 30000, 1000]
    for r in data["results"]:  # each probe's per-layer counts add up and name the empty layers
        for p in r["probes"]:
            assert sum(p["layer_kept"]) == p["kept"]
            assert [n for n, k in zip(data["layers"], p["layer_kept"]) if k == 0] == p["empty_layers"]
        crit = [p for p in r["probes"] if p["x"] == r["critical_x"]]
        assert r["critical_x"] == 0 or (crit and not crit[0]["collapsed"])
    res = CliRunner().invoke(_cli(), ["collapse", "--model", "lenet_300_100", "--dataset", "digits",
                                      "--plot", str(tmp_path / "missing" / "p.png")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_collapse_booleans_default_to_false_and_the_old_spellings_still_work():
    from click.testing import CliRunner

    from ticketlab.cli.main import cli

    new = critical_compression("lenet_300_100", ["random"], dataset="digits", search="grid", step=1.0,
                               skip_first_layer=True)
    with pytest.warns(DeprecationWarning, match="prune_first_layer=False"):
        old = critical_compression("lenet_300_100", ["random"], dataset="digits", search="grid", step=1.0,
                                   prune_first_layer=False)
    assert new.prune_first_layer is False and old.prune_first_layer is False
    assert [(p.x, p.kept, p.empty_layers) for p in new.results[0].probes] == [
        (p.x, p.kept, p.empty_layers) for p in old.results[0].probes]
    with pytest.raises(TypeError, match="keep_weights"):
        critical_compression("lenet_300_100", ["random"], dataset="digits", keep_weights=False)
    res = CliRunner().invoke(cli, ["collapse", "--model", "lenet_300_100", "--dataset", "digits", "--methods",
                                   "random", "--search", "grid", "--step", "1", "--no-prune-first-layer", "--json"])
    assert res.exit_code == 0, res.output
    assert "--no-prune-first-layer is deprecated: use --skip-first-layer" in res.output
