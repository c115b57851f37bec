"""The ``ticketlab`` command through click's CliRunner, plus real subprocess runs."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import ticketlab
from ticketlab.cli.main import cli
from ticketlab.errors import UnknownNameError
from ticketlab.selection import density_from, keep_count

PLANETOID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "planetoid"


def run(*args, ok=True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def synflow_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "a.h5"
    run("mine", "--method", "synflow", "--rounds", "5", "-o", path)
    return path


def test_mine_defaults_write_ticket_and_print_summary(tmp_path):
    path = tmp_path / "a.h5"
    res = run("mine", "--method", "synflow", "-o", path, "--quiet")
    assert "synflow ticket for lenet_300_100 on digits" in res.output
    assert "fc1.weight" in res.output and "total" in res.output
    t = ticketlab.load(path)
    assert t.kept == keep_count(0.1, t.total) and t.provenance["rounds"] == 100


def test_inspect_table_and_json(synflow_file):
    res = run("inspect", synflow_file)
    assert "synflow" in res.output and "fc2.weight" in res.output and "density" in res.output
    info = json.loads(run("inspect", synflow_file, "--json").output)
    assert info["provenance"]["method"] == "synflow"
    assert info["kept"] == sum(v["kept"] for v in info["layers"].values())


def test_list():
    res = run("list")
    for word in ("miners", "synflow", "models", "lenet_300_100", "datasets", "digits"):
        assert word in res.output
    assert "conv4" in run("list", "models").output


def test_miner_specific_options_and_misuse(tmp_path):
    run("mine", "--method", "synflow", "--rounds", "2", "--precision", "float32", "-o", tmp_path / "x.h5")
    assert ticketlab.load(tmp_path / "x.h5").provenance["method_config"]["precision"] == "float32"
    res = run("mine", "--method", "random", "--precision", "float32", "-o", tmp_path / "y.h5", ok=False)
    assert res.exit_code == 2 and "belongs to synflow" in res.output


def test_sparsity_and_layer_scope(tmp_path):
    run("mine", "--method", "random", "--sparsity", "0.8", "--scope", "layer", "--seed", "3", "-o", tmp_path / "r.h5")
    t = ticketlab.load(tmp_path / "r.h5")
    for m in t.masks.values():
        assert int(m.sum()) == keep_count(density_from(sparsity=0.8), m.size)


@pytest.mark.parametrize(
    "args,message",
    [
        (["mine", "--method", "nope"], "unknown miner 'nope'"),
        (["mine", "--method", "random", "--model", "nope"], "unknown model 'nope'"),
        (["mine", "--method", "random", "--dataset", "nope"], "unknown data set 'nope'"),
        (["mine", "--method", "random", "--density", "0"], "density must be in (0, 1]"),
        (["mine", "--method", "random", "--density", "1.5"], "density must be in (0, 1]"),
        (["mine", "--method", "random", "--sparsity", "1"], "sparsity must be in [0, 1)"),
        (["mine", "--method", "random", "--sparsity", "-0.5"], "sparsity must be in [0, 1)"),
        (["mine", "--method", "random", "--density", "0.5", "--sparsity", "0.5"], "not both"),
        (["mine", "--method", "random", "-o", "no/such/folder/t.h5"], "does not exist"),
        (["mine", "--method", "random", "--model", "gcn"], "gcn"),
        (["mine", "--method", "magnitude", "--dataset", "cifar10", "--data-root", "/nonexistent"], "CIFAR-10 files not found"),
        (["inspect", "/nonexistent/t.h5"], "no such file"),
        (["mine", "--method", "random", "--scope", "bogus"], "Invalid value for '--scope'"),
        (["mine", "--method", "random", "--density", "abc"], "'abc' is not a valid float"),
        (["mine", "--method", "random", "--init", "he"], "Invalid value for '--init'"),
        (["mine"], "Missing option '-m' / '--method'. (see 'cli mine --help')"),  # CliRunner's prog name
        (["bogus"], "No such command 'bogus'"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert res.output.count("\n") == 1 and res.output.startswith("error: "), res.output
    assert "Traceback" not in res.output
    assert not list(tmp_path.glob("*.h5"))


def test_bad_files_one_line(tmp_path):
    (tmp_path / "text.h5").write_text("not hdf5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.arange(3)
    for name in ("text.h5", "other.h5"):
        res = CliRunner().invoke(cli, ["inspect", str(tmp_path / name)])
        assert res.exit_code == 2 and res.output.startswith("error: ") and res.output.count("\n") == 1, res.output


def test_debug_shows_traceback():
    plain = CliRunner().invoke(cli, ["mine", "--method", "nope"])
    assert plain.exit_code == 2 and isinstance(plain.exception, SystemExit)  # one line, no traceback
    for args in (["--debug", "mine", "--method", "nope"], ["mine", "--method", "nope", "--debug"]):
        res = CliRunner().invoke(cli, args)
        # --debug lets the typed error through (click's runner records it, exit code 1)
        assert isinstance(res.exception, UnknownNameError) and res.exit_code == 1, (args, res.exception)
        assert "unknown miner 'nope'" in str(res.exception)
    proc = subprocess.run([sys.executable, "-m", "ticketlab", "--debug", "mine", "--method", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback (most recent call last)" in proc.stderr
    assert "UnknownNameError: unknown miner 'nope'" in proc.stderr


@pytest.mark.skipif(not PLANETOID.exists(), reason="shared Planetoid data not present")
def test_gcn_magnitude_on_cora(tmp_path):
    root = tmp_path / "planetoid"
    shutil.copytree(PLANETOID / "Cora", root / "Cora")
    out = tmp_path / "g.h5"
    run("mine", "--method", "magnitude", "--model", "gcn", "--dataset", "cora", "--data-root", root,
        "--sparsity", "0.8", "--train-epochs", "20", "-o", out)
    t = ticketlab.load(out)
    assert t.kept == keep_count(density_from(sparsity=0.8), t.total)
    assert set(t.masks) == {"conv1.lin.weight", "conv2.lin.weight", "fc.weight"}


def test_real_subprocess_mine_and_inspect_without_torch(tmp_path):
    out = tmp_path / "s.h5"
    exe = [sys.executable, "-m", "ticketlab"]
    proc = subprocess.run([*exe, "mine", "--method", "synflow", "--rounds", "3", "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "density" in proc.stdout and proc.stderr == ""  # no progress bar when not a terminal
    code = ("import sys; from ticketlab.cli.main import main\n"
            "try:\n    main(['inspect', sys.argv[1]])\nexcept SystemExit as e:\n    assert e.code == 0\n"
            "assert 'torch' not in sys.modules, 'inspect imported torch'\n")
    proc = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "synflow" in proc.stdout
    proc = subprocess.run([*exe, "mine", "--method", "bogus"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "bogus" in proc.stderr


@pytest.fixture(scope="module")
def two_tickets(tmp_path_factory, synflow_file):
    path = tmp_path_factory.mktemp("cmp") / "r.h5"
    run("mine", "--method", "random", "--seed", "1", "-o", path)
    return synflow_file, path


def test_compare_table(two_tickets):
    a, b = two_tickets
    res = run("compare", a, b)
    assert f"{a.name}  vs  {b.name}" in res.output
    for word in ("jaccard", "expected", "lift", "density"):
        assert word in res.output


def test_compare_json_validates_against_schema(two_tickets):
    from ticketlab.metrics import validate_records

    a, b = two_tickets
    records = json.loads(run("compare", a, b, "--json", "--per-layer").output)
    validate_records(records)
    jac = [r for r in records if r["metric"] == "jaccard" and r["layer"] == "__total__"]
    assert len(jac) == 1 and 0 <= jac[0]["value"] <= 1 and jac[0]["expected"] > 0
    assert {r["layer"] for r in records if r["metric"] == "jaccard"} >= {"fc1.weight", "fc2.weight", "fc3.weight"}


def test_compare_matrix_plot_and_csv(two_tickets, tmp_path):
    a, b = two_tickets
    c = tmp_path / "c.h5"
    run("mine", "--method", "random", "--seed", "2", "--density", "0.5", "-o", c)
    res = run("compare", a, b, c, "--matrix", "jaccard", "--plot", tmp_path / "m.png", "--csv", tmp_path / "m.csv")
    assert "jaccard" in res.output
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (tmp_path / "m.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[1].split(",")[1] == "1.0"


def test_compare_different_architectures_one_line_error(two_tickets, tmp_path):
    a, _ = two_tickets
    conv = tmp_path / "c.h5"
    run("mine", "--method", "random", "--model", "conv2", "-o", conv)
    res = CliRunner().invoke(cli, ["compare", str(a), str(conv)])
    assert res.exit_code == 2 and res.output.startswith("error: ") and res.output.count("\n") == 1
    assert "differ" in res.output and "--common-only" in res.output


def test_compare_profile_plot(two_tickets, tmp_path):
    a, b = two_tickets
    res = run("compare", a, b, "--metric", "jaccard", "--profile-plot", tmp_path / "p.png")
    assert "density profiles" in res.output
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_misuse():
    res = CliRunner().invoke(cli, ["compare", "x.h5"])
    assert res.exit_code == 2 and "at least two" in res.output


@pytest.mark.parametrize("module", ["mine", "inspect", "compare", "collapse", "listing", "common", "transfer"])
def test_every_command_module_imports_on_its_own(module):
    proc = subprocess.run([sys.executable, "-c", f"import ticketlab.cli.{module}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_shared_miner_option_shows_each_miners_default():
    res = run("mine", "--help")
    text = " ".join(res.output.split())
    assert "[default: synflow float64, grasp float32, snip float32]" in text
    assert "[synflow, grasp, snip] batch-norm mode while scoring: eval (reference code) or train [default: eval]" in text


def test_data_free_method_needs_no_files_but_data_driven_one_does(tmp_path, monkeypatch):
    monkeypatch.setenv("TICKETLAB_DATA_ROOT", str(tmp_path / "empty"))
    out = tmp_path / "v.h5"
    run("mine", "--method", "synflow", "--model", "conv2", "--dataset", "cifar10", "--rounds", "2",
        "--init", "kaiming_normal", "--zero-bias", "-o", out, "--quiet")
    t = ticketlab.load(out)
    assert t.provenance["data_read"] is False and t.provenance["layer_kept"] == t.layer_kept()
    assert t.provenance["model_config"] == {"init": "kaiming_normal", "zero_bias": True}
    assert t.provenance["data_spec"]["input_shape"] == [3, 32, 32]
    assert all(not np.any(b) for n, b in t.weights["init"].items() if n.endswith("bias"))
    res = run("mine", "--method", "snip", "--model", "conv2", "--dataset", "cifar10", "-o", tmp_path / "s.h5", ok=False)
    assert res.exit_code == 2 and "CIFAR-10 files not found" in res.output


def test_shape_only_spec_equals_the_loaded_spec(tmp_path):
    from fakedata import write_fake_cifar10, write_fake_mnist

    from ticketlab.data import load_dataset, shape_only
    from ticketlab.errors import ConfigError

    write_fake_cifar10(tmp_path, n_train=20, n_test=10)
    write_fake_mnist(tmp_path, n_train=20, n_test=10)
    for name in ("cifar10", "mnist"):
        empty = shape_only(name)
        assert empty.spec == load_dataset(name, root=tmp_path).spec
        assert len(empty.train[1]) == 0 and empty.train[0].shape[1:] == empty.spec.input_shape
    with pytest.raises(ConfigError, match="'cora' is not known without its files"):
        shape_only("cora")


# ---- transfer (Elastic LTH, ticketlab.elastic) ----------------------------------------------------


@pytest.fixture(scope="module")
def resnet20_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("elastic") / "r20.h5"
    t = ticketlab.mine("random", model="resnet20", dataset="digits", density=0.3, seed=0, device="cpu",
                       model_kwargs={"width": 2})
    return ticketlab.save(t, path)


def test_transfer_writes_a_valid_ticket_and_summary(tmp_path, resnet20_file):
    from ticketlab.fileformat import read_info

    out = tmp_path / "t32.h5"
    res = run("transfer", resnet20_file, "--to-model", "resnet32", "-o", out)
    text = " ".join(res.output.split())
    assert "-> resnet32" in text and "rule elastic_inter (stretch, 3 -> 5 blocks per stage)" in text
    assert "0<-0 1<-1 2<-1 3<-2 4<-2" in text and f"written to {out}" in text
    info = read_info(out, verify=True)  # every part read back and checked
    t = ticketlab.load(out)
    assert info["provenance"]["model"] == "resnet32" and info["kept"] == t.kept
    assert t.provenance["achieved_density"] == t.density and sorted(t.weights) == ["init"]
    expected = ticketlab.transfer(ticketlab.load(resnet20_file), model="resnet32")
    assert all(np.array_equal(t.masks[n], expected.masks[n]) for n in expected.masks)
    summary = json.loads(run("transfer", resnet20_file, "--to-model", "resnet56", "-o", out, "--json",
                             "--masks-only").output)
    assert summary["direction"] == "stretch" and summary["blocks_per_stage"] == [3, 9]
    assert summary["kept"] == ticketlab.load(out).kept and summary["weights"] == "none (masks only)"
    assert ticketlab.load(out).weights == {}
    res = run("transfer", out, "--to-model", "resnet20", "-o", tmp_path / "back.h5", "--mapping", "0:0;1:1;5:2")
    assert "rule explicit (squeeze, 9 -> 3 blocks per stage)" in " ".join(res.output.split())


@pytest.mark.parametrize("args, message", [
    (["--to-model", "resnet18"], "error: transfer moves tickets between depths of the CIFAR ResNet family "
                                 "(resnet20, resnet32, resnet44, resnet56); the target model is 'resnet18'"),
    (["--to-model", "resnet32", "--mapping", "0:0;1:1"], "error: mapping '0:0;1:1' gives target block 2 no source"),
])
def test_transfer_errors_are_one_line(tmp_path, resnet20_file, args, message):
    res = run("transfer", resnet20_file, *args, "-o", tmp_path / "x.h5", ok=False)
    assert res.exit_code == 2 and res.output.strip() == message
    assert not (tmp_path / "x.h5").exists()
    res = run("transfer", resnet20_file, "--to-model", "resnet32", "-o", resnet20_file, ok=False)
    assert res.exit_code == 2 and "would replace its source" in res.output


def test_transfer_of_a_ticket_outside_the_family_in_a_real_process(tmp_path, synflow_file):
    proc = subprocess.run([sys.executable, "-m", "ticketlab", "transfer", str(synflow_file), "--to-model",
                           "resnet32", "-o", str(tmp_path / "x.h5")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "the ticket's model is 'lenet_300_100'" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "ticketlab", "transfer", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "--to-model" in proc.stdout and "Chen et al. 2021" in proc.stdout
